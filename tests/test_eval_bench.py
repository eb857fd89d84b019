"""The retrieval benchmark at toy sizes with HashEmbeddings, its synthetic data, and the bench-all table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fakes import HashEmbeddings

from copilot.cli import main
from copilot.config import Settings
from copilot.evaluation.bench_all import format_all, machine
from copilot.evaluation.bench_retrieval import (
    VariantEmbeddings,
    format_retrieval_bench,
    run_retrieval_bench,
    synthetic_entries,
    synthetic_queries,
    write_table,
)
from copilot.knowledge import load_knowledge


def test_synthetic_entries_are_distinct_reproducible_and_valid(tmp_path: Path) -> None:
    rows = synthetic_entries(300, seed=1)
    assert rows == synthetic_entries(300, seed=1) and rows != synthetic_entries(300, seed=2)
    assert len({r["question"] for r in rows}) == 300 and len({r["id"] for r in rows}) == 300
    entries = load_knowledge(write_table(rows, tmp_path))
    assert len(entries) == 300 and all(e.answer and "1. " in e.answer for e in entries)
    queries = synthetic_queries(20)
    assert len(set(queries)) == 20 and not set(queries) & {r["question"] for r in rows}
    with pytest.raises(ValueError, match="at most"):
        synthetic_entries(10**7)


def test_variants_are_near_their_pool_vector_and_queries_are_embedded_for_real() -> None:
    base = HashEmbeddings()
    pool_text = "The status LED of my Nimbus hub blinks orange at night"
    pool = {pool_text: base.encode([pool_text])[0]}
    variants = VariantEmbeddings(base, pool)
    exact, v1, v1_again, v2 = variants.encode(
        [pool_text, f"{pool_text} [v1]", f"{pool_text} [v1]", f"{pool_text} [v2]"]
    )
    assert np.allclose(exact, pool[pool_text])
    assert np.allclose(v1, v1_again) and not np.allclose(v1, v2)
    assert 0.85 < float(v1 @ exact) < 0.999 and abs(float(np.linalg.norm(v1)) - 1) < 1e-5
    other = "where is my parcel"
    assert np.allclose(variants.encode([other])[0], base.encode([other])[0])
    assert np.allclose(variants.embed_query(pool_text), base.encode([pool_text])[0])


def test_the_retrieval_benchmark_grows_one_index_and_times_queries(tmp_path: Path) -> None:
    result = run_retrieval_bench(
        Settings(data_dir=tmp_path),
        embedder=HashEmbeddings(),
        n_ingest=60,
        scales=(200, 800),
        pool_size=80,
        queries=6,
    )
    ingest = result["ingest"]
    assert ingest["entries"] == 60 and ingest["chunks"] == 120
    assert ingest["ingest_entries_per_s"] > 0 and ingest["raw_entries_per_s"] > 0
    assert ingest["ratio"] == pytest.approx(
        ingest["ingest_entries_per_s"] / ingest["raw_entries_per_s"], abs=0.002
    )
    small, big = result["query"]["scales"]
    assert (small["chunks"], big["chunks"]) == (200, 800)
    assert big["added"] == 600  # the bigger index grew from the smaller one
    for row in (small, big):
        assert 0 < row["search_ms"]["p50"] <= row["search_ms"]["p95"]
    text = format_retrieval_bench(result)
    assert "variants of 80 really embedded entries" in text and "800" in text
    assert not any(tmp_path.glob("copilot-bench-retrieval-*"))


def test_bench_all_prints_one_table_with_the_machine() -> None:
    info = machine()
    assert info["nproc"] >= 1 and "ram_gb" in info and info["cpu"]
    result = {
        "machine": {**info, "load_avg_1m_end": 1.0},
        "quick": False,
        "peak_rss_mb": 900.0,
        "sections": {
            "retrieval": {
                "ingest": {
                    "entries": 1000,
                    "ingest_entries_per_s": 90.0,
                    "raw_entries_per_s": 100.0,
                    "ratio": 0.9,
                },
                "query": {"scales": [{"chunks": 100_000, "search_ms": {"p50": 40.0, "p95": 70.0}}]},
            },
            "triage": {"n": 1000, "messages_per_s": 350.0},
            "model": {"error": "the embedded chat model is not assembled: run `make setup`"},
            "queue": {
                "rows": [{"backend": "sqlite", "workers": 4, "ops_per_s": 120.0, "lost": 0, "duplicated": 0}]
            },
        },
    }
    table = format_all(result)
    assert table.startswith(f"machine: {info['cpu']}, nproc {info['nproc']}")
    assert "| retrieval | query p50 / p95 at 100,000 chunks | 40.0 / 70.0 ms | p95 < 100 ms |" in table
    assert "| retrieval | ingest / raw | 0.9 | >= 0.8 |" in table
    assert "| triage | batch of 1000 | 350.0 messages/s | >= 100/s |" in table
    assert "| model | not measured | the embedded chat model is not assembled" in table
    assert "| queue | approve+publish, sqlite, 4 workers | 120.0 ops/s | lost 0, duplicated 0 |" in table
    assert (
        "| memory | peak RSS of the benchmark process (all sections but the queue's workers) | 900.0 MB |"
        in table
    )


def test_bench_retrieval_rejects_bad_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "retrieval", "--scales", "1k,10k"]) == 1
    assert "--scales must be whole numbers" in capsys.readouterr().err
    assert main(["bench", "retrieval", "--scales", "5"]) == 1
    assert "at least one size of 10 chunks" in capsys.readouterr().err
