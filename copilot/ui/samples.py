"""A few inbound messages to try the reply screen with (Lumio, the sample knowledge base's company)."""

from __future__ import annotations

SAMPLES: tuple[dict[str, str], ...] = (
    {"label": "Complaint: bulbs flicker on a dimmer (X)", "channel": "twitter", "author": "@dana_k",
     "text": "@LumioHelp my new bulbs flicker every time I dim them from the wall switch. Paid good money "
             "for this 😤"},
    {"label": "Complaint: hub keeps going offline (Facebook)", "channel": "facebook", "author": "",
     "text": "Third time this week my Lumio hub has gone offline. The light on it is solid amber. I'm running "
             "out of patience."},
    {"label": "Question: does Lumio work with Matter? (forum)", "channel": "forum", "author": "@quietcorner",
     "text": "Thinking of moving my setup to Matter. Do Lumio bulbs and the hub support it, and what do I "
             "need to do?"},
    {"label": "Billing: charged twice (X, private info)", "channel": "twitter", "author": "@mkhan_84",
     "text": "@LumioHelp you charged me twice for Lumio Plus this month, card ending 4421. Fix it."},
    {"label": "Praise (Instagram)", "channel": "instagram", "author": "@glowhome",
     "text": "Just set up the new light strip in the kitchen and it looks amazing, thank you Lumio!"},
    {"label": "Crisis: safety (email)", "channel": "email", "author": "",
     "text": "The Lumio plug in my son's room started smoking and there are scorch marks on the wall. "
             "Nobody is hurt but I'm terrified it will catch fire."},
)
