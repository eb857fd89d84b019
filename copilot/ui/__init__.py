"""The web app (Gradio): inbox and reply for agents, the review queue, community, knowledge and insights.

``handlers`` and ``community_handlers`` hold what each screen does as plain functions (roles checked in
``access``); ``screens`` maps them to Gradio components, one module per screen; ``app`` puts the screens
together and launches the server. Nothing is imported here, so importing any part loads only that part.
"""
