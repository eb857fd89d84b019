"""Retrieval benchmark: ingest throughput against the raw embedder, and query latency as the index grows.

1. Ingest: ``n_ingest`` synthetic FAQ entries (a JSONL table) go through ``ingest`` (load, validate, chunk,
   embed, store in Chroma, build BM25) into an empty index. The same chunk texts are embedded with the
   embedder alone (``encode``, one call) before and after, and the faster of the two counts. Ingest
   entries/s over raw entries/s is the overhead ratio (goal: at least 0.8).
2. Query latency at each scale (default 1k, 10k and 100k chunks): embedding 100k texts would take the
   best part of an hour on two cores, so a *pool* of distinct entries is embedded for real and the index
   is filled with variants of them. A variant's text is its pool entry's text with a variant tag (so BM25
   sees distinct documents) and its vector is the pool vector plus seeded Gaussian noise, re-normalised
   (cosine to the original about 0.95), written in bulk through the same ``Index.sync``. Queries are new
   phrasings embedded live, so each timed search includes its query embedding, the Chroma HNSW query,
   BM25 over every body chunk, the fetch of missing halves and the fusion. Goal: p95 under 100 ms at 100k.
"""

from __future__ import annotations

import json
import random
import re
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from langchain_core.embeddings import Embeddings

from copilot.config import Settings
from copilot.knowledge import chunk_entries, load_knowledge
from copilot.models.embeddings import as_matrix
from copilot.pipeline import build_pipeline

VOCAB_FILE = Path(__file__).with_name("synthetic_faq.yaml")
DEFAULT_SCALES = (1_000, 10_000, 100_000)
NOISE = 0.018  # per-dimension standard deviation of a variant's noise (384 dims: cosine ~0.95)
_VARIANT = re.compile(r" \[v(\d+)\]")
Log = Callable[[str], None]


@lru_cache(maxsize=1)
def _vocab() -> dict[str, list[str]]:
    data: dict[str, list[str]] = yaml.safe_load(VOCAB_FILE.read_text(encoding="utf-8"))
    return data


def synthetic_entries(n: int, seed: int = 7) -> list[dict[str, str]]:
    """``n`` distinct FAQ rows (``id``, ``question``, ``answer``, ``category``), reproducible by seed."""
    v = _vocab()
    combos = len(v["products"]) * len(v["parts"]) * len(v["problems"]) * len(v["conditions"])
    if n > combos:
        raise ValueError(f"at most {combos} distinct synthetic entries")
    rng = random.Random(seed)
    picks = rng.sample(range(combos), n)
    rows = []
    for number, pick in enumerate(picks):
        pick, c = divmod(pick, len(v["conditions"]))
        pick, pr = divmod(pick, len(v["problems"]))
        p, pa = divmod(pick, len(v["parts"]))
        product, part = v["products"][p], v["parts"][pa]
        problem, condition = v["problems"][pr], v["conditions"][c]
        steps = rng.sample(v["steps"], 3)
        question = f"The {part} of my {product} {problem} {condition}. What can I do?"
        answer = (
            f"When the {part} of a {product} {problem} {condition}, try these steps in order. "
            + " ".join(f"{i}. {s}" for i, s in enumerate(steps, 1))
            + f" If the {product} still {problem}, contact support with its serial number."
        )
        rows.append(
            {
                "id": f"syn-{number:06d}",
                "question": question,
                "answer": answer,
                "category": product.split()[0].lower(),
            }
        )
    return rows


def synthetic_queries(n: int, seed: int = 11) -> list[str]:
    """``n`` customer-style questions in the same domain, phrased unlike the entries."""
    v = _vocab()
    rng = random.Random(seed)
    return [
        f"{rng.choice(v['query_openers'])} {rng.choice(v['products']).lower()} {rng.choice(v['problems'])} "
        f"{rng.choice(v['conditions'])}, {rng.choice(v['parts'])} too"
        for _ in range(n)
    ]


