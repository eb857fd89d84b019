"""The HTTP API: JSON under ``/api/v1`` and the platforms' webhooks under ``/webhooks``, served with the web app.

``app`` builds the FastAPI app for one pipeline (``build_api``); ``auth`` turns a bearer token into the acting
user and checks their role; ``limits`` refuses oversized bodies and too many requests; ``errors`` maps every
failure to one JSON shape; the routes are split by concern (``routes_work``: messages, triage, search, drafts;
``routes_items``: the review queue and publishing; ``routes_webhooks``); ``server`` mounts the Gradio app on the
same port. Nothing is imported here, so importing one part loads only that part.
"""
