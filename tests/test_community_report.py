"""The insights report on a generated history of 500+ cases: the HTML's figures checked against the database."""

from __future__ import annotations

import base64
import io
import json
import sqlite3
import statistics
import tempfile
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from _community_support import build_index_template, make_pipeline
from matplotlib import image

from copilot.cli import main
from copilot.community.demo import seed_demo
from copilot.community.inputs import parse_since
from copilot.community.report import build_report
from copilot.errors import UserError

END = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)


class _Figures(HTMLParser):
    """Every ``data-metric`` value and every chart image of the report page."""

    def __init__(self) -> None:
        super().__init__()
        self.metrics: dict[str, str] = {}
        self.charts: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("data-metric"):
            self.metrics[a["data-metric"]] = a.get("data-value") or ""
        if tag == "img" and a.get("data-chart"):
            self.charts[a["data-chart"]] = a.get("src") or ""


def figures(html: str) -> _Figures:
    parser = _Figures()
    parser.feed(html)
    return parser


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    # The queue commits with fsync; a memory-backed folder, where there is one, keeps the 500 cases quick.
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as tmp:
        template = build_index_template(tmp_path_factory.mktemp("report-index"))
        pipe = make_pipeline(Path(tmp), template)
        demo = seed_demo(pipe, cases=520, days=30, end=END)
        yield pipe, demo


def sql(pipe, query: str, *params: object) -> list[tuple]:  # type: ignore[no-untyped-def]
    db = sqlite3.connect(pipe.settings.data_dir / "copilot.db")
    try:
        return db.execute(query, params).fetchall()
    finally:
        db.close()


def stamp(at: datetime) -> str:
    """How SQLAlchemy stores a UTC time in SQLite."""
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def when(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize("days", [30, 7])
def test_html_figures_match_the_database(seeded: tuple, days: int) -> None:
    pipe, demo = seeded
    since = END - timedelta(days=days)
    report = build_report(pipe, f"{days}d", until=END)
    got = figures(report.html).metrics
    lo, hi = stamp(since), stamp(END)
    cases = sql(pipe, "SELECT id, channel, status, json_extract(triage, '$.kind'), received_at, resolved_at "
                      "FROM queue_cases WHERE received_at >= ? AND received_at < ?", lo, hi)
    assert len(cases) >= (500 if days == 30 else 80)
    assert int(got["cases.total"]) == len(cases)
    assert int(got["cases.resolved"]) == sum(1 for c in cases if c[2] == "resolved")
    for kind, n in Counter(c[3] for c in cases).items():
        assert int(got[f"volume.by_kind.{kind}"]) == n
    for channel, n in Counter(c[1] for c in cases).items():
        assert int(got[f"volume.by_channel.{channel}"]) == n
    # First response: the earliest posted reply of each case, from its arrival.
    received = {c[0]: when(c[4]) for c in cases}
    first: dict[int, datetime] = {}
    for case_id, posted in sql(pipe, "SELECT case_id, posted_at FROM queue_items WHERE kind = 'reply' "
                                     "AND posted_at IS NOT NULL"):
        if case_id in received and (case_id not in first or when(posted) < first[case_id]):
            first[case_id] = when(posted)
    minutes = [(first[c] - received[c]).total_seconds() / 60 for c in first]
    assert int(got["response.answered_cases"]) == len(minutes)
    assert float(got["response.first_response_minutes_median"]) == pytest.approx(statistics.median(minutes), abs=1e-3)
    assert float(got["response.first_response_minutes_p90"]) == pytest.approx(np.percentile(minutes, 90), abs=1e-3)
    # Acceptance and edits by kind, over drafts made in the period.
    items = sql(pipe, "SELECT kind, status, edit_distance FROM queue_items WHERE drafted_at >= ? AND drafted_at < ?",
                lo, hi)
    for kind in {i[0] for i in items}:
        rows = [i for i in items if i[0] == kind]
        approved = [i for i in rows if i[1] in ("approved", "posting", "posted", "failed")]
        rejected = [i for i in rows if i[1] == "rejected"]
        assert int(got[f"acceptance.by_kind.{kind}.drafted"]) == len(rows)
        assert int(got[f"acceptance.by_kind.{kind}.approved"]) == len(approved)
        assert int(got[f"acceptance.by_kind.{kind}.rejected"]) == len(rejected)
        if approved:
            assert float(got[f"acceptance.by_kind.{kind}.edit_distance_mean"]) == pytest.approx(
                statistics.fmean(i[2] for i in approved), abs=1e-3)
            assert float(got[f"acceptance.by_kind.{kind}.acceptance_rate"]) == pytest.approx(
                len(approved) / (len(approved) + len(rejected)), abs=1e-4)
    # Sentiment: daily counts and the period mean.
    scores = sql(pipe, "SELECT json_extract(triage, '$.sentiment_score'), date(received_at) FROM queue_cases "
                       "WHERE received_at >= ? AND received_at < ?", lo, hi)
    assert float(got["sentiment.mean"]) == pytest.approx(statistics.fmean(s for s, _ in scores), abs=1e-4)
    for day, n in Counter(d for _, d in scores).items():
        assert int(got[f"sentiment.daily.{day}.cases"]) == n
    promoters = sql(pipe, "SELECT count(*) FROM community_promoters WHERE is_promoter = 1")[0][0]
    assert int(got["promoters.total"]) == promoters == demo.promoters > 0
    assert int(got["promoters.opted_out"]) == 1
    gaps = [json.loads(line) for line in (pipe.settings.data_dir / "knowledge_gaps.jsonl").read_text().splitlines()]
    assert int(got["gaps.logged"]) == sum(1 for g in gaps if since <= datetime.fromisoformat(g["time"]) < END)
    top = report.data["top_issues"][0]
    cited = sql(pipe, "SELECT count(*) FROM queue_items WHERE kind = 'reply' AND drafted_at >= ? AND drafted_at < ? "
                      "AND EXISTS (SELECT 1 FROM json_each(json_extract(draft, '$.cited_ids')) WHERE value = ?)",
                lo, hi, top["id"])[0][0]
    assert int(got[f"top_issues.{top['id']}.count"]) == cited


def test_charts_are_real_images(seeded: tuple) -> None:
    pipe, _ = seeded
    report = build_report(pipe, "30d", until=END)
    charts = figures(report.html).charts
    assert set(charts) == {"volume", "sentiment", "response", "acceptance"}
    for name, src in charts.items():
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1])
        assert png == report.figures[name] and png[:8] == b"\x89PNG\r\n\x1a\n"
        pixels = image.imread(io.BytesIO(png), format="png")
        assert pixels.shape[0] >= 300 and pixels.shape[1] >= 700
        colours = {tuple(p) for p in (pixels[::4, ::4, :3] * 255).astype(int).reshape(-1, 3)}
        assert len(colours) > 30, f"{name} looks blank"
    assert "![Volume by channel and kind](charts/volume.png)" in report.markdown
    assert "| twitter |" in report.markdown and "## Knowledge gaps" in report.markdown


