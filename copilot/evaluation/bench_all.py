"""``copilot bench all``: every benchmark in one run and one table, with the machine it ran on.

It calls the benchmarks the stages own (``copilot.models.bench``, ``copilot.triage.evaluate.bench_triage``,
``copilot.queue.bench``, ``copilot.evaluation.bench_retrieval``) and adds one of its own: whole drafts
through ``pipeline.drafter.draft`` with the configured chat model, timed to the first streamed token and
to the end. A section that cannot run (no model, no package) is reported with its reason; the rest go on.
"""

from __future__ import annotations

import os
import platform
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from copilot.config import Settings
from copilot.errors import CopilotError

SUPPORT_SET = Path(__file__).resolve().parents[2] / "evals" / "datasets" / "support.jsonl"
Log = Callable[[str], None]


def machine() -> dict[str, Any]:
    """CPU count and model, memory and load, from /proc where there is one."""
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "system": platform.system(),
        "python": platform.python_version(),
    }
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.read_text().splitlines()
            if line.startswith("model name")
        ]
        info["cpu"] = names[0] if names else platform.processor()
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["ram_gb"] = round(int(line.split()[1]) / (1 << 20), 1)
    if hasattr(os, "getloadavg"):
        info["load_avg_1m"] = round(os.getloadavg()[0], 2)
    return info


