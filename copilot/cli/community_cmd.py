"""``copilot community ...`` (starters, promoters and outreach, knowledge gaps and FAQ proposals, tone
examples, the demo history) and ``copilot report`` (the insights report)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from copilot.cli import emit
from copilot.cli.args import add_json, pipeline_from
from copilot.config import CHANNELS
from copilot.errors import UserError

FORMATS = ("question", "poll", "challenge", "event", "ama")
OUTREACH = ("thanks", "beta", "guest_post", "ama", "advocate")


def register(commands: Any, groups: dict[str, Any]) -> None:
    """Add ``community`` with its actions, and ``report``."""
    community = commands.add_parser("community", help="discussion starters, promoters, FAQ proposals, demo data")
    actions = community.add_subparsers(dest="community_command", metavar="ACTION", parser_class=type(community))
    actions.required = True

    p = actions.add_parser("starters", help="draft varied discussion starters into the review queue")
    p.add_argument("--topic", help="what to talk about (default: events, recent conversations, knowledge themes)")
    p.add_argument("--n", type=int, default=5, help="how many (default 5)")
    p.add_argument("--format", dest="fmt", choices=FORMATS, help="one format for all (default: a mix)")
    p.add_argument("--channel", default="forum", help=f"one of {', '.join(CHANNELS)} (default forum)")
    _drafting(p).set_defaults(func=_starters)

    p = actions.add_parser("outreach", help="draft a personal message to a promoter (never to one who opted out)")
    p.add_argument("--promoter", required=True, metavar="HANDLE")
    p.add_argument("--type", dest="outreach", choices=OUTREACH, help="the invitation (default: chosen from history)")
    p.add_argument("--force", action="store_true", help="draft even if they were contacted in the last 30 days")
    _drafting(p).set_defaults(func=_outreach)

    p = actions.add_parser("promoters", help="the promoter registry; --scan detects promoters first")
    p.add_argument("--scan", action="store_true", help="detect promoters from the conversation history")
    p.add_argument("--in", dest="infile", help="scan a JSONL export ({author, text, channel?, time?}) instead")
    p.add_argument("--show", metavar="HANDLE", help="one member with their history")
    p.add_argument("--all", action="store_true", help="list every scanned member, not only promoters")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--by", default="copilot", help="who scans (a user when users exist)")
    add_json(p)
    p.set_defaults(func=_promoters)

    p = actions.add_parser("opt-out", help="record that a member must not be contacted; withdraw queued outreach")
    p.add_argument("handle")
    p.add_argument("--reason")
    p.add_argument("--by", required=True, help="who records it")
    add_json(p)
    p.set_defaults(func=_opt_out)

    p = actions.add_parser("opt-in", help="record that a member agreed to be contacted again")
    p.add_argument("handle")
    p.add_argument("--by", required=True)
    add_json(p)
    p.set_defaults(func=_opt_in)

    p = actions.add_parser("consent", help="record a member's consent: granted, declined or unknown")
    p.add_argument("handle")
    p.add_argument("consent", choices=("granted", "declined", "unknown"))
    p.add_argument("--by", required=True)
    add_json(p)
    p.set_defaults(func=_consent)

    p = actions.add_parser("gaps", help="knowledge gaps: unanswered questions and added fixes, clustered")
    p.add_argument("--since", help="only since, e.g. 30d or 2026-11-01 (default: all)")
    add_json(p)
    p.set_defaults(func=_gaps)

    p = actions.add_parser("proposals", help="draft knowledge-base entries for the knowledge gaps into the queue")
    p.add_argument("--since", help="only gaps since, e.g. 30d (default: all)")
    p.add_argument("--max", dest="limit", type=int, default=5, help="at most this many proposals (default 5)")
    p.add_argument("--min-size", type=int, default=2, help="unanswered questions asked at least this often")
    _drafting(p).set_defaults(func=_proposals)

    p = actions.add_parser("apply-proposals", help="write approved FAQ proposals into the knowledge base, re-index")
    p.add_argument("--id", dest="ids", type=int, action="append", help="only this item (repeatable)")
    p.add_argument("--no-ingest", action="store_true", help="write the files but do not re-index")
    p.add_argument("--by", required=True, help="who applies them (a reviewer or admin once users exist)")
    add_json(p)
    p.set_defaults(func=_apply)

    p = actions.add_parser("examples", help="the approved replies the drafter would use as tone examples")
    p.add_argument("text", help="an inbound message")
    p.add_argument("--kind", default="question", help="its message kind (default question)")
    p.add_argument("--channel", default="twitter")
    add_json(p)
    p.set_defaults(func=_examples)

    p = actions.add_parser("seed-demo", help="fill an empty data folder with a realistic month of history")
    p.add_argument("--cases", type=int, default=500)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--force", action="store_true", help="add to a queue that already has items")
    add_json(p)
    p.set_defaults(func=_seed)

    p = commands.add_parser("report", help="the insights report (Markdown and HTML with charts) for a period")
    p.add_argument("--since", default="7d", help="period start: 7d, 24h, 2w or a date (default 7d)")
    p.add_argument("--until", help="period end, a date or datetime (default now)")
    p.add_argument("--out", help="folder for report.md, report.html, report.json and charts/ "
                                 "(default <data_dir>/reports/...)")
    add_json(p)
    p.set_defaults(func=_report)


def _drafting(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--by", default="copilot", help="who asks for the drafts (a user when users exist)")
    p.add_argument("--no-queue", action="store_true", help="print the drafts without queueing them")
    add_json(p)
    return p


def _channel(name: str) -> str:
    if name not in CHANNELS:
        raise UserError(f"unknown channel {name!r}; choose one of {', '.join(CHANNELS)}")
    return name


# Starters and outreach -----------------------------------------------------------------------------


def _starters(args: argparse.Namespace) -> int:
    from copilot.community.starters import draft_starters

    pipeline = pipeline_from(args)
    run = draft_starters(pipeline, topic=args.topic, n=args.n, fmt=args.fmt, channel=_channel(args.channel))
    data = run.to_dict()
    data["items"] = [] if args.no_queue else [pipeline.queue.submit(d, by=args.by).id for d in run.drafts]
    emit(data, args.json, _starters_text)
    return 0 if run.drafts else 1


def _starters_text(data: dict[str, Any]) -> str:
    lines = []
    for n, draft in enumerate(data["drafts"]):
        item = f"queue item {data['items'][n]}" if data["items"] else "not queued"
        lines.append(f"[{n + 1}] {', '.join(draft['flags'])} ({item})")
        lines.append(draft["text"])
        lines.append("")
    for rejected in data["rejected"]:
        lines.append(f"dropped a near-duplicate on {rejected['topic']!r} ({rejected['format']})")
    if data["shortfall"]:
        lines.append(f"only {len(data['drafts'])} of {data['requested']} starters: the topics ran out; give --topic")
    return "\n".join(lines).rstrip()


def _outreach(args: argparse.Namespace) -> int:
    from copilot.community.promoters import draft_outreach

    pipeline = pipeline_from(args)
    result = draft_outreach(pipeline, args.promoter, kind=args.outreach, by=None if args.no_queue else args.by,
                            force=args.force)
    emit(result.to_dict(), args.json, _outreach_text)
    return 0


def _outreach_text(d: dict[str, Any]) -> str:
    if "id" in d:  # a queued ReviewItem
        head = f"queue item {d['id']} ({d['status']}) to {d['author']} on {d['channel']}"
        flags = d["draft"].get("flags") or []
    else:
        head, flags = f"not queued; to {d['inbound']['author']} on {d['channel']}", d["flags"]
    return f"{head}\n{', '.join(flags)}\n\n{d['text']}"


# Promoters -----------------------------------------------------------------------------------------


def _promoter_line(p: dict[str, Any]) -> str:
    state = "OPTED OUT" if p["opted_out"] else f"consent {p['consent']}"
    interests = ", ".join(p["interests"]) or "-"
    return (f"@{p['handle']:<20} score {p['score']:>5.1f}  +{p['positive']} helpful {p['helpful']} "
            f"recommends {p['recommendations']}  {state}  interests: {interests}")


def _promoters(args: argparse.Namespace) -> int:
    from copilot.community.promoters import history_from_file, scan_promoters
    from copilot.community.registry import Registry

    pipeline = pipeline_from(args)
    registry = Registry(pipeline.queue)
    if args.show:
        promoter = registry.get(args.show)
        emit(promoter.to_dict(), args.json, lambda d: "\n".join(
            [_promoter_line(d), *(f"  {e['at']:%Y-%m-%d %H:%M} {e['action']} by {e['actor']}"
                                  + (f" (item {e['item_id']})" if e["item_id"] else "") for e in promoter.history),
             *(f'  "{e["quote"]}" ({", ".join(e["signals"])}, {e["ref"]})' for e in d["evidence"])]))
        return 0
    data: dict[str, Any] = {}
    if args.scan or args.infile:
        messages = history_from_file(pipeline, Path(args.infile)) if args.infile else None
        report = scan_promoters(pipeline, by=args.by, messages=messages)
        data["scan"] = {"messages": report.messages, "authors": report.authors, "new": list(report.new)}
    data["promoters"] = [p.to_dict() for p in registry.list(promoters_only=not args.all, limit=args.limit)]

    def text(d: dict[str, Any]) -> str:
        lines = []
        if "scan" in d:
            s = d["scan"]
            lines.append(f"scanned {s['messages']} messages from {s['authors']} authors; "
                         f"{len(s['new'])} new promoter(s)" + (f": @{', @'.join(s['new'])}" if s["new"] else ""))
        lines += [_promoter_line(p) for p in d["promoters"]] or ["no promoters yet: run with --scan"]
        return "\n".join(lines)

    emit(data, args.json, text)
    return 0


def _opt_out(args: argparse.Namespace) -> int:
    from copilot.community.promoters import opt_out

    result = opt_out(pipeline_from(args), args.handle, by=args.by, reason=args.reason)

    def text(d: dict[str, Any]) -> str:
        lines = [f"@{d['promoter']['handle']} opted out: no outreach will be drafted for them"]
        if d["withdrawn"]:
            lines.append(f"withdrew queued outreach: item(s) {', '.join(map(str, d['withdrawn']))}")
        if d["needs_reviewer"]:
            lines.append(f"a reviewer must reject item(s) {', '.join(map(str, d['needs_reviewer']))}")
        if d["approved"]:
            lines.append(f"WARNING: approved, unposted outreach item(s) {', '.join(map(str, d['approved']))}: "
                         "do not publish them")
        return "\n".join(lines)

    emit(result.to_dict(), args.json, text)
    return 0


def _opt_in(args: argparse.Namespace) -> int:
    from copilot.community.registry import Registry

    promoter = Registry(pipeline_from(args).queue).set_opt_out(args.handle, opted_out=False, by=args.by)
    emit(promoter.to_dict(), args.json, _promoter_line)
    return 0


def _consent(args: argparse.Namespace) -> int:
    from copilot.community.registry import Registry

    promoter = Registry(pipeline_from(args).queue).set_consent(args.handle, args.consent, by=args.by)
    emit(promoter.to_dict(), args.json, _promoter_line)
    return 0


# Knowledge gaps and proposals ---------------------------------------------------------------------


def _since(value: str | None) -> Any:
    from copilot.community.inputs import now_utc, parse_since

    return parse_since(value, now_utc()) if value else None


def _gaps(args: argparse.Namespace) -> int:
    from copilot.community.proposals import cluster_gaps, collect_gaps

    pipeline = pipeline_from(args)
    questions, warnings = collect_gaps(pipeline, _since(args.since))
    clusters = cluster_gaps(pipeline, questions)
    data = {"questions": len(questions), "clusters": [c.to_dict() for c in clusters], "warnings": warnings}
    emit(data, args.json, lambda d: "\n".join(
        [f"{d['questions']} gap question(s) in {len(d['clusters'])} cluster(s)", *d["warnings"],
         *(f"{c['size']:>3}x  {c['representative']}" + (f"  ({c['answered']} answered)" if c["answered"] else "")
           for c in d["clusters"])]))
    return 0


def _proposals(args: argparse.Namespace) -> int:
    from copilot.community.proposals import draft_proposals

    pipeline = pipeline_from(args)
    run = draft_proposals(pipeline, since=_since(args.since), limit=args.limit, min_size=args.min_size)
    data = run.to_dict()
    data["items"] = [] if args.no_queue else [pipeline.queue.submit(d, by=args.by).id for d in run.drafts]

    def text(d: dict[str, Any]) -> str:
        lines = [f"{d['questions']} gap question(s) in {d['clusters']} cluster(s); {len(d['drafts'])} proposal(s)",
                 *d["warnings"]]
        for n, draft in enumerate(d["drafts"]):
            lines += ["", f"[{n + 1}] " + (f"queue item {d['items'][n]}; " if d["items"] else "")
                      + "; ".join(draft["flags"]), draft["text"].rstrip()]
        lines += [f"skipped: {s['question']} ({s['reason']})" for s in d["skipped"]]
        return "\n".join(lines)

    emit(data, args.json, text)
    return 0


def _apply(args: argparse.Namespace) -> int:
    report = pipeline_from(args).actions.apply_proposals(by=args.by, item_ids=args.ids, reindex=not args.no_ingest)
    data = report.to_dict()
    emit(data, args.json, lambda d: "\n".join(
        [*(f"item {a['item_id']}: wrote {a['entry_id']} to {a['path']}" for a in d["applied"]),
         *(f"item {e['item_id']}: {e['error']}" for e in d["errors"])]
        + ([f"re-indexed: {d['ingest']['added']} added, {d['ingest']['changed']} changed"] if d["ingest"] else [])
        or ["no approved proposals waiting to be applied"]))
    return 1 if report.errors else 0


def _examples(args: argparse.Namespace) -> int:
    from copilot.community.examples import ToneExamples
    from copilot.types import Inbound, Triage

    pipeline = pipeline_from(args)
    triage = Triage(kind=args.kind, sentiment="neutral", sentiment_score=0.0, priority=3, priority_score=50.0)
    found = ToneExamples(pipeline.index, pipeline.embedder, pipeline.queue).examples_for(Inbound(text=args.text, channel=_channel(args.channel)), triage)
    emit([e.to_dict() for e in found], args.json, lambda d: "\n".join(
        f"item {e['item_id']} ({e['channel']}, similarity {e['similarity']}): {e['text']}" for e in d)
        or "no approved reply of that kind is close enough")
    return 0


def _seed(args: argparse.Namespace) -> int:
    from copilot.community.demo import seed_demo

    report = seed_demo(pipeline_from(args), cases=args.cases, days=args.days, seed=args.seed, force=args.force)
    emit(report.to_dict(), args.json, lambda d: (
        f"seeded {d['cases']} cases and {d['items']} queue items from {d['since'][:10]} to {d['until'][:10]} "
        f"in {d['seconds']} s: {d['outcomes']}; {d['promoters']} promoters, {d['gaps_logged']} gaps logged"))
    return 0


# Report --------------------------------------------------------------------------------------------


def _report(args: argparse.Namespace) -> int:
    from copilot.community.inputs import parse_since
    from copilot.community.report import build_report, default_out_dir

    pipeline = pipeline_from(args)
    until = None
    if args.until:
        from copilot.community.inputs import now_utc

        until = parse_since(args.until, now_utc())
    report = build_report(pipeline, args.since, until)
    out = Path(args.out) if args.out else default_out_dir(pipeline, report)
    paths = report.write(out)
    data = {"files": {k: str(v) for k, v in paths.items()}, **report.data}
    data["response"] = {k: v for k, v in data["response"].items() if k != "first_response_minutes"}
    emit(data, args.json, lambda d: "\n".join([
        (f"{d['cases']['total']} cases, {d['cases']['resolved']} resolved; median first response "
         f"{_fmt(d['response']['first_response_minutes_median'])} min; acceptance "
         f"{_fmt(d['acceptance']['overall']['acceptance_rate'], pct=True)}"),
        f"wrote {d['files']['html']}", f"wrote {d['files']['markdown']}"]))
    return 0


def _fmt(value: float | None, pct: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value * 100:.1f}%" if pct else f"{value:.1f}"
