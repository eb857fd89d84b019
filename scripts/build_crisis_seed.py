"""Rebuild the shipped crisis seed files from the public datasets (run by hand when the screen changes).

    python scripts/build_crisis_seed.py SHARED_DATASETS_DIR

Writes, under copilot/data/:
- crisis_cssrs.jsonl: one excerpt per at-risk user (Ideation, Behavior, Attempt) of the Reddit C-SSRS set
  (Gaur et al. 2019, CC BY 4.0), from the training users only (a stable 60% of users by hash; the other 40%
  are held out for `copilot eval triage --cssrs`). The excerpt is the window around the first screen hit, or
  the post's opening when nothing fires.
- triage_banking77_ordinary.jsonl: BANKING77 train questions (CC BY 4.0) of the urgent-but-ordinary intents
  (stolen or lost card and phone, swallowed or compromised card, account termination...), up to 30 per
  intent, and up to 10 of every other intent (ordinary questions), from the training half only (even row numbers; the odd rows are held out for evaluation).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from copilot.triage.cssrs import AT_RISK, load_users
from copilot.triage.language import detect_language
from copilot.triage.screen import load_lexicon

URGENT_INTENTS = {"lost_or_stolen_card", "lost_or_stolen_phone", "card_swallowed", "compromised_card",
                  "terminate_account", "card_payment_not_recognised", "cash_withdrawal_not_recognised",
                  "passcode_forgotten", "pin_blocked", "declined_card_payment"}
WINDOW = 600


def excerpt(post: str) -> tuple[str, bool]:
    lexicon = load_lexicon()
    screened = lexicon.screen(post, detect_language(post))
    best = screened.best()
    if best is None:
        return post[:WINDOW].strip(), False
    start = max(0, best.start - WINDOW // 2)
    return post[start:start + WINDOW].strip(), True


def main(shared: Path) -> None:
    out = Path(__file__).resolve().parent.parent / "copilot" / "data"
    rows = []
    for user in load_users(shared / "crisis-cssrs" / "reddit_cssrs_500_users.csv", split="train"):
        if user.severity not in AT_RISK:
            continue
        chosen = next((p for p in user.posts if excerpt(p)[1]), user.posts[0] if user.posts else "")
        if chosen:
            rows.append({"id": f"cssrs-{user.name}", "text": excerpt(chosen)[0], "crisis": "self-harm",
                         "severity": user.severity})
    with (out / "crisis_cssrs.jsonl").open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    urgent: list[dict[str, str]] = []
    per_intent: dict[str, int] = {}
    with (shared / "banking77" / "train.csv").open(encoding="utf-8") as handle:
        for i, record in enumerate(csv.DictReader(handle)):
            intent = record["category"]
            if i % 2 or per_intent.get(intent, 0) >= (30 if intent in URGENT_INTENTS else 10):
                continue
            per_intent[intent] = per_intent.get(intent, 0) + 1
            urgent.append({"id": f"b77-{i}", "text": record["text"], "crisis": "none", "source": intent})
    with (out / "triage_banking77_ordinary.jsonl").open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in urgent)
    print(f"{len(rows)} C-SSRS excerpts, {len(urgent)} BANKING77 questions")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/build_crisis_seed.py SHARED_DATASETS_DIR")
    main(Path(sys.argv[1]))
