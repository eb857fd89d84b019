"""Score a triager on labelled cases (accuracy, macro-F1, per-class F1, throughput), split files for
train/test runs, and benchmark batch speed."""

from __future__ import annotations

import os
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from copilot.triage.cases import GENERIC_CRISIS, NO_CRISIS, Case
from copilot.triage.triager import Triager
from copilot.types import Inbound, Triage

BATCH = 256


def _predicted(field: str, triage: Triage) -> str:
    if field == "kind":
        return triage.kind
    if field == "sentiment":
        return triage.sentiment
    if field == "crisis":
        return "crisis" if triage.crisis else NO_CRISIS
    return "true" if triage.private_info else "false"


def _gold(field: str, case: Case) -> str | None:
    value = case.label(field)
    if value is None:
        return None
    if field == "crisis":
        return NO_CRISIS if value == NO_CRISIS else "crisis"
    if field == "private_info":
        return "true" if value else "false"
    return str(value)


def classification_scores(gold: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 over the gold classes, and precision/recall/F1/support per class."""
    classes = sorted(set(gold))
    per_class: dict[str, dict[str, float]] = {}
    for label in classes:
        tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g == label and p == label)
        fp = sum(1 for g, p in zip(gold, predicted, strict=True) if g != label and p == label)
        fn = sum(1 for g, p in zip(gold, predicted, strict=True) if g == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
                            "support": tp + fn}
    correct = sum(1 for g, p in zip(gold, predicted, strict=True) if g == p)
    macro = sum(v["f1"] for v in per_class.values()) / len(per_class) if per_class else 0.0
    return {
        "n": len(gold),
        "accuracy": round(correct / len(gold), 4) if gold else 0.0,
        "macro_f1": round(macro, 4),
        "per_class": per_class,
    }


def triage_all(triager: Triager, inbounds: Sequence[Inbound]) -> tuple[list[Triage], float, float]:
    """Triage in batches; returns the labels, the wall seconds and the seconds spent embedding."""
    results: list[Triage] = []
    embed_s = 0.0
    start = time.perf_counter()
    for i in range(0, len(inbounds), BATCH):
        results.extend(triager.triage_batch(inbounds[i:i + BATCH]))
        embed_s += triager.last.embed_s
    return results, time.perf_counter() - start, embed_s


def evaluate_triage(triager: Triager, cases: Sequence[Case], fields: Sequence[str]) -> dict[str, Any]:
    """Scores per labelled field, plus throughput; crisis also reports category accuracy and misses."""
    if cases:
        triager.triage_batch([c.inbound for c in cases[:8]])  # warm up: the first batch pays one-off costs
    triages, seconds, embed_s = triage_all(triager, [c.inbound for c in cases])
    report: dict[str, Any] = {"n": len(cases)}
    for field in fields:
        pairs = [(_gold(field, c), _predicted(field, t)) for c, t in zip(cases, triages, strict=True)]
        labelled = [(g, p) for g, p in pairs if g is not None]
        if not labelled:
            continue
        scores = classification_scores([g for g, _ in labelled], [p for _, p in labelled])
        report[field] = scores
    if any(c.crisis is not None for c in cases):
        report["crisis_screen"] = crisis_report(cases, triages)
    report["spam"] = spam_report(cases, triages)
    report["messages_per_s"] = round(len(cases) / seconds, 1) if seconds > 0 else None
    report["embedding_share"] = round(embed_s / seconds, 3) if seconds > 0 else None
    return report


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def crisis_report(cases: Sequence[Case], triages: Sequence[Triage]) -> dict[str, Any]:
    """The cascade's recall, precision and false-alarm rate per level, and per category, language and group.

    ``recall_any``: gold crises flagged at either level (crisis or possible); ``recall_crisis``: flagged as
    crisis (escalated). ``false_alarm_*``: the share of calm messages flagged. Every miss and false alarm is
    listed in full, with the span that fired.
    """
    pairs = [(c, t) for c, t in zip(cases, triages, strict=True) if c.crisis is not None]
    crises = [(c, t) for c, t in pairs if c.crisis != NO_CRISIS]
    calm = [(c, t) for c, t in pairs if c.crisis == NO_CRISIS]

    def block(crisis_pairs: list[tuple[Case, Triage]], calm_pairs: list[tuple[Case, Triage]]) -> dict[str, Any]:
        flagged_crisis = sum(1 for _, t in crisis_pairs if t.crisis_level is not None)
        escalated = sum(1 for _, t in crisis_pairs if t.crisis_level == "crisis")
        calm_any = sum(1 for _, t in calm_pairs if t.crisis_level is not None)
        calm_crisis = sum(1 for _, t in calm_pairs if t.crisis_level == "crisis")
        return {
            "n_crisis": len(crisis_pairs), "n_calm": len(calm_pairs),
            "recall_any": _rate(flagged_crisis, len(crisis_pairs)),
            "recall_crisis": _rate(escalated, len(crisis_pairs)),
            "precision_any": _rate(flagged_crisis, flagged_crisis + calm_any),
            "precision_crisis": _rate(escalated, escalated + calm_crisis),
            "false_alarm_any": _rate(calm_any, len(calm_pairs)),
            "false_alarm_crisis": _rate(calm_crisis, len(calm_pairs)),
        }

    def language(case: Case, triage: Triage) -> str:
        return case.language or triage.language

    report: dict[str, Any] = block(crises, calm)
    named = [(c, t) for c, t in crises if c.crisis != GENERIC_CRISIS and t.crisis_level is not None]
    report["category_accuracy"] = _rate(
        sum(1 for c, t in named if (t.crisis_reason or "").startswith(str(c.crisis))), len(named))
    report["by_category"] = {
        category: block([(c, t) for c, t in crises if c.crisis == category], [])
        for category in sorted({str(c.crisis) for c, _ in crises})
    }
    report["by_language"] = {
        lang: block([(c, t) for c, t in crises if language(c, t) == lang],
                    [(c, t) for c, t in calm if language(c, t) == lang])
        for lang in sorted({language(c, t) for c, t in pairs})
    }
    groups = sorted({c.group for c, _ in calm if c.group})
    if groups:
        report["by_group"] = {g: block([], [(c, t) for c, t in calm if c.group == g]) for g in groups}
    report["missed"] = [{"text": c.text, "category": c.crisis, "language": language(c, t), "note": t.crisis_note}
                        for c, t in crises if t.crisis_level is None]
    report["false_alarms"] = [{"text": c.text, "level": t.crisis_level, "reason": t.crisis_reason,
                               "span": t.crisis_span, "group": c.group} for c, t in calm if t.crisis_level]
    report["cleared"] = sum(1 for _, t in pairs if t.crisis_level is None and t.crisis_note)
    return report


def spam_report(cases: Sequence[Case], triages: Sequence[Triage]) -> dict[str, Any]:
    """How many messages would be filed as spam, and how many of those were real messages.

    A message counts as real when its file labels it with any kind but spam, or as a crisis; in a file with no
    kind labels every message is taken as real (a customer inbox export).
    """
    labelled = any(c.kind is not None for c in cases)
    real = [(c, t) for c, t in zip(cases, triages, strict=True)
            if (c.kind not in (None, "spam")) or (c.crisis not in (None, NO_CRISIS)) or not labelled]
    false_spam = [c.text for c, t in real if t.kind == "spam"]
    return {
        "spam_rate": _rate(sum(1 for t in triages if t.kind == "spam"), len(triages)),
        "n_real": len(real), "false_spam_rate": _rate(len(false_spam), len(real)), "false_spam": false_spam[:50],
    }


def cssrs_report(triager: Triager, users: Sequence[Any]) -> dict[str, Any]:
    """Recall by Columbia-scale grade on C-SSRS users: a user is flagged when any of their posts is.

    Supportive users write to help others, so their flag rate is a false-alarm rate of sorts, on hard text.
    """
    by_grade: dict[str, dict[str, int]] = defaultdict(lambda: {"users": 0, "any": 0, "crisis": 0, "posts": 0,
                                                                "posts_any": 0})
    for user in users:
        triages, _, _ = triage_all(triager, [Inbound(text=p) for p in user.posts if p.strip()])
        row = by_grade[user.severity]
        row["users"] += 1
        row["posts"] += len(triages)
        row["posts_any"] += sum(1 for t in triages if t.crisis_level)
        row["any"] += int(any(t.crisis_level for t in triages))
        row["crisis"] += int(any(t.crisis_level == "crisis" for t in triages))
    return {grade: {"users": r["users"], "user_recall_any": _rate(r["any"], r["users"]),
                    "user_recall_crisis": _rate(r["crisis"], r["users"]),
                    "post_flag_rate": _rate(r["posts_any"], r["posts"])}
            for grade, r in sorted(by_grade.items())}


def split_cases(cases: Sequence[Case], train_fraction: float, seed: int) -> tuple[list[Case], list[Case]]:
    """A deterministic split, stratified on the first labelled field, ``train_fraction`` for training."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError("the split is the training fraction, between 0 and 1 (e.g. 0.5)")
    groups: dict[str, list[int]] = defaultdict(list)
    for i, case in enumerate(cases):
        key = next((str(case.label(f)) for f in ("sentiment", "kind", "crisis", "private_info")
                    if case.label(f) is not None), "")
        groups[key].append(i)
    rng = random.Random(seed)
    train_idx: list[int] = []
    for key in sorted(groups):
        members = groups[key][:]
        rng.shuffle(members)
        train_idx.extend(members[: round(len(members) * train_fraction)])
    chosen = set(train_idx)
    return [cases[i] for i in sorted(chosen)], [c for i, c in enumerate(cases) if i not in chosen]


def bench_triage(triager: Triager, texts: Sequence[str], n: int, repeats: int = 3) -> dict[str, Any]:
    """Messages per second of batch triage on ``n`` messages (best of ``repeats``), with the embedding share.

    The machine may be shared, so the report also gives CPU seconds and the load average.
    """
    pool = list(texts)
    inbounds = [Inbound(text=pool[i % len(pool)], id=str(i)) for i in range(n)]
    triager.triage_batch(inbounds[: min(32, n)])  # warm up
    best: dict[str, Any] | None = None
    for _ in range(repeats):
        cpu0 = time.process_time()
        _, seconds, embed_s = triage_all(triager, inbounds)
        cpu = time.process_time() - cpu0
        run = {"seconds": seconds, "embed_s": embed_s, "cpu_s": cpu}
        if best is None or seconds < best["seconds"]:
            best = run
    assert best is not None
    return {
        "n": n,
        "messages_per_s": round(n / best["seconds"], 1),
        "seconds": round(best["seconds"], 3),
        "embedding_s": round(best["embed_s"], 3),
        "embedding_share": round(best["embed_s"] / best["seconds"], 3),
        "cpu_s": round(best["cpu_s"], 3),
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "repeats": repeats,
    }
