"""``copilot triage``, ``copilot triage train``, ``copilot eval triage`` and ``copilot bench triage``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from copilot.cli import emit
from copilot.errors import UserError


def register(commands: Any, groups: dict[str, Any]) -> None:
    p = commands.add_parser(
        "triage",
        help="label messages: kind, sentiment, priority, crisis, private channel, language",
        description=(
            "Label one message (`copilot triage TEXT`) or a batch (`copilot triage --in FILE.jsonl`, rows "
            '{"id", "text", "channel"?, "author"?, "followers"?, "waiting_minutes"?}). '
            "`copilot triage train FILE` fits the team's own triage model on a labelled file (a text column "
            "plus any of kind, sentiment, crisis, private_info) and saves it under <data_dir>/triage/, where "
            "later triage calls pick it up."
        ),
    )
    p.add_argument("text", nargs="*", help="the message (quote it), or `train FILE`")
    p.add_argument("--in", dest="in_path", metavar="FILE", help="JSONL (or CSV) of messages to triage")
    p.add_argument("--channel", default="twitter", help="the channel of a single message")
    p.add_argument("--author", help="the author's handle")
    p.add_argument("--followers", type=int, help="the author's follower count (reach)")
    p.add_argument("--waiting-minutes", type=float, default=0.0, help="how long the message has waited")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=run_triage)

    p = groups["eval"].add_parser(
        "triage", help="accuracy and macro-F1 of kind, sentiment, crisis and private_info on labelled cases",
        description=(
            "Score triage on a labelled file (JSONL, JSON or CSV; a text column plus any of kind, sentiment, "
            "crisis, private_info; common aliases such as airline_sentiment or message are read). Out of the "
            "box by default (or the team's saved model); --train FILE fits on FILE first; --split F trains on a "
            "fraction F of --cases and tests on the rest."
        ),
    )
    p.add_argument("--cases", help="labelled messages to score on")
    p.add_argument("--calm", action="store_true",
                   help="every message in --cases is an ordinary one with no crisis (an inbox export, BANKING77): "
                        "measures crisis false alarms")
    p.add_argument("--rows", choices=("all", "odd", "even"), default="all",
                   help="score only the odd or even rows of --cases (a half held out from training)")
    p.add_argument("--cssrs", metavar="FILE",
                   help="a Reddit C-SSRS CSV (User, Post, Label): crisis recall by Columbia-scale grade")
    p.add_argument("--cssrs-split", choices=("test", "train", "all"), default="test",
                   help="which C-SSRS users (default: the 40%% never used for training)")
    p.add_argument("--train", help="labelled messages to train on first (not saved)")
    p.add_argument("--split", type=float, help="train on this fraction of --cases, test on the rest (e.g. 0.5)")
    p.add_argument("--seed", type=int, default=0, help="the split's random seed (deterministic)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=run_eval_triage)

    p = groups["bench"].add_parser("triage", help="messages per second of batch triage, with the embedding share")
    p.add_argument("--n", type=int, default=1000, help="how many messages (default 1000)")
    p.add_argument("--repeats", type=int, default=3, help="runs; the best is reported")
    p.add_argument("--cases", help="a file of messages to cycle through (default: the shipped seed messages)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=run_bench_triage)


def _settings() -> Any:
    from copilot.config import load_settings

    return load_settings()


def _pipeline() -> Any:
    from copilot.pipeline import build_pipeline

    return build_pipeline(_settings())


def _triage_line(item: dict[str, Any]) -> str:
    flags = []
    if item["crisis"]:
        flags.append(f"CRISIS: {item['crisis_reason']}")
    if item["private_info"]:
        flags.append(f"private: {item['private_reason']}")
    head = f"{item['id']}  " if item.get("id") else ""
    return (
        f"{head}P{item['priority']} ({item['priority_score']:.0f})  {item['kind']}  "
        f"{item['sentiment']} ({item['sentiment_score']:+.2f})  {item['language']}"
        + (f"  [{'; '.join(flags)}]" if flags else "")
    )


def run_triage(args: argparse.Namespace) -> int:
    if args.text and args.text[0] == "train":
        return run_train(args)
    from copilot.triage.cases import read_inbound
    from copilot.types import Inbound

    if args.in_path and args.text:
        raise UserError("give either a message or --in FILE, not both")
    if args.in_path:
        inbounds = read_inbound(args.in_path)
    elif args.text:
        text = " ".join(args.text).strip()
        if not text:
            raise UserError("the message is empty")
        if args.followers is not None and args.followers < 0:
            raise UserError("--followers cannot be negative")
        inbounds = [Inbound(text=text, channel=args.channel, author=args.author,
                            author_followers=args.followers, waiting_minutes=max(args.waiting_minutes, 0.0))]
    else:
        raise UserError("give a message to triage, or --in FILE.jsonl")
    triager = _pipeline().triager
    from copilot.triage.evaluate import triage_all

    labels, _, _ = triage_all(triager, inbounds)
    items = [{"id": m.id, **t.to_dict()} for m, t in zip(inbounds, labels, strict=True)]
    if not args.in_path:
        item = items[0]
        item.pop("id")
        emit(item, args.json, _triage_line)
        return 0
    emit(items, args.json, lambda rows: "\n".join(_triage_line(r) for r in rows))
    return 0


def run_train(args: argparse.Namespace) -> int:
    from copilot.triage.cases import load_cases
    from copilot.triage.model import TEAM_STEM
    from copilot.triage.training import train_team_model
    from copilot.triage.triager import triage_dir

    if len(args.text) != 2:
        raise UserError("usage: copilot triage train FILE (a labelled file: text plus kind/sentiment/crisis/"
                        "private_info columns)")
    path = Path(args.text[1])
    case_set = load_cases(path, require_labels=True)
    pipeline = _pipeline()
    folder = triage_dir(pipeline.settings)
    start = time.perf_counter()
    model = train_team_model(pipeline.embedder, case_set.cases, cache_dir=folder, source=f"team:{path.name}")
    saved = model.save(folder, TEAM_STEM)
    result = {
        "saved": str(saved),
        "cases": case_set.describe(),
        "heads": model.card["heads"],
        "seconds": round(time.perf_counter() - start, 1),
    }

    def text(r: dict[str, Any]) -> str:
        lines = [(f"trained the team triage model on {r['cases']['n']} messages from {path} "
                 f"in {r['seconds']}s -> {r['saved']}"),
                 "columns: " + ", ".join(f"{k} <- {v}" for k, v in r["cases"]["columns"].items())]
        for head, info in r["heads"].items():
            lines.append(f"  {head}: {info.get('source')}" + (
                f" ({info['n_team']} team labels)" if "n_team" in info else ""))
        return "\n".join(lines)

    emit(result, args.json, text)
    return 0


def run_eval_triage(args: argparse.Namespace) -> int:
    from copilot.triage.cases import load_cases
    from copilot.triage.evaluate import evaluate_triage, split_cases
    from copilot.triage.training import train_team_model
    from copilot.triage.triager import Triager, triage_dir

    if args.train and args.split is not None:
        raise UserError("give either --train FILE or --split F, not both")
    if args.cssrs:
        return _eval_cssrs(args)
    if not args.cases:
        raise UserError("give --cases FILE (labelled messages) or --cssrs FILE")
    case_set = load_cases(args.cases, require_labels=not args.calm)
    case_set = _select(case_set, rows=args.rows, calm=args.calm)
    pipeline = _pipeline()
    folder = triage_dir(pipeline.settings)
    report: dict[str, Any] = {}
    test = list(case_set.cases)
    if args.train:
        train_set = load_cases(args.train, require_labels=True)
        start = time.perf_counter()
        model = train_team_model(pipeline.embedder, train_set.cases, cache_dir=folder,
                                 source=f"trained:{Path(args.train).name}")
        triager = Triager(pipeline.embedder, model)
        report["trained_on"] = {**train_set.describe(), "seconds": round(time.perf_counter() - start, 1)}
    elif args.split is not None:
        try:
            train, test = split_cases(case_set.cases, args.split, args.seed)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        if not train or not test:
            raise UserError(f"--split {args.split} leaves nothing to train or test on ({len(case_set.cases)} cases)")
        start = time.perf_counter()
        model = train_team_model(pipeline.embedder, train, cache_dir=folder,
                                 source=f"split:{Path(args.cases).name}:{args.split}:{args.seed}")
        triager = Triager(pipeline.embedder, model)
        report["trained_on"] = {"split": args.split, "seed": args.seed, "n": len(train),
                                "seconds": round(time.perf_counter() - start, 1)}
    else:
        triager = pipeline.triager
    scores = evaluate_triage(triager, test, case_set.label_fields)
    report = {
        "n": scores.pop("n"),
        **{f: scores[f] for f in case_set.label_fields if f in scores},
        "fields": [f for f in case_set.label_fields if f in scores],
        **{k: scores[k] for k in ("crisis_screen", "spam") if k in scores},
        "messages_per_s": scores["messages_per_s"],
        "embedding_share": scores["embedding_share"],
        "model": triager.source,
        "cases": case_set.describe(),
        **report,
    }
    emit(report, args.json, _eval_text)
    return 0


def _select(case_set: Any, *, rows: str, calm: bool) -> Any:
    """Keep the odd or even rows (1-based file order), and mark unlabelled messages as calm."""
    from dataclasses import replace as replace_case

    from copilot.triage.cases import NO_CRISIS

    cases = list(case_set.cases)
    if rows != "all":
        cases = [c for i, c in enumerate(cases, 1) if (i % 2 == 1) == (rows == "odd")]
    if calm:
        cases = [c if c.crisis is not None else replace_case(c, crisis=NO_CRISIS) for c in cases]
    if not cases:
        raise UserError(f"{case_set.path}: no rows left to score")
    return replace_case(case_set, cases=tuple(cases))


def _eval_cssrs(args: argparse.Namespace) -> int:
    from copilot.triage.cssrs import load_users
    from copilot.triage.evaluate import cssrs_report

    users = load_users(args.cssrs, split=None if args.cssrs_split == "all" else args.cssrs_split)
    if not users:
        raise UserError(f"{args.cssrs}: no users in the {args.cssrs_split} split")
    start = time.perf_counter()
    report = {"path": args.cssrs, "split": args.cssrs_split, "users": len(users),
              "by_grade": cssrs_report(_pipeline().triager, users)}
    report["seconds"] = round(time.perf_counter() - start, 1)
    emit(report, args.json, lambda r: "\n".join(
        [f"C-SSRS {r['split']} users: {r['users']} ({r['seconds']} s)"]
        + [f"  {g:<11} users {v['users']:>3}  flagged (any level) {v['user_recall_any']}  as crisis "
           f"{v['user_recall_crisis']}  posts flagged {v['post_flag_rate']}" for g, v in r["by_grade"].items()]))
    return 0


def _crisis_text(c: dict[str, Any]) -> list[str]:
    lines = [(f"crisis screen  recall (crisis or possible) {c['recall_any']}  as crisis {c['recall_crisis']}  "
             f"false alarms: any {c['false_alarm_any']}  crisis {c['false_alarm_crisis']}  "
             f"precision: any {c['precision_any']}  crisis {c['precision_crisis']}  "
             f"({c['n_crisis']} crises, {c['n_calm']} calm; {c['cleared']} screened and cleared)")]
    for name in ("by_category", "by_language", "by_group"):
        for key, b in (c.get(name) or {}).items():
            lines.append(f"  {name[3:]:<8} {key:<18} crises {b['n_crisis']:>3} recall {b['recall_any']}  "
                         f"calm {b['n_calm']:>4} false alarms {b['false_alarm_any']} (crisis {b['false_alarm_crisis']})")
    lines += [f"  MISSED [{m['category']}, {m['language']}] {m['text']}" for m in c["missed"]]
    lines += [f"  FALSE ALARM [{f['level']}: {f['reason']}] {f['span']}" for f in c["false_alarms"]]
    return lines


def _eval_text(r: dict[str, Any]) -> str:
    columns = ", ".join(f"{k} <- {v}" for k, v in r["cases"]["columns"].items())
    lines = [(f"{r['n']} messages from {r['cases']['path']} (columns: {columns}; "
             f"ignored: {', '.join(r['cases']['ignored_columns']) or 'none'})"),
             f"model: {r['model']}"]
    if "trained_on" in r:
        lines.append(f"trained on {r['trained_on']['n']} messages")
    for field in r["fields"]:
        s = r[field]
        per_class = "  ".join(f"{k} {v['f1']:.3f}" for k, v in s["per_class"].items())
        lines.append(f"{field:<13} accuracy {s['accuracy']:.3f}  macro-F1 {s['macro_f1']:.3f}   ({per_class})")
    if "crisis_screen" in r:
        lines += _crisis_text(r["crisis_screen"])
    if r.get("spam"):
        lines.append(f"spam: {r['spam']['spam_rate']} of messages filed as spam; "
                     f"false spam {r['spam']['false_spam_rate']} of {r['spam']['n_real']} real messages")
    lines.append(f"{r['messages_per_s']} messages/s (embedding {100 * (r['embedding_share'] or 0):.0f}% of the time)")
    return "\n".join(lines)


def run_bench_triage(args: argparse.Namespace) -> int:
    from copilot.triage.cases import load_cases
    from copilot.triage.evaluate import bench_triage
    from copilot.triage.training import seed_cases

    if args.n < 1 or args.repeats < 1:
        raise UserError("--n and --repeats must be at least 1")
    texts = [c.text for c in (load_cases(args.cases).cases if args.cases else seed_cases())]
    pipeline = _pipeline()
    triager = pipeline.triager
    result = {**bench_triage(triager, texts, args.n, repeats=args.repeats), "model": triager.source,
              "embedder": pipeline.embedder_name}
    emit(result, args.json, lambda r: (
        f"{r['messages_per_s']} messages/s on {r['n']} messages ({r['seconds']}s; embedding {r['embedding_s']}s = "
        f"{100 * r['embedding_share']:.0f}%; {r['cpus']} CPUs, load {r['load_avg_1m']})"))
    return 0
