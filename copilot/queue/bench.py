"""Queue throughput benchmark: approve+publish operations per second with N worker processes, and a check
that no post was lost or duplicated.

Each run gets a fresh database (a new SQLite file, or a new PostgreSQL schema that is dropped after) and
its own outbox. The workers are real processes: each approves its share of the items and publishes after
every approval, so publishers race for the same approved items the way concurrent reviewers would.
"""

from __future__ import annotations

import json
import multiprocessing
import queue as queue_module
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from copilot.config import Settings
from copilot.errors import ConflictError, ProviderError, UserError
from copilot.queue.db import pg_schema
from copilot.queue.publish import OutboxPublisher
from copilot.queue.store import open_queue

BENCH_ACTOR = "bench"


@dataclass(frozen=True)
class BenchRow:
    """One benchmark run."""

    backend: str
    workers: int
    items: int
    seconds: float
    ops_per_s: float
    posted: int
    lost: int
    duplicated: int
    conflicts: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _draft(number: int) -> dict[str, Any]:
    triage = {"kind": "question", "sentiment": "neutral", "sentiment_score": 0.0, "priority": 1 + number % 4,
              "priority_score": float(number % 100)}
    return {
        "text": f"Thanks for asking! Here is how to fix it (benchmark item {number}).",
        "channel": "forum",
        "inbound": {"text": f"How do I fix problem {number}?", "channel": "forum", "author": f"user{number}",
                    "id": f"bench-{number}", "waiting_minutes": number % 30},
        "triage": triage,
        "kind": "reply",
        "status": "pending",
    }


def _worker(
    settings_args: dict[str, Any], index: int, workers: int, ready: Any, start: Any, results: Any
) -> None:
    """One benchmark process: approve every item whose id falls to it, publishing after each approval."""
    settings = Settings(**settings_args)
    queue = open_queue(settings)
    publisher = OutboxPublisher(settings.outbox_path)
    mine = [item.id for item in queue.list_items(status="pending", limit=1_000_000) if item.id % workers == index]
    ready.put(index)
    start.wait()
    conflicts = 0
    for item_id in mine:
        try:
            queue.approve(item_id, by=BENCH_ACTOR, version=queue.get(item_id).version)
        except ConflictError:
            conflicts += 1
        queue.publish_approved(publisher, by=BENCH_ACTOR)
    queue.close()
    results.put(conflicts)


def run_once(settings: Settings, backend: str, workers: int, items: int) -> BenchRow:
    """Seed ``items`` drafts, run ``workers`` processes, time them, and count posts in DB and outbox."""
    queue = open_queue(settings)
    queue.import_drafts([_draft(n) for n in range(items)], sha256=uuid.uuid4().hex, source="bench")
    queue.close()
    # Fresh processes forked from a server that imported the queue once: no inherited connections.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["copilot.queue", "copilot.queue.bench", "copilot.queue.delivery"])
    ready, results, start = context.Queue(), context.Queue(), context.Event()
    args = {"data_dir": settings.data_dir, "database_url": settings.database_url}
    processes = [
        context.Process(target=_worker, args=(args, index, workers, ready, start, results), daemon=True)
        for index in range(workers)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        _next(ready, processes)
    began = time.perf_counter()
    start.set()
    conflicts = sum(_next(results, processes) for _ in processes)
    seconds = time.perf_counter() - began
    for process in processes:
        process.join(timeout=60)
    queue = open_queue(settings)
    posted_ids = {item.id for item in queue.list_items(status="posted", limit=items + 1)}
    queue.close()
    lines = [json.loads(line) for line in settings.outbox_path.read_text().splitlines() if line.strip()]
    counts = Counter(line["item_id"] for line in lines)
    return BenchRow(
        backend=backend, workers=workers, items=items, seconds=round(seconds, 3),
        ops_per_s=round(items / seconds, 1), posted=len(counts),
        lost=items - len(posted_ids & set(counts)), duplicated=sum(n - 1 for n in counts.values()),
        conflicts=conflicts,
    )


def _next(channel: Any, processes: Sequence[Any]) -> Any:
    """The next message from the workers, or an error as soon as one of them died."""
    while True:
        try:
            return channel.get(timeout=1.0)
        except queue_module.Empty:
            dead = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
            if dead:
                raise ProviderError(f"a benchmark worker died (exit code {dead[0]})") from None


def run_queue_bench(
    backends: Sequence[str], *, pg_url: str | None, workers: Sequence[int] = (1, 8, 32), items: int = 320,
    work_dir: Path | None = None,
) -> list[BenchRow]:
    """Every backend times every worker count, each on a fresh database."""
    rows: list[BenchRow] = []
    with tempfile.TemporaryDirectory(prefix="copilot-bench-", dir=work_dir) as tmp:
        for backend in backends:
            for count in workers:
                data_dir = Path(tmp) / f"{backend}-{count}"
                if backend == "sqlite":
                    rows.append(run_once(Settings(data_dir=data_dir), backend, count, items))
                elif backend == "postgres":
                    if not pg_url:
                        raise UserError("the postgres benchmark needs --pg-url (see scripts/postgres.sh)")
                    with pg_schema(pg_url) as url:
                        rows.append(run_once(Settings(data_dir=data_dir, database_url=url), backend, count, items))
                else:
                    raise UserError(f"unknown backend {backend!r}; use sqlite or postgres")
    return rows


def format_table(rows: Sequence[BenchRow]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| backend | workers | items | seconds | approve+publish ops/s | posted | lost | duplicated | conflicts |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r.backend} | {r.workers} | {r.items} | {r.seconds:.2f} | {r.ops_per_s:.1f} | {r.posted} | "
            f"{r.lost} | {r.duplicated} | {r.conflicts} |"
        )
    return "\n".join(lines)
