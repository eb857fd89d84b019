"""``copilot incidents ...``: many customers reporting the same problem at once.

    copilot incidents list [--status open]
    copilot incidents show 3                      the incident, its texts, who is left out and why, the numbers
    copilot incidents detect                      look for surges now (the intake does it as messages arrive)
    copilot incidents draft 3 [--phase followup] --by lead    write the texts again, in every language needed
    copilot incidents approve 3 --by lead [--text-file en=reply.txt ...]   one approval queues a reply for all
    copilot incidents resolve 3 --by lead         fixed: the follow-up is drafted for approval
    copilot incidents merge 3 5 --by lead         incident 5 is the same problem as 3
    copilot incidents dismiss 3 --by lead         not an incident: its held cases are drafted one by one
    copilot incidents check-announcements         resolve the open incidents a new announcement says are over
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from copilot.cli import emit
from copilot.cli.args import add_json, pipeline_from
from copilot.errors import UserError
from copilot.incidents.records import INCIDENT_STATUSES, PHASES, Incident, QueuedReport


def register(commands: Any, groups: dict[str, Any]) -> None:
    """Add the ``incidents`` commands."""
    parser = commands.add_parser("incidents", help="surges of customers reporting one problem: one answer for all")
    actions = parser.add_subparsers(dest="incidents_command", metavar="ACTION", parser_class=type(parser))
    actions.required = True
    p = actions.add_parser("list", help="incidents, newest first")
    p.add_argument("--status", choices=INCIDENT_STATUSES)
    add_json(p)
    p.set_defaults(func=_list)
    p = actions.add_parser("show", help="one incident: texts, affected cases, who is left out and why, numbers")
    p.add_argument("id", type=int)
    p.add_argument("--cases", type=int, default=10, help="affected cases to list (default 10; 0: all)")
    add_json(p)
    p.set_defaults(func=_show)
    p = actions.add_parser("detect", help="look for surges in the recent messages now")
    add_json(p)
    p.set_defaults(func=_detect)
    p = actions.add_parser("draft", help="write the reply (or follow-up) again for every language needed")
    _id_phase_by(p)
    p.set_defaults(func=_draft)
    p = actions.add_parser("approve", help="approve the reply (or follow-up) once: it is queued for every case")
    _id_phase_by(p)
    p.add_argument("--text-file", action="append", default=[], metavar="LANG=FILE",
                   help="the text to approve in a language, from a file (repeatable); default: the drafted texts")
    p.set_defaults(func=_approve)
    p = actions.add_parser("resolve", help="the problem is fixed: draft the follow-up for approval")
    p.add_argument("id", type=int)
    p.add_argument("--by", required=True, help="the reviewer or admin")
    p.add_argument("--announcement", help="the knowledge-base entry id that announces the fix")
    add_json(p)
    p.set_defaults(func=_resolve)
    p = actions.add_parser("merge", help="SOURCE is the same problem as TARGET: one incident")
    p.add_argument("target", type=int)
    p.add_argument("source", type=int)
    p.add_argument("--by", required=True, help="the reviewer or admin")
    add_json(p)
    p.set_defaults(func=_merge)
    p = actions.add_parser("dismiss", help="not an incident: nothing is sent, its held cases are drafted one by one")
    p.add_argument("id", type=int)
    p.add_argument("--by", required=True, help="the reviewer or admin")
    add_json(p)
    p.set_defaults(func=_dismiss)
    p = actions.add_parser("check-announcements", help="resolve the open incidents a new announcement ends")
    add_json(p)
    p.set_defaults(func=_check)


def _id_phase_by(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", type=int)
    p.add_argument("--phase", choices=PHASES, default="reply", help="the holding reply (default) or the follow-up")
    p.add_argument("--by", required=True, help="who does it (a reviewer or admin to approve)")
    add_json(p)


def _line(x: Incident) -> str:
    when = x.first_seen.strftime("%Y-%m-%d %H:%M")
    return f"#{x.id:<4} {x.status:<9} {x.affected:>6} affected ({x.left_out} own reply)  since {when}  {x.title}"


def _emit_incidents(found: list[Incident], as_json: bool, none: str) -> int:
    emit([x.to_dict() for x in found], as_json, lambda _: "\n".join(_line(x) for x in found) or none)
    return 0


def _list(args: argparse.Namespace) -> int:
    return _emit_incidents(pipeline_from(args).incidents.list_incidents(args.status), args.json, "no incidents")


def _texts(title: str, texts: dict[str, str], approved: str | None) -> list[str]:
    state = f"approved by {approved}" if approved else "not approved yet"
    lines = [f"{title} ({state}):"]
    lines += [f"  [{lang}] {text}" for lang, text in sorted(texts.items())] or ["  (none yet)"]
    return lines


def _show(args: argparse.Namespace) -> int:
    desk = pipeline_from(args).incidents
    incident = desk.get(args.id)
    members = desk.members(args.id)
    shown = members if args.cases == 0 else members[: args.cases]
    data: dict[str, Any] = {"incident": incident.to_dict(), "insights": desk.insights(args.id),
            "timeline": [e.to_dict() for e in desk.timeline(args.id)],
            "related": [{"id": x.id, "title": x.title, "similarity": round(s, 3)} for x, s in desk.related(args.id)],
            "cases": [m.to_dict() for m in shown]}

    def text(_: Any) -> str:
        numbers = data["insights"]
        out = [_line(incident), f"keywords: {', '.join(incident.keywords)}"]
        if incident.announcement_id:
            out.append(f"announcement: {incident.announcement_id}")
        out += _texts("reply", incident.reply, incident.reply_approved_by)
        if incident.status != "open" or incident.followup:
            out += _texts("follow-up", incident.followup, incident.followup_approved_by)
        first = numbers["first_response_minutes"]
        out.append(f"answered {numbers['answered']} of {numbers['affected']}; first response median "
                   f"{first['median']} min, p90 {first['p90']} min; sentiment before {numbers['sentiment_before']}, "
                   f"after {numbers['sentiment_after']}")
        out.append("volume: " + ", ".join(f"{k[11:]} {v}" for k, v in numbers["volume"].items()))
        out += [f"related: #{r['id']} {r['title']} (similarity {r['similarity']})" for r in data["related"]]
        out.append(f"cases ({len(shown)} of {len(members)}):")
        for m in shown:
            sent = ", ".join(p for p, i in (("reply", m.reply_item_id), ("follow-up", m.followup_item_id)) if i)
            state = f"own reply: {m.left_out}" if m.left_out else (f"sent: {sent}" if sent else "waiting")
            out.append(f"  case {m.case_id} [{m.channel}, {m.language}] {m.text[:70]!r} — {state}")
        out += [f"{e['at']:%Y-%m-%d %H:%M} {e['action']} by {e['actor']}" for e in data["timeline"]]
        return "\n".join(out)

    emit(data, args.json, text)
    return 0


def _detect(args: argparse.Namespace) -> int:
    return _emit_incidents(pipeline_from(args).incidents.detect(), args.json, "no new surge in the window")


def _draft(args: argparse.Namespace) -> int:
    incident = pipeline_from(args).incidents.draft(args.id, args.phase, by=args.by)
    texts = incident.texts(args.phase)
    emit(incident.to_dict(), args.json, lambda _: "\n".join(_texts(args.phase, texts, None)))
    return 0


def _read_texts(pairs: list[str]) -> dict[str, str]:
    texts: dict[str, str] = {}
    for pair in pairs:
        lang, sep, name = pair.partition("=")
        if not sep or not lang.strip() or not name.strip():
            raise UserError(f"--text-file wants LANG=FILE (e.g. en=reply.txt), not {pair!r}")
        path = Path(name)
        if not path.is_file():
            raise UserError(f"no file {path}: write the {lang} text into it first")
        texts[lang.strip()] = path.read_text(encoding="utf-8").strip()
    return texts


def _report(report: QueuedReport) -> str:
    lines = [(f"queued {len(report.queued)} approved {report.phase} item(s); {report.already} case(s) had it "
             f"already; {len(report.superseded)} own draft(s) set aside")]
    if report.left_out:
        lines.append(f"{len(report.left_out)} case(s) need their own reply:")
        lines += [f"  case {case_id}: {why}" for case_id, why in report.left_out[:50]]
    lines.append("`copilot publish --by NAME` posts them (or the publisher of `copilot serve`)")
    return "\n".join(lines)


def _approve(args: argparse.Namespace) -> int:
    texts = _read_texts(args.text_file)
    report = pipeline_from(args).incidents.approve(args.id, args.phase, by=args.by, texts=texts or None)
    emit(report.to_dict(), args.json, lambda _: _report(report))
    return 0


def _resolve(args: argparse.Namespace) -> int:
    incident = pipeline_from(args).incidents.resolve(args.id, by=args.by, announcement_id=args.announcement)
    emit(incident.to_dict(), args.json, lambda _: "\n".join(
        [_line(incident), *_texts("follow-up", incident.followup, None),
         f"approve it with `copilot incidents approve {incident.id} --phase followup --by NAME`"]))
    return 0


def _merge(args: argparse.Namespace) -> int:
    incident = pipeline_from(args).incidents.merge(args.target, args.source, by=args.by)
    emit(incident.to_dict(), args.json, lambda _: _line(incident))
    return 0


def _dismiss(args: argparse.Namespace) -> int:
    incident, drafted = pipeline_from(args).incidents.dismiss(args.id, by=args.by)
    emit({"incident": incident.to_dict(), "drafted": drafted}, args.json,
         lambda _: f"{_line(incident)}\ndrafted {len(drafted)} held case(s) one by one: items {drafted}")
    return 0


def _check(args: argparse.Namespace) -> int:
    return _emit_incidents(pipeline_from(args).incidents.check_announcements(), args.json,
                           "no open incident is ended by an announcement")
