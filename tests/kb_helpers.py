"""Small knowledge bases written into tmp folders for tests."""

from __future__ import annotations

from pathlib import Path

ENTRIES = {
    "fixes/wifi.md": """---
id: kb-wifi
title: Bulb won't connect to Wi-Fi
kind: fix
official: true
tags: [wifi, pairing]
products: [bulb]
updated: 2026-01-02
url: https://help.example/wifi
---
My bulb will not connect to the Wi-Fi network during setup.

1. Make sure your phone is on the 2.4 GHz network.
2. Hold the bulb's reset for 5 seconds until it blinks blue.
3. Add it again in the app.
""",
    "workarounds/flicker.md": """---
id: kb-flicker
title: Strip flickers at low brightness
kind: workaround
official: false
tags: [flicker]
products: [strip]
---
The light strip flickers when dimmed below ten percent.

Community tip: set the minimum brightness to 12 percent in Settings > Dimming.
""",
    "policies/refund.md": """---
id: kb-refund
title: Refund policy
kind: policy
official: true
tags: [refund, billing]
---
How do refunds work?

Refunds go back to the original payment method within 5-10 business days after we receive the return.
""",
    "policies/crisis.md": """---
id: kb-crisis-policy
title: Crisis policy
kind: policy
tags: [crisis]
---
What counts as a crisis and what we do.

## Holding message
We're so sorry. Someone from our team will reach out to you personally now. If you are in danger, call your local emergency number.

## Safety holding message
Please stop using the product and unplug it now. Our safety team is contacting you.
""",
    "guidelines/voice.md": """---
id: kb-brand-voice
title: Brand voice
kind: guideline
tags: [brand-voice]
---
How we sound.

## In short
- Warm and plain.
- Own the problem.
- Clear next step.
""",
    "faq/shop.csv": "id,question,answer,category,tags\n"
    "kb-ship,Where do you ship?,We ship to the US and the EU.,shipping,orders;shipping\n"
    "kb-track,How do I track my order?,Use the tracking link in your shipping email.,shipping,orders\n",
}


def write_kb(root: Path, entries: dict[str, str] | None = None) -> Path:
    """Write a small knowledge base and return its folder."""
    kb = root / "kb"
    for rel, text in (entries or ENTRIES).items():
        path = kb / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return kb
