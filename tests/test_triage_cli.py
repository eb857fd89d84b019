"""``copilot triage``, ``triage train``, ``eval triage`` and ``bench triage`` through the real entry point,
with the fake embedder and the data folder in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _triage_support import AIRLINE, HOLDOUT, copy_seed, fake_seed_dir  # noqa: F401
from fakes import HashEmbeddings

from copilot.cli import main
from copilot.triage.cases import load_cases


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_seed_dir: Path) -> Path:  # noqa: F811
    data = tmp_path / "data"
    monkeypatch.setenv("COPILOT_DATA_DIR", str(data))
    monkeypatch.setenv("COPILOT_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setattr("copilot.models.factory.build_embedder", lambda settings: HashEmbeddings())
    copy_seed(fake_seed_dir, data)
    return data


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def labelled_rows(n: int) -> list[dict[str, object]]:
    words = {"negative": "awful broken late refund", "neutral": "when does the store open",
             "positive": "thanks brilliant love it"}
    return [{"message": f"{words[s]} number {i}", "airline_sentiment": s}
            for i in range(n) for s in ("negative", "neutral", "positive")]


def test_triage_one_message(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "triage", "I want to kill myself tonight", "--json")
    assert code == 0
    label = json.loads(out)
    assert label["crisis"] is True and label["crisis_reason"] == "self-harm" and label["priority"] == 1
    assert set(label) >= {"kind", "sentiment", "sentiment_score", "priority", "priority_score", "crisis",
                          "crisis_reason", "private_info", "private_reason", "language"}
    code, out, _ = run(capsys, "triage", "Where", "is", "my", "order?", "--followers", "5000",
                       "--waiting-minutes", "60")
    assert code == 0 and out.startswith("P") and " en" in out


def test_triage_a_batch(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [
        {"id": "m1", "text": "Reach me at jane.doe@example.com about my refund", "channel": "email"},
        {"id": "m2", "text": "Love the new scenes!", "followers": 120000, "waiting_minutes": 5},
        {"id": "m3", "text": "Hola, mi pedido no ha llegado todavía"},
    ])
    code, out, _ = run(capsys, "triage", "--in", str(path), "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["id"] for r in rows] == ["m1", "m2", "m3"]
    assert rows[0]["private_info"] is True and "email" in rows[0]["private_reason"]
    assert rows[2]["language"] == "es"
    code, out, _ = run(capsys, "triage", "--in", str(path))
    assert code == 0 and out.splitlines()[0].startswith("m1  P")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["triage"], "give a message to triage"),
        (["triage", "  "], "the message is empty"),
        (["triage", "train"], "usage: copilot triage train FILE"),
        (["eval", "triage", "--cases", "{holdout}", "--train", "{holdout}", "--split", "0.5"], "not both"),
        (["eval", "triage", "--cases", "{holdout}", "--split", "2"], "between 0 and 1"),
        (["eval", "triage", "--cases", "{missing}"], "no such file"),
        (["triage", "--in", "{bad}"], "bad.jsonl:2: invalid JSON"),
        (["triage", "train", "{unlabelled}"], "no label columns"),
        (["bench", "triage", "--n", "0"], "at least 1"),
    ],
)
def test_bad_input_exits_1_with_one_line(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str,
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": nope}\n', encoding="utf-8")
    unlabelled = write_jsonl(tmp_path / "plain.jsonl", [{"text": "hello"}])
    paths = {"holdout": str(HOLDOUT), "missing": str(tmp_path / "missing.csv"), "bad": str(bad),
             "unlabelled": str(unlabelled)}
    code, out, err = run(capsys, *[a.format(**paths) for a in argv])
    assert code == 1 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_eval_out_of_the_box(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "eval", "triage", "--cases", str(HOLDOUT), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["n"] == len(load_cases(HOLDOUT).cases)
    assert report["fields"] == ["kind", "sentiment", "crisis", "private_info"]
    for field in report["fields"]:
        assert 0 <= report[field]["accuracy"] <= 1 and 0 <= report[field]["macro_f1"] <= 1
        assert report[field]["per_class"]
    assert report["model"] == "seed" and report["messages_per_s"] > 0
    assert report["cases"]["columns"]["text"] == "text"
    code, out, _ = run(capsys, "eval", "triage", "--cases", str(HOLDOUT))
    assert code == 0 and "macro-F1" in out and "messages/s" in out


def test_eval_with_a_split_is_deterministic(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "history.csv"
    rows = labelled_rows(20)
    path.write_text("message,airline_sentiment,airline\n" + "".join(
        f"{r['message']},{r['airline_sentiment']},X\n" for r in rows), encoding="utf-8")
    first = json.loads(run(capsys, "eval", "triage", "--cases", str(path), "--split", "0.5", "--seed", "3",
                           "--json")[1])
    second = json.loads(run(capsys, "eval", "triage", "--cases", str(path), "--split", "0.5", "--seed", "3",
                            "--json")[1])
    assert first["n"] == 30 and first["trained_on"] == {**second["trained_on"], "seconds": first["trained_on"]["seconds"]}
    assert first["sentiment"] == second["sentiment"]
    assert first["sentiment"]["macro_f1"] > 0.9  # the words separate the classes perfectly
    assert first["cases"]["columns"] == {"text": "message", "sentiment": "airline_sentiment"}
    assert first["cases"]["ignored_columns"] == ["airline"]
    assert list(first) [:2] == ["n", "sentiment"]


def test_eval_trained_on_another_file(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", labelled_rows(15))
    test = write_jsonl(tmp_path / "test.jsonl", labelled_rows(5))
    code, out, _ = run(capsys, "eval", "triage", "--cases", str(test), "--train", str(train), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["trained_on"]["n"] == 45 and report["model"] == "trained:train.jsonl"
    assert report["sentiment"]["accuracy"] == 1.0
    assert not (data_dir / "triage" / "team.npz").exists()  # evaluation never replaces the team's model


def test_train_saves_the_team_model_and_triage_uses_it(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path = write_jsonl(tmp_path / "ours.jsonl", labelled_rows(15))
    code, out, _ = run(capsys, "triage", "train", str(path), "--json")
    assert code == 0
    result = json.loads(out)
    assert Path(result["saved"]) == data_dir / "triage" / "team.npz" and Path(result["saved"]).exists()
    assert result["heads"]["sentiment"]["source"] == "team+seed" and result["heads"]["kind"]["source"] == "seed"
    code, out, _ = run(capsys, "eval", "triage", "--cases", str(path), "--json")
    assert json.loads(out)["model"] == "team:ours.jsonl"
    code, out, _ = run(capsys, "triage", "train", str(path))
    assert code == 0 and "trained the team triage model on 45 messages" in out


def test_bench_triage(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "bench", "triage", "--n", "60", "--repeats", "1", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["n"] == 60 and result["messages_per_s"] > 0 and 0 <= result["embedding_share"] <= 1
    assert result["embedder"] == "hash-bow-256" and result["model"] == "seed"


@pytest.mark.skipif(not AIRLINE.exists(), reason="the shared airline tweets are not on this machine")
def test_the_airline_file_loads_as_a_customer_history() -> None:
    case_set = load_cases(AIRLINE)
    assert case_set.columns == {"text": "text", "sentiment": "airline_sentiment"}
    assert case_set.label_fields == ["sentiment"] and len(case_set.cases) > 7000
