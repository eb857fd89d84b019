"""``copilot bench model``: the bench prompts, and one real run on the embedded model (e2e)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from copilot.cli import main
from copilot.config import load_settings
from copilot.models.bench import bench_prompts
from copilot.models.llamacpp_state import unload_all


def test_bench_prompts_vary_the_case_and_keep_the_system_prefix(tmp_path: Path) -> None:
    prompts = bench_prompts(load_settings(data_dir=tmp_path), 12)

    assert len(prompts) == 12
    assert len({p.messages[0].content for p in prompts}) == 1  # one fixed system prefix
    users = [str(p.messages[1].content) for p in prompts]
    assert len(set(users)) == 12  # every run is a new prompt, even when the cases cycle
    assert users[0].startswith("Case 1000")
    assert '<passage id="kb-wifi-drops">' in users[0]
    assert "<message>" in users[0]


def test_bench_rejects_zero_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "model", "--runs", "0"]) == 1
    assert "--runs" in capsys.readouterr().err


@pytest.mark.e2e
def test_bench_model_reports_real_numbers(
    embedded_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COPILOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COPILOT_MODEL_PATH", str(embedded_model_path))
    unload_all()  # measure a cold start, as in a fresh process

    assert main(["bench", "model", "--runs", "2", "--max-tokens", "8", "--raw-pairs", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)

    assert result["runs"] == 2 and result["max_tokens"] == 8
    assert 200 < result["prompt_tokens_mean"] < 450
    assert result["cold"]["prompt_tokens_evaluated"] > result["warm"]["prompt_tokens_evaluated_p50"] + 50
    assert result["warm"]["ttft_ms_p50"] > 0
    assert result["warm"]["latency_ms_p95"] >= result["warm"]["latency_ms_p50"]
    assert result["raw_vs_adapter"]["raw_decode_tokens_per_s_p50"] > 0
    assert result["raw_vs_adapter"]["adapter_decode_tokens_per_s_p50"] > 0
    assert result["peak_rss_mb"] > 300
