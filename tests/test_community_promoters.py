"""Promoters with fake models: detection from history, the registry, consent and opt-out, outreach drafting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _community_support import (
    build_index_template,
    days_ago,
    inbound_case,
    labels,
    make_pipeline,
)
from fakes import FakeChat

from copilot.cli import main
from copilot.community.promoters import (
    Message,
    draft_outreach,
    history_from_file,
    opt_out,
    scan_promoters,
    score_history,
)
from copilot.community.registry import Registry
from copilot.errors import NotFoundError, UserError

PRAISE = labels("praise", "positive", 0.8)
THANKS_TEXT = ("Hi sunny_scenes, thank you for sharing your lovely lumio-strip setups and your warm words "
               "about our lights. They brighten the whole community!")
THANKS = json.dumps({"message": THANKS_TEXT})


@pytest.fixture(scope="module")
def index_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_index_template(tmp_path_factory.mktemp("promoters-index"))


def history(pipe) -> None:  # type: ignore[no-untyped-def]
    for text in ("Love my new lumio-strip behind the TV, the colours are gorgeous!",
                 "The sunrise scene is the best way to wake up, thank you Lumio",
                 "Another evening with the warm-white scene on the lumio-strip, so cosy"):
        inbound_case(pipe, text, author="@Sunny_Scenes", channel="instagram", triage=PRAISE, when=days_ago(5))
    inbound_case(pipe, "@jo_99 had the same hub offline problem, what worked for me was a static IP in the router",
                 author="@hubguru", channel="forum", triage=labels("conversation", "neutral", 0.1), when=days_ago(3))
    for text in ("I recommend Lumio to every friend who asks about smart lights",
                 "Switched to Lumio last year and told all my neighbours to get some, best smart bulbs around"):
        inbound_case(pipe, text, author="@fan_of_light", channel="twitter", triage=labels("praise", "positive", 0.7))
    for text in ("My hub is offline again, terrible", "Still broken, I would not recommend Lumio",
                 "Support never answers"):
        inbound_case(pipe, text, author="@grumpy", channel="twitter", triage=labels("complaint", "negative", -0.8))
    inbound_case(pipe, "Lovely lights, lovely people", author="@grumpy", triage=PRAISE)
    inbound_case(pipe, "Thanks for the kind words!", author="@LumioHelp", triage=PRAISE)
    inbound_case(pipe, "Nice bulbs", author="@once", triage=PRAISE)


def test_scan_finds_promoters_by_praise_help_and_recommendations(tmp_path: Path, index_template: Path) -> None:
    pipe = make_pipeline(tmp_path, index_template)
    history(pipe)
    report = scan_promoters(pipe, by="casey")
    assert set(report.new) == {"sunny_scenes", "hubguru", "fan_of_light"}
    found = {p.handle: p for p in report.promoters}
    assert set(found) == {"sunny_scenes", "hubguru", "fan_of_light"}  # not @grumpy, @once or our own account
    sunny = found["sunny_scenes"]
    assert (sunny.positive, sunny.helpful, sunny.display, sunny.channels) == (3, 0, "@Sunny_Scenes", ("instagram",))
    assert "lumio-strip" in sunny.interests and sunny.consent == "unknown" and sunny.contactable
    assert found["hubguru"].helpful == 1 and "lumio-hub" in found["hubguru"].interests
    assert found["fan_of_light"].recommendations == 2
    grumpy = Registry(pipe.queue).get("grumpy")
    assert not grumpy.is_promoter and grumpy.negative == 3 and grumpy.recommendations == 0
    assert sunny.evidence and all("@" not in e["quote"] or "@jo" not in e["quote"] for e in sunny.evidence)
    again = scan_promoters(pipe, by="casey")
    assert again.new == () and len(again.promoters) == 3  # detected once, counted again


def test_opt_out_survives_rescans_and_blocks_outreach_with_a_clear_message(
        tmp_path: Path, index_template: Path) -> None:
    pipe = make_pipeline(tmp_path, index_template, chat=FakeChat(replies=[THANKS]))
    history(pipe)
    scan_promoters(pipe, by="casey")
    result = opt_out(pipe, "@SUNNY_scenes", by="casey", reason="asked us by DM")
    assert result.promoter.opted_out and result.promoter.consent == "declined"
    scan_promoters(pipe, by="casey")
    member = Registry(pipe.queue).get("sunny_scenes")
    assert member.opted_out and member.opt_out_reason == "asked us by DM"
    assert [h["action"] for h in member.history] == ["detected", "opt_out"]
    before = len(pipe.queue.list_items(status="all"))
    with pytest.raises(UserError, match="opted out of outreach on .*must not be contacted"):
        draft_outreach(pipe, "@sunny_scenes", by="casey")
    assert len(pipe.queue.list_items(status="all")) == before and pipe.chat.seen == []


def test_opt_out_of_an_unknown_member_is_kept_for_later_scans(tmp_path: Path, index_template: Path) -> None:
    pipe = make_pipeline(tmp_path, index_template)
    opt_out(pipe, "@hubguru", by="casey")
    history(pipe)
    scan_promoters(pipe, by="casey")
    member = Registry(pipe.queue).get("hubguru")
    assert member.is_promoter and member.opted_out and member.source == "manual"
    with pytest.raises(UserError, match="opted out"):
        draft_outreach(pipe, "hubguru", by="casey")


def test_outreach_is_personal_queued_and_remembered(tmp_path: Path, index_template: Path) -> None:
    pipe = make_pipeline(tmp_path, index_template, chat=FakeChat(replies=[THANKS]))
    history(pipe)
    scan_promoters(pipe, by="casey")
    item = draft_outreach(pipe, "@sunny_scenes", kind="thanks", by="casey")
    assert (item.kind, item.status, item.author, item.channel) == ("outreach", "pending", "@sunny_scenes", "instagram")
    assert item.text == THANKS_TEXT and not item.draft["needs_attention"]
    assert "outreach: thanks" in item.draft["flags"] and "send privately: a DM" in item.draft["flags"]
    prompt = pipe.chat.seen[0][1].content
    assert "Sunny_Scenes" in prompt and "3 positive posts" in prompt and "lumio-strip" in prompt
    member = Registry(pipe.queue).get("sunny_scenes")
    assert member.history[-1]["action"] == "outreach" and member.history[-1]["item_id"] == item.id
    with pytest.raises(UserError, match="already waiting for review"):
        draft_outreach(pipe, "@sunny_scenes", by="casey")
    pipe.queue.approve(item.id, by="rita", version=item.version)
    with pytest.raises(UserError, match="wait 30 days"):
        draft_outreach(pipe, "@sunny_scenes", by="casey")
    forced = draft_outreach(pipe, "@sunny_scenes", kind="beta", by="casey", force=True)
    assert forced.id != item.id


def test_outreach_asking_for_reviews_or_offering_gifts_falls_back(tmp_path: Path, index_template: Path) -> None:
    pushy = ("MESSAGE: Hi hubguru! Please leave a review and retweet us, and we'll send you a free gift "
             "for every post about your lumio-hub.")
    pipe = make_pipeline(tmp_path, index_template, chat=FakeChat(replies=[pushy]))
    history(pipe)
    scan_promoters(pipe, by="casey")
    draft = draft_outreach(pipe, "hubguru", kind="advocate", by=None)
    assert draft.kind == "outreach" and draft.needs_attention and draft.template == "community/outreach_fallback.j2"
    [fallback] = [f for f in draft.flags if f.startswith("fallback:")]
    assert "reviews, follows or shares" in fallback and "free" in fallback
    assert "Lumio Lights Insider programme" in draft.text and draft.cited_ids == ("kb-promoter-outreach",)
    assert "review" not in draft.text.lower() and "free" not in draft.text.lower()
    assert len(draft.text) <= 500


def test_default_invitation_follows_the_history(tmp_path: Path, index_template: Path) -> None:
    pipe = make_pipeline(tmp_path, index_template, chat=FakeChat(replies=["MESSAGE: no"]))
    history(pipe)
    scan_promoters(pipe, by="casey")
    assert "outreach: guest_post" in draft_outreach(pipe, "fan_of_light", by=None).flags


def test_unknown_member_and_bad_kind(tmp_path: Path, index_template: Path) -> None:
    pipe = make_pipeline(tmp_path, index_template, chat=FakeChat())
    with pytest.raises(NotFoundError, match="--scan"):
        draft_outreach(pipe, "@nobody", by="casey")
    with pytest.raises(UserError, match="unknown outreach"):
        draft_outreach(pipe, "@nobody", kind="bribe", by="casey")
    with pytest.raises(UserError, match="invalid handle"):
        opt_out(pipe, "two words", by="casey")


def test_empty_history_has_no_promoters(tmp_path: Path, index_template: Path) -> None:
    pipe = make_pipeline(tmp_path, index_template)
    report = scan_promoters(pipe, by="casey")
    assert (report.messages, report.authors, report.promoters) == (0, 0, ())


def test_declined_consent_blocks_outreach_and_granted_consent_allows(tmp_path: Path, index_template: Path) -> None:
    pipe = make_pipeline(tmp_path, index_template, chat=FakeChat(replies=[THANKS]))
    history(pipe)
    scan_promoters(pipe, by="casey")
    registry = Registry(pipe.queue)
    registry.set_consent("sunny_scenes", "declined", by="casey")
    with pytest.raises(UserError, match="declined"):
        draft_outreach(pipe, "sunny_scenes", by="casey")
    registry.set_opt_out("sunny_scenes", opted_out=True, by="casey")
    with pytest.raises(UserError, match="opted out"):
        registry.set_consent("sunny_scenes", "granted", by="casey")
    registry.set_opt_out("sunny_scenes", opted_out=False, by="casey")
    assert draft_outreach(pipe, "sunny_scenes", by="casey").kind == "outreach"


def test_opt_out_withdraws_waiting_outreach(tmp_path: Path, index_template: Path) -> None:
    pipe = make_pipeline(tmp_path, index_template, chat=FakeChat(replies=[THANKS]))
    history(pipe)
    scan_promoters(pipe, by="casey")
    item = draft_outreach(pipe, "sunny_scenes", by="casey")
    result = opt_out(pipe, "sunny_scenes", by="rita")
    assert result.withdrawn == (item.id,)
    rejected = pipe.queue.get(item.id)
    assert rejected.status == "rejected" and "opted out" in rejected.reject_reason


def test_roles_apply_to_the_registry(tmp_path: Path, index_template: Path) -> None:
    pipe = make_pipeline(tmp_path, index_template, chat=FakeChat(replies=[THANKS]))
    history(pipe)
    pipe.queue.add_user("ada", "admin")
    pipe.queue.add_user("al", "agent", by="ada")
    with pytest.raises(UserError, match="unknown user"):
        scan_promoters(pipe, by="mallory")
    scan_promoters(pipe, by="al")
    item = draft_outreach(pipe, "sunny_scenes", by="al")
    result = opt_out(pipe, "sunny_scenes", by="al")  # an agent may record an opt-out, not reject drafts
    assert result.promoter.opted_out and result.needs_reviewer == (item.id,) and result.withdrawn == ()


def test_history_file_is_validated_and_scored(tmp_path: Path, index_template: Path) -> None:
    pipe = make_pipeline(tmp_path, index_template)
    path = tmp_path / "history.jsonl"
    rows = [{"author": "@kit", "text": "Love the app, best smart lights", "kind": "praise", "sentiment": "positive"}] * 3
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{oops\n")
    with pytest.raises(UserError, match="history.jsonl:4: invalid JSON"):
        history_from_file(pipe, path)
    path.write_text("\n".join(json.dumps(r) for r in rows) + '\n{"text": "no author"}\n')
    with pytest.raises(UserError, match="history.jsonl:4: author"):
        history_from_file(pipe, path)
    path.write_text("\n".join(json.dumps(r) for r in rows))
    report = scan_promoters(pipe, by="casey", messages=history_from_file(pipe, path))
    assert [p.handle for p in report.promoters] == ["kit"]


def test_score_rules() -> None:
    def msgs(author: str, *texts: str, kind: str = "praise", sentiment: str = "positive") -> list[Message]:
        return [Message(author=author, text=t, channel="forum", kind=kind, sentiment=sentiment) for t in texts]

    signals = {s.handle: s for s in score_history(
        msgs("@a", "love it", "great", "brilliant")
        + msgs("@b", "love it", "great")
        + msgs("@c", "@dee try unplugging the hub for 30 seconds, worked for me", kind="conversation",
               sentiment="neutral")
        + msgs("@e", "I would not recommend these", "never recommend Lumio", kind="complaint", sentiment="negative")
        + msgs("Jane Doe", "love it", "great", "brilliant"),
        ["lumio-hub"], "Lumio")}
    assert signals["a"].is_promoter and not signals["b"].is_promoter
    assert signals["c"].is_promoter and signals["c"].interests == ("lumio-hub",)
    assert not signals["e"].is_promoter and signals["e"].recommendations == 0
    assert "jane doe" not in signals  # not a handle: nobody to contact


def test_cli_outreach_refusal_and_registry(tmp_path: Path, index_template: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    pipe = make_pipeline(tmp_path, index_template, chat=FakeChat(replies=[THANKS]))
    history(pipe)
    monkeypatch.setattr("copilot.cli.community_cmd.pipeline_from", lambda args, **kw: pipe)
    assert main(["community", "promoters", "--scan", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["scan"]["authors"] == 5 and {p["handle"] for p in out["promoters"]} == {
        "sunny_scenes", "hubguru", "fan_of_light"}
    assert main(["community", "opt-out", "@hubguru", "--by", "casey", "--reason", "asked"]) == 0
    assert "hubguru opted out" in capsys.readouterr().out
    assert main(["community", "outreach", "--promoter", "@hubguru"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("copilot: error: @hubguru opted out of outreach") and err.count("\n") == 1
    assert main(["community", "outreach", "--promoter", "@sunny_scenes", "--json"]) == 0
    item = json.loads(capsys.readouterr().out)
    assert item["kind"] == "outreach" and pipe.queue.get(item["id"]).status == "pending"
    assert main(["community", "promoters", "--show", "sunny_scenes"]) == 0
    assert "outreach by copilot" in capsys.readouterr().out
    assert main(["community", "consent", "sunny_scenes", "granted", "--by", "casey", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["consent"] == "granted"