def test_report_command_writes_markdown_html_and_json(seeded: tuple, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    pipe, _ = seeded
    monkeypatch.setattr("copilot.cli.community_cmd.pipeline_from", lambda args, **kw: pipe)
    out = tmp_path / "out"
    assert main(["report", "--since", "2026-11-14", "--until", "2026-11-28T06:00", "--out", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["period"]["days"] == 14.25 and data["cases"]["total"] > 0
    assert (out / "report.html").is_file() and (out / "report.md").is_file()
    assert sorted(p.name for p in (out / "charts").iterdir()) == [
        "acceptance.png", "response.png", "sentiment.png", "volume.png"]
    assert json.loads((out / "report.json").read_text())["cases"]["total"] == data["cases"]["total"]
    assert main(["report", "--since", "yesterday-ish"]) == 1
    assert "use a period like 7d" in capsys.readouterr().err


def test_empty_period_still_renders(seeded: tuple) -> None:
    pipe, _ = seeded
    report = build_report(pipe, END + timedelta(days=1), until=END + timedelta(days=2))
    got = figures(report.html).metrics
    assert got["cases.total"] == "0" and got["response.first_response_minutes_median"] == ""
    assert set(report.figures) == {"volume", "sentiment", "response", "acceptance"}
    with pytest.raises(UserError, match="the period is empty"):
        build_report(pipe, END, until=END - timedelta(hours=1))


def test_demo_history_is_realistic_and_refuses_a_used_queue(seeded: tuple) -> None:
    pipe, demo = seeded
    assert demo.cases >= 500 and demo.starters and demo.outreach and demo.gaps_logged
    assert set(demo.outcomes) >= {"posted", "rejected", "pending"}
    audit = dict(sql(pipe, "SELECT action, count(*) FROM queue_audit GROUP BY action"))
    assert audit["post"] == demo.outcomes["posted"] and audit["edit"] > 50 and audit["reject"] >= 10
    assert sql(pipe, "SELECT count(*) FROM queue_cases WHERE status = 'resolved' AND resolved_at < received_at") == [
        (0,)]
    with pytest.raises(UserError, match="already holds"):
        seed_demo(pipe, cases=60, end=END)


def test_since_periods() -> None:
    assert parse_since("7d", END) == END - timedelta(days=7)
    assert parse_since("36h", END) == END - timedelta(hours=36)
    assert parse_since("2w", END) == END - timedelta(weeks=2)
    assert parse_since("2026-11-01", END) == datetime(2026, 11, 1, tzinfo=UTC)
    for bad in ("0d", "soon", "7y"):
        with pytest.raises(UserError):
            parse_since(bad, END)