def write_table(rows: Sequence[dict[str, str]], folder: Path) -> Path:
    """Rows as a JSONL knowledge table in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "faq.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


class VariantEmbeddings(Embeddings):
    """Pool texts get their real vectors; ``<pool text> [vN]`` gets the pool vector plus seeded noise.

    Anything else (the benchmark's queries) is embedded by the real embedder, so query time is real.
    """

    def __init__(self, base: Embeddings, pool: dict[str, np.ndarray], noise: float = NOISE) -> None:
        self.base = base
        self.pool = pool
        self.noise = noise
        self.name = getattr(base, "name", type(base).__name__)

    def encode(self, texts: list[str]) -> np.ndarray:
        out = []
        for text in texts:
            match = _VARIANT.search(text)
            key = _VARIANT.sub("", text)
            if key not in self.pool:
                out.append(as_matrix(self.base, [text])[0])
                continue
            vector = self.pool[key]
            if match:
                rng = np.random.default_rng(int(match.group(1)))
                vector = vector + rng.normal(0.0, self.noise, len(vector)).astype(np.float32)
                vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
            out.append(vector)
        return np.vstack(out).astype(np.float32) if out else np.zeros((0, 1), dtype=np.float32)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return as_matrix(self.base, [text])[0].tolist()


def _variant_rows(pool: Sequence[dict[str, str]], count: int) -> list[dict[str, str]]:
    rows = []
    for i in range(count):
        base = pool[i % len(pool)]
        if i < len(pool):
            rows.append(dict(base))
        else:
            rows.append(
                {
                    "id": f"var-{i:07d}",
                    "question": f"{base['question']} [v{i}]",
                    "answer": f"{base['answer']} [v{i}]",
                    "category": base["category"],
                }
            )
    return rows


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50": round(float(np.percentile(values, 50)), 2),
        "p95": round(float(np.percentile(values, 95)), 2),
        "mean": round(float(np.mean(values)), 2),
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1 << 20) if sys.platform == "darwin" else peak / 1024, 1)


def bench_ingest(settings: Settings, embedder: Embeddings, n: int, work: Path) -> dict[str, Any]:
    """Ingest ``n`` synthetic entries into an empty index, then embed the same chunk texts raw."""
    table = write_table(synthetic_entries(n, seed=3), work / "ingest-kb")
    texts = [c.text for c in chunk_entries(load_knowledge(table))]
    as_matrix(embedder, texts[:32])  # warm the model

    def raw() -> float:
        started = time.perf_counter()
        as_matrix(embedder, texts)
        return time.perf_counter() - started

    # Raw encoding before and after the ingest, the faster one counting: on a shared machine the load
    # changes from minute to minute, and the comparison should not flatter the ingest.
    first = raw()
    pipeline = build_pipeline(
        settings.model_copy(update={"data_dir": work / "ingest-data", "collection": "bench"}),
        embedder=embedder,
    )
    report = pipeline.ingest(table)
    raw_s = min(first, raw())
    return {
        "entries": n,
        "chunks": len(texts),
        "ingest_s": round(report.seconds, 2),
        "ingest_embed_s": round(report.embed_seconds, 2),
        "ingest_entries_per_s": round(n / report.seconds, 1),
        "raw_s": round(raw_s, 2),
        "raw_entries_per_s": round(n / raw_s, 1),
        "raw_chunks_per_s": round(len(texts) / raw_s, 1),
        "ratio": round(raw_s / report.seconds, 3),
        "goal_ratio": 0.8,
    }


def bench_queries(
    settings: Settings,
    embedder: Embeddings,
    scales: Sequence[int],
    *,
    pool_size: int,
    queries: int,
    work: Path,
    log: Log | None = None,
) -> dict[str, Any]:
    """Query latency (embedding included) at each index size, growing one index through ``Index.sync``."""
    pool = synthetic_entries(pool_size, seed=5)
    pool_texts = [c.text for c in chunk_entries(load_knowledge(write_table(pool, work / "pool")))]
    started = time.perf_counter()
    vectors = as_matrix(embedder, pool_texts)
    pool_embed_s = time.perf_counter() - started
    variants = VariantEmbeddings(embedder, dict(zip(pool_texts, vectors, strict=True)))
    pipeline = build_pipeline(
        settings.model_copy(update={"data_dir": work / "query-data", "collection": "bench"}),
        embedder=variants,
    )
    questions = synthetic_queries(queries)
    rows = []
    for scale in sorted(scales):
        entries = max(1, scale // 2)  # each synthetic entry is one question chunk and one body chunk
        table = write_table(_variant_rows(pool, entries), work / f"kb-{scale}")
        t0 = time.perf_counter()
        report = pipeline.ingest(table)
        build_s = time.perf_counter() - t0
        chunks = pipeline.index.count()
        for q in questions[:3]:  # warm caches (BM25 load, HNSW pages)
            pipeline.retriever.search(q)
        search_ms, embed_ms = [], []
        for q in questions:
            t1 = time.perf_counter()
            embedder.embed_query(q)
            embed_ms.append((time.perf_counter() - t1) * 1000)
            result = pipeline.retriever.search(q)
            search_ms.append(result.latency_ms)
        search = _percentiles(search_ms)
        row = {
            "chunks": chunks,
            "entries": entries,
            "build_s": round(build_s, 1),
            "added": report.added,
            "search_ms": search,
            "embed_query_ms": _percentiles(embed_ms),
            "goal_p95_ms": 100.0,
        }
        rows.append(row)
        if log:
            log(
                f"{chunks} chunks: search p50 {search['p50']} ms, p95 {search['p95']} ms "
                f"(index grown in {row['build_s']} s)"
            )
    return {
        "pool_entries": pool_size,
        "pool_chunks": len(pool_texts),
        "pool_embed_s": round(pool_embed_s, 1),
        "queries": len(questions),
        "noise_sd": NOISE,
        "scales": rows,
    }


def run_retrieval_bench(
    settings: Settings,
    *,
    embedder: Embeddings | None = None,
    n_ingest: int = 1000,
    scales: Sequence[int] = DEFAULT_SCALES,
    pool_size: int = 1000,
    queries: int = 50,
    log: Log | None = None,
) -> dict[str, Any]:
    """Both parts, in a temporary folder that is removed afterwards."""
    if embedder is None:
        from copilot.models.factory import build_embedder

        embedder = build_embedder(settings)
    name = str(getattr(embedder, "name", type(embedder).__name__))
    with tempfile.TemporaryDirectory(prefix="copilot-bench-retrieval-") as tmp:
        work = Path(tmp)
        ingest = bench_ingest(settings, embedder, n_ingest, work)
        if log:
            log(
                f"ingest {ingest['ingest_entries_per_s']} entries/s vs raw {ingest['raw_entries_per_s']} "
                f"entries/s (ratio {ingest['ratio']})"
            )
        query = bench_queries(
            settings, embedder, scales, pool_size=pool_size, queries=queries, work=work, log=log
        )
    return {
        "embedder": name,
        "threads": settings.n_threads,
        "ingest": ingest,
        "query": query,
        "peak_rss_mb": peak_rss_mb(),
    }


def format_retrieval_bench(result: dict[str, Any]) -> str:
    """The benchmark as text, saying what was measured and how the big indexes were built."""
    ing, qry = result["ingest"], result["query"]
    lines = [
        f"embedder {result['embedder']}, {result['threads']} threads",
        (
            f"ingest: {ing['entries']} entries ({ing['chunks']} chunks) in {ing['ingest_s']} s = "
            f"{ing['ingest_entries_per_s']} entries/s; raw encode of the same texts {ing['raw_s']} s = "
            f"{ing['raw_entries_per_s']} entries/s; ratio {ing['ratio']} (goal >= {ing['goal_ratio']})"
        ),
        (
            f"query latency, embedding included ({qry['queries']} queries per size; the index holds "
            f"variants of {qry['pool_entries']} really embedded entries, vectors = pool vector + noise sd "
            f"{qry['noise_sd']}):"
        ),
        f"  {'chunks':>8}  {'search p50':>10}  {'search p95':>10}  {'embed p50':>9}  {'built in':>8}",
    ]
    for row in qry["scales"]:
        lines.append(
            f"  {row['chunks']:>8}  {row['search_ms']['p50']:>8} ms  {row['search_ms']['p95']:>8} ms  "
            f"{row['embed_query_ms']['p50']:>6} ms  {row['build_s']:>6} s"
        )
    lines.append(f"goal: p95 < 100 ms at 100k chunks; peak RSS {result['peak_rss_mb']} MB")
    return "\n".join(lines)