def _ms(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def bench_drafts(settings: Settings, n: int, log: Log | None = None) -> dict[str, Any]:
    """``n`` support cases (complaints and questions) drafted end to end with the configured chat model."""
    from copilot.evaluation.dataset import load_support_cases
    from copilot.evaluation.runs import Backends, eval_pipeline, model_label_of
    from copilot.evaluation.support import inbound_of

    cases = [
        c
        for c in load_support_cases(SUPPORT_SET)
        if c.expected.kind in ("complaint", "question") and c.expected_ids and not c.expected.crisis
    ][:n]
    _, pipeline = eval_pipeline(settings, Backends(), workspace=None, needs_chat=True)
    pipeline.ingest()
    label = model_label_of(pipeline)
    pipeline.drafter.draft(inbound_of(cases[0]))  # load the model and its fixed prefix once
    first, total, statuses = [], [], []
    for case in cases:
        started = time.perf_counter()
        seen: list[float] = []

        def on_token(_: str, seen: list[float] = seen, started: float = started) -> None:
            if not seen:
                seen.append((time.perf_counter() - started) * 1000)

        draft = pipeline.drafter.draft(inbound_of(case), on_token=on_token)
        total.append((time.perf_counter() - started) * 1000)
        first.extend(seen[:1])
        statuses.append("fallback" if any(f.startswith("fallback") for f in draft.flags) else draft.status)
        if log:
            log(f"draft {case.id}: first token {seen[0] if seen else '-'} ms, complete {total[-1]:.0f} ms")
    return {
        "chat": label,
        "n": len(cases),
        "first_token_ms_p50": _ms(first, 50),
        "first_token_ms_p95": _ms(first, 95),
        "latency_ms_p50": _ms(total, 50),
        "latency_ms_p95": _ms(total, 95),
        "outcomes": {s: statuses.count(s) for s in sorted(set(statuses))},
    }


def bench_triage_section(settings: Settings, n: int) -> dict[str, Any]:
    """Batch triage speed through the triage stage's own benchmark, on the messages ``bench triage`` uses."""
    from copilot.pipeline import build_pipeline
    from copilot.triage.evaluate import bench_triage
    from copilot.triage.training import seed_cases
    from copilot.triage.triager import Triager

    triager = build_pipeline(settings).triager
    if not isinstance(triager, Triager):  # the benchmark reads the trained triager's embedding time
        raise CopilotError(f"bench triage needs the trained triager, not {type(triager).__name__}")
    return dict(bench_triage(triager, [c.text for c in seed_cases()], n))


def bench_queue_section(items: int, workers: tuple[int, ...]) -> dict[str, Any]:
    """Approve+publish operations per second on SQLite through the queue's own benchmark."""
    from copilot.queue.bench import run_queue_bench

    return {
        "rows": [
            row.to_dict() for row in run_queue_bench(["sqlite"], pg_url=None, workers=workers, items=items)
        ]
    }


def run_all(settings: Settings, *, quick: bool = False, log: Log | None = None) -> dict[str, Any]:
    """Every section; ``quick`` shrinks each one (a smoke run, not numbers to record)."""
    from copilot.evaluation.bench_retrieval import run_retrieval_bench
    from copilot.models.bench import run_model_bench

    sections: dict[str, Callable[[], dict[str, Any]]] = {
        "retrieval": lambda: run_retrieval_bench(
            settings,
            n_ingest=200 if quick else 1000,
            scales=(1_000, 5_000) if quick else (1_000, 10_000, 100_000),
            pool_size=300 if quick else 1000,
            queries=10 if quick else 50,
            log=log,
        ),
        "triage": lambda: bench_triage_section(settings, 200 if quick else 1000),
        "queue": lambda: bench_queue_section(50 if quick else 200, (1, 2) if quick else (1, 4)),
        "model": lambda: run_model_bench(settings, runs=3 if quick else 10, raw_pairs=1 if quick else 3),
        "draft": lambda: bench_drafts(settings, 2 if quick else 8, log=log),
    }
    result: dict[str, Any] = {"machine": machine(), "quick": quick, "sections": {}}
    for name, section in sections.items():
        if log:
            log(f"-- {name}")
        started = time.perf_counter()
        try:
            data = section()
        except CopilotError as exc:  # a missing model or package: say so and measure the rest
            data = {"error": str(exc)}
        data["seconds"] = round(time.perf_counter() - started, 1)
        result["sections"][name] = data
    # The queue's worker processes come from a fork server, so RUSAGE_CHILDREN does not see them.
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["machine"]["load_avg_1m_end"] = machine().get("load_avg_1m")
    return result


def _rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    s = result["sections"]
    rows: list[tuple[str, str, str, str]] = []

    def failed(name: str) -> bool:
        if "error" in s.get(name, {}):
            rows.append((name, "not measured", s[name]["error"][:70], ""))
            return True
        return name not in s

    if not failed("retrieval"):
        ing, qry = s["retrieval"]["ingest"], s["retrieval"]["query"]
        rows += [
            (
                "retrieval",
                f"ingest ({ing['entries']} entries)",
                f"{ing['ingest_entries_per_s']} entries/s",
                "",
            ),
            ("retrieval", "raw embedding, same texts", f"{ing['raw_entries_per_s']} entries/s", ""),
            ("retrieval", "ingest / raw", f"{ing['ratio']}", ">= 0.8"),
        ]
        for row in qry["scales"]:
            rows.append(
                (
                    "retrieval",
                    f"query p50 / p95 at {row['chunks']:,} chunks",
                    f"{row['search_ms']['p50']} / {row['search_ms']['p95']} ms",
                    "p95 < 100 ms" if row["chunks"] >= 90_000 else "",
                )
            )
    if not failed("triage"):
        rows.append(
            (
                "triage",
                f"batch of {s['triage']['n']}",
                f"{s['triage']['messages_per_s']} messages/s",
                ">= 100/s",
            )
        )
    if not failed("draft"):
        d = s["draft"]
        rows += [
            (
                "draft",
                f"first token p50 / p95 ({d['n']} drafts)",
                f"{d['first_token_ms_p50']} / {d['first_token_ms_p95']} ms",
                "< 2000 ms",
            ),
            (
                "draft",
                "complete p50 / p95",
                f"{d['latency_ms_p50']} / {d['latency_ms_p95']} ms",
                "< 20000 ms",
            ),
        ]
    if not failed("model"):
        m = s["model"]
        warm, pair = m["warm"], m["raw_vs_adapter"]
        rows += [
            (
                "model",
                "first token p50 / p95 (adapter)",
                f"{warm['ttft_ms_p50']} / {warm['ttft_ms_p95']} ms",
                "",
            ),
            (
                "model",
                "completion p50 / p95 (adapter)",
                f"{warm['latency_ms_p50']} / {warm['latency_ms_p95']} ms",
                "",
            ),
            (
                "model",
                "raw llama.cpp vs adapter, first token",
                f"{pair['raw_ttft_ms_p50']} vs {pair['adapter_ttft_ms_p50']} ms",
                "",
            ),
            (
                "model",
                "raw llama.cpp vs adapter, decode",
                f"{pair['raw_decode_tokens_per_s_p50']} vs {pair['adapter_decode_tokens_per_s_p50']} tok/s",
                "",
            ),
        ]
    if not failed("queue"):
        for row in s["queue"]["rows"]:
            rows.append(
                (
                    "queue",
                    f"approve+publish, {row['backend']}, {row['workers']} workers",
                    f"{row['ops_per_s']} ops/s",
                    "lost 0, duplicated 0"
                    if not (row["lost"] or row["duplicated"])
                    else f"LOST {row['lost']} DUP {row['duplicated']}",
                )
            )
    rows.append(
        (
            "memory",
            "peak RSS of the benchmark process (all sections but the queue's workers)",
            f"{result['peak_rss_mb']} MB",
            "",
        )
    )
    return rows


def format_all(result: dict[str, Any]) -> str:
    """One Markdown table, with the machine above it."""
    m = result["machine"]
    head = (
        f"machine: {m.get('cpu', '?')}, nproc {m['nproc']}, RAM {m.get('ram_gb', '?')} GB, "
        f"load average {m.get('load_avg_1m')} at start, {m.get('load_avg_1m_end')} at end"
        + (" (quick run: smaller sizes, not for the record)" if result["quick"] else "")
    )
    lines = [head, "", "| area | measure | value | goal |", "| --- | --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in _rows(result)]
    return "\n".join(lines)
