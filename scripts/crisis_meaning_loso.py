"""How far the crisis meaning screen generalises: each inbox set of earlier rounds left out in turn.

    python scripts/crisis_meaning_loso.py [--only inbox_test7] [--calm train.csv --rows odd --limit 2000]

For every source in copilot/data/crisis_inbox.jsonl, the meaning screen is refitted on everything else
(the seed set, the shipped crisis files, the other inbox sets), and the whole cascade with that screen
scores the set left out. The phrase screen and the other heads stay as shipped, so on the sets whose misses
were used to write phrases the phrase screen is in-sample; inbox_test7 was never tuned on.

``--calm FILE`` also scores each refitted screen's false alarms on ordinary messages (a CSV or JSONL with a
text column, e.g. BANKING77's train.csv), leaving out any the screen learns from; ``--rows`` keeps the odd or
even rows (1-based file order), ``--limit`` the first N of them.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from importlib import resources
from pathlib import Path

import numpy as np

from copilot.config import Settings
from copilot.models.factory import build_embedder
from copilot.triage.cases import NO_CRISIS, load_cases
from copilot.triage.evaluate import crisis_report, triage_all
from copilot.triage.meaning import fit_meaning
from copilot.triage.model import featurize
from copilot.triage.training import crisis_cases, seed_cases
from copilot.triage.triager import build_triager
from copilot.types import Inbound


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="leave out only this source (e.g. inbox_test7)")
    parser.add_argument("--calm", type=Path, help="ordinary messages to count false alarms on")
    parser.add_argument("--rows", choices=("all", "odd", "even"), default="all")
    parser.add_argument("--limit", type=int, default=2000)
    args = parser.parse_args()
    settings = Settings()
    embedder = build_embedder(settings)
    triager = build_triager(settings, embedder)
    inbox_path = Path(str(resources.files("copilot") / "data" / "crisis_inbox.jsonl"))
    inbox = list(load_cases(inbox_path).cases)
    sources = [json.loads(line)["source"] for line in inbox_path.read_text(encoding="utf-8").splitlines()]
    base = [c for c in [*seed_cases(), *crisis_cases()] if c.crisis is not None]
    base_x, _ = featurize(embedder, [c.text for c in base])
    inbox_x, _ = featurize(embedder, [c.text for c in inbox])
    calm = _calm(args.calm, args.rows, args.limit, {c.text for c in [*base, *inbox]}) if args.calm else []
    shipped = triager.model
    totals = np.zeros(4)
    for source in sorted(set(sources)):
        if args.only and source != args.only:
            continue
        train = [i for i, s in enumerate(sources) if s != source]
        test = [inbox[i] for i, s in enumerate(sources) if s == source]
        embedding = np.vstack([base_x.embedding, inbox_x.embedding[train]])
        texts = [c.text for c in base] + [inbox[i].text for i in train]
        labels = [str(c.crisis) for c in base] + [str(inbox[i].crisis) for i in train]
        triager.model = replace(shipped, meaning=fit_meaning(embedding, texts, labels))
        triages, _, _ = triage_all(triager, [c.inbound for c in test])
        report = crisis_report(test, triages)
        hyperbole = report["by_group"].get("hyperbole", {})
        print(f"{source}: recall_any {report['recall_any']} recall_crisis {report['recall_crisis']} "
              f"false_alarm_any {report['false_alarm_any']} false_alarm_crisis {report['false_alarm_crisis']} "
              f"hyperbole_flagged {hyperbole.get('false_alarm_any')}")
        if calm:
            flagged = sum(1 for t in triager.triage_batch([Inbound(text=text) for text in calm]) if t.crisis_level)
            print(f"  {args.calm.name}: {flagged} of {len(calm)} flagged ({flagged / len(calm):.2%})")
        crises = sum(1 for c in test if c.crisis != NO_CRISIS)
        totals += [report["recall_any"] * crises, crises, report["false_alarm_any"] * (len(test) - crises),
                   len(test) - crises]
        if args.only:
            for miss in report["missed"]:
                print("  missed:", miss["text"])
            for alarm in report["false_alarms"]:
                print(f"  false alarm ({alarm['level']}, {alarm['reason']}):", alarm["text"])
    if not args.only:
        print(f"all: recall_any {totals[0] / totals[1]:.3f} false_alarm_any {totals[2] / totals[3]:.3f}")


def _calm(path: Path, rows: str, limit: int, known: set[str]) -> list[str]:
    texts = [c.text for c in load_cases(path).cases]
    if rows != "all":
        texts = texts[0 if rows == "odd" else 1::2]
    return [t for t in texts if t not in known][:limit]


if __name__ == "__main__":
    main()
