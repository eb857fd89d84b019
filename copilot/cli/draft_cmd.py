"""``copilot draft`` (one message or a JSONL batch) and ``copilot rewrite``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from copilot.cli import emit
from copilot.cli.args import add_json, pipeline_from
from copilot.config import CHANNELS
from copilot.errors import CopilotError, UserError
from copilot.queue.records import Case
from copilot.types import Draft, Inbound


class DraftRequest(BaseModel):
    """One row of a batch drafting file."""

    model_config = ConfigDict(extra="ignore")

    id: str | int | None = None
    text: str = Field(min_length=1)
    channel: str = "twitter"
    author: str | None = None
    followers: int | None = None
    waiting_minutes: float = 0.0


def register(commands: Any, groups: dict[str, Any]) -> None:
    p = commands.add_parser("draft", help="draft a grounded reply and hold it for approval")
    p.add_argument("text", nargs="?", help="the inbound message")
    p.add_argument("--channel", default="twitter", help=f"one of {', '.join(CHANNELS)} (default twitter)")
    p.add_argument("--author", help="the author's handle or name")
    p.add_argument("--followers", type=int, help="the author's reach, if known")
    p.add_argument("--in", dest="infile", help="JSONL of {id, text, channel?, author?} rows")
    p.add_argument("--out", dest="outfile", help="where batch drafts go (JSONL)")
    p.add_argument("--by", default="copilot", help="who asks for the draft (a user when users exist)")
    p.add_argument("--no-queue", action="store_true", help="print the draft without queueing it")
    p.add_argument("--no-stream", action="store_true", help="don't print tokens as they come")
    add_json(p)
    p.set_defaults(func=run_draft)

    p = commands.add_parser("rewrite", help="rewrite a draft: shorter, warmer, formal, or translate")
    p.add_argument("text", help="the draft text")
    p.add_argument("--action", required=True, choices=("shorter", "warmer", "formal", "translate"))
    p.add_argument("--language", help="target language for translate, e.g. Spanish")
    p.add_argument("--channel", default="twitter")
    add_json(p)
    p.set_defaults(func=run_rewrite)


def _queue(pipeline: Any, draft: Draft, by: str) -> Any:
    """Hold the draft for approval; a message skipped as spam is kept as a case with no reply (a Case)."""
    if draft.status == "skipped":
        return pipeline.queue.record_spam(draft, by=by)
    return pipeline.queue.submit(draft, by=by)


def _draft_dict(draft: Draft, item: Any) -> dict[str, Any]:
    data = draft.to_dict()
    if isinstance(item, Case):
        data["case_id"] = item.id
    elif item is not None:
        data["item_id"] = item.id
        data["status"] = item.status
    return data


def _text(data: dict[str, Any]) -> str:
    t = data["triage"]
    lines = [
        f"triage: {t['kind']}, {t['sentiment']} ({t['sentiment_score']:+.2f}), priority {t['priority']}"
        + (f", CRISIS: {t['crisis_reason']}" if t["crisis"] else "")
        + (f", possible crisis: {t['crisis_reason']} (a person decides)" if t.get("crisis_level") == "possible" else "")
        + (", private info" if t["private_info"] else ""),
        f"status: {data['status']}" + (f" (queue item {data['item_id']})" if data.get("item_id") else "")
        + (f" (kept as case {data['case_id']}, no reply)" if data.get("case_id") else ""),
        f"sources: {', '.join(data['cited_ids']) or 'none'}   confidence {data['confidence']}",
    ]
    lines += [f"flag: {f}" for f in data["flags"]]
    lines.append("")
    lines.append(data["text"] or "(no reply drafted)")
    return "\n".join(lines)


def run_draft(args: argparse.Namespace) -> int:
    if args.channel not in CHANNELS:
        raise UserError(f"unknown channel {args.channel!r}; choose one of {', '.join(CHANNELS)}")
    if args.infile:
        return _batch(args)
    if not args.text or not args.text.strip():
        raise UserError("give the message text, or --in FILE.jsonl for a batch")
    pipeline = pipeline_from(args)
    if pipeline.index.count() == 0:
        raise UserError("the index is empty: run `copilot ingest` first")
    inbound = Inbound(text=args.text, channel=args.channel, author=args.author, author_followers=args.followers)
    stream = not (args.json or args.no_stream) and sys.stderr.isatty()
    on_token = (lambda tok: print(tok, end="", file=sys.stderr, flush=True)) if stream else None
    draft = pipeline.drafter.draft(inbound, on_token=on_token)
    if stream:
        print(file=sys.stderr)
    item = None if args.no_queue else _queue(pipeline, draft, args.by)
    emit(_draft_dict(draft, item), args.json, _text)
    return 0


def _read_requests(path: Path) -> list[DraftRequest]:
    if not path.is_file():
        raise UserError(f"input file {path} not found")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = DraftRequest.model_validate(json.loads(line))
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{number}: invalid JSON: {exc.msg}") from exc
        except ValidationError as exc:
            err = exc.errors()[0]
            raise UserError(f"{path}:{number}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from exc
        if row.channel not in CHANNELS:
            raise UserError(f"{path}:{number}: unknown channel {row.channel!r}")
        rows.append(row.model_copy(update={"id": str(row.id) if row.id is not None else f"row-{number}"}))
    if not rows:
        raise UserError(f"{path} has no rows")
    return rows


def _batch(args: argparse.Namespace) -> int:
    """Draft every row; a row that fails is written with its error, never dropped."""
    requests = _read_requests(Path(args.infile))
    pipeline = pipeline_from(args)
    if pipeline.index.count() == 0:
        raise UserError("the index is empty: run `copilot ingest` first")
    inbounds = [Inbound(text=r.text, channel=r.channel, author=r.author, id=str(r.id),
                        author_followers=r.followers, waiting_minutes=r.waiting_minutes) for r in requests]
    triages = pipeline.triager.triage_batch(inbounds)
    out = Path(args.outfile) if args.outfile else None
    handle = out.open("w", encoding="utf-8") if out else sys.stdout
    failures = 0
    # Most urgent first, so crises and angry customers get their drafts before the rest.
    order = sorted(range(len(inbounds)), key=lambda i: -triages[i].priority_score)
    try:
        for i in order:
            try:
                draft = pipeline.drafter.draft(inbounds[i], triage=triages[i])
                item = None if args.no_queue else _queue(pipeline, draft, args.by)
                row = {"id": inbounds[i].id, **_draft_dict(draft, item)}
            except CopilotError as exc:
                failures += 1
                row = {"id": inbounds[i].id, "error": str(exc), "text": None}
            handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            handle.flush()
    finally:
        if out:
            handle.close()
    if out:
        print(f"drafted {len(inbounds) - failures} of {len(inbounds)} messages into {out}"
              + (f" ({failures} failed; see their 'error')" if failures else ""), file=sys.stderr)
    return 1 if failures == len(inbounds) else 0


def run_rewrite(args: argparse.Namespace) -> int:
    if args.channel not in CHANNELS:
        raise UserError(f"unknown channel {args.channel!r}; choose one of {', '.join(CHANNELS)}")
    pipeline = pipeline_from(args)
    text = pipeline.drafter.rewrite(args.text, args.action, channel=args.channel, language=args.language)
    emit({"action": args.action, "text": text}, args.json, lambda d: d["text"])
    return 0
