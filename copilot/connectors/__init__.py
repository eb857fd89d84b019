"""Connectors to the platforms where support teams work (Chatwoot, Discourse, email), one module each.

Each turns a platform event into inbound messages, posts a draft back as an internal note, and posts an
approved reply publicly in the conversation it came from; see ``base.Connector``.
"""
