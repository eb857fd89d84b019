"""The screens of the web app, one module each: a frozen bundle of the screen's components (named, so a
callback says which component it updates), ``build`` for its layout and own callbacks, and where a screen
acts on another, a ``connect`` that takes the other screens it reaches. Nothing is imported here.
"""
