"""Discussion starters with fake models: topics, formats, checks, near-duplicates, fallbacks, the queue."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from _community_support import (
    TODAY,
    PromptChat,
    build_index_template,
    days_ago,
    good_starter,
    inbound_case,
    labels,
    make_pipeline,
)
from fakes import FakeChat
from rapidfuzz import fuzz

from copilot.cli import main
from copilot.community import starters as starters_module
from copilot.community.events import load_events
from copilot.community.starters import (
    conversation_topics,
    draft_starters,
    format_problems,
    generate_starters,
    mentions_event,
)
from copilot.errors import UserError
from copilot.pii import find_pii


@pytest.fixture(scope="module")
def index_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_index_template(tmp_path_factory.mktemp("starters-index"))


def test_five_varied_starters_are_queued_from_calendar_and_knowledge(tmp_path: Path, index_template: Path) -> None:
    pipe = make_pipeline(tmp_path, index_template, chat=PromptChat(respond=good_starter))
    items = generate_starters(pipe, n=5, by="casey", today=TODAY)
    assert len(items) == 5
    stored = pipe.queue.list_items(kind="starter")
    assert sorted(i.id for i in stored) == sorted(i.id for i in items)
    assert all(i.status == "pending" and i.kind == "starter" and i.drafted_by == "casey" for i in stored)
    texts = [i.text for i in items]
    assert all(fuzz.token_sort_ratio(a, b) < 85 for n, a in enumerate(texts) for b in texts[n + 1:])
    flags = [i.draft["flags"] for i in items]
    sources = {f.split("(")[-1].rstrip(")") for fl in flags for f in fl if f.startswith("topic:")}
    assert {"calendar", "knowledge"} <= sources
    formats = {f.removeprefix("format: ") for fl in flags for f in fl if f.startswith("format:")}
    assert len(formats) >= 3  # a mix, not five questions
    assert not any(i.draft["needs_attention"] for i in items)  # the model's posts passed every check
    assert all(len(t) <= 500 and not find_pii(t) for t in texts)


def test_model_repeating_itself_is_retried_then_replaced_by_a_distinct_template(
        tmp_path: Path, index_template: Path) -> None:
    same = "POST: What's your favourite evening scene? Tell us below."
    pipe = make_pipeline(tmp_path, index_template, chat=FakeChat(replies=[same]))
    run = draft_starters(pipe, n=4, fmt="question", today=TODAY)
    texts = [d.text for d in run.drafts]
    assert len(texts) == 4 and texts[0] == same.removeprefix("POST: ")
    for draft in run.drafts[1:]:
        assert draft.needs_attention and draft.template == "community/starter_fallback.j2"
        assert any("near-duplicate" in f for f in draft.flags if f.startswith("fallback:"))
    assert all(fuzz.token_sort_ratio(a, b) < 85 for n, a in enumerate(texts) for b in texts[n + 1:])


def test_one_topic_still_gives_the_number_asked_for_written_by_the_model(
        tmp_path: Path, index_template: Path) -> None:
    """Five posts on one requested topic: further angles are tried before any template fills a gap."""
    posts = {
        "ask for their best tip": "What is the one tip you'd give for lighting a reading corner well?",
        "ask what they would tell a new owner": "New to this? Old hands, what should a beginner know before choosing a reading lamp?",
        "ask about their favourite setup": "Show and tell: which lamp, bulb and colour temperature does your reading nook use?",
        "ask what they would like to see next": "If we built one new scene for readers, what should it do?",
        "ask which option they prefer": "Warm or neutral white for reading in bed?\n- Warm\n- Neutral\n- Depends on the book",
        "ask how they use it": "How do you light your reading time?\n- A lamp by the chair\n- Ceiling light\n- A strip behind the shelf",
        "invite them to share a photo of their setup": "Reading-nook challenge: share a photo of your cosiest corner this week!",
        "invite them to try it this week and report back": "Try dimming to 30% for an evening of reading this week and post how it felt!",
    }
    calls = {"n": 0}

    def respond(messages: list) -> str:
        calls["n"] += 1
        if calls["n"] <= 2:  # the first plan fails twice: it must not cost the batch a post
            return '{"post": "no"}'
        angle = re.search(r"Angle: (.+?)\. JSON", str(messages[1].content)).group(1)
        return json.dumps({"post": posts.get(angle, f"Reading corners: {angle}? Tell us below.")})

    pipe = make_pipeline(tmp_path, index_template, chat=PromptChat(respond=respond))
    run = draft_starters(pipe, n=5, topic="reading corners", today=TODAY)
    assert len(run.drafts) == 5 and run.shortfall == 0
    assert all(d.template == "community/starter_user.j2" and not d.needs_attention for d in run.drafts)
    texts = [d.text for d in run.drafts]
    assert len(set(texts)) == 5


def test_templates_fill_the_batch_with_distinct_wording_when_the_model_never_passes(
        tmp_path: Path, index_template: Path) -> None:
    pipe = make_pipeline(tmp_path, index_template, chat=FakeChat(replies=['{"post": "no"}']))
    run = draft_starters(pipe, n=4, topic="reading corners", fmt="question", today=TODAY)
    assert len(run.drafts) == 4 and all(d.template == "community/starter_fallback.j2" for d in run.drafts)
    texts = [d.text for d in run.drafts]
    assert all(fuzz.token_sort_ratio(a, b) < 85 for n, a in enumerate(texts) for b in texts[n + 1:])


def test_near_duplicate_of_a_recent_post_is_not_drafted_again(tmp_path: Path, index_template: Path) -> None:
    pipe = make_pipeline(tmp_path, index_template, chat=PromptChat(respond=good_starter))
    first = generate_starters(pipe, n=2, fmt="question", by="casey", today=TODAY)
    second = draft_starters(pipe, n=2, fmt="question", today=TODAY)
    earlier = [i.text for i in first]
    for draft in second.drafts:
        assert all(fuzz.token_sort_ratio(draft.text, e) < 85 for e in earlier)
    # The same topics were tried first: their posts would repeat the queued ones, so other topics were used.
    assert {f for d in second.drafts for f in d.flags if f.startswith("topic:")}.isdisjoint(
        {f for i in first for f in i.draft["flags"] if f.startswith("topic:")})


def test_template_that_repeats_an_earlier_post_drops_the_topic(tmp_path: Path, index_template: Path) -> None:
    pipe = make_pipeline(tmp_path, index_template, chat=FakeChat(replies=["POST: no"]))
    first = draft_starters(pipe, n=1, topic="movie night scenes", fmt="question", today=TODAY)
    assert first.drafts[0].template == "community/starter_fallback.j2"
    pipe.queue.submit(first.drafts[0], by="casey")
    again = draft_starters(pipe, n=1, topic="movie night scenes", fmt="question", today=TODAY)
    assert again.drafts == () and again.shortfall == 1
    assert again.rejected and again.rejected[0]["duplicate_of"] == first.drafts[0].text


def test_bad_model_output_is_retried_with_the_problems(tmp_path: Path, index_template: Path) -> None:
    bad = "POST: @maria_77 call us on +44 20 7946 0958 and win 50 free bulbs! Simply tell us your favourite scene?"
    good = '{"post": "Which scene do you use to relax after a long day? Tell us below."}'
    pipe = make_pipeline(tmp_path, index_template, chat=FakeChat(replies=[bad, good]))
    run = draft_starters(pipe, n=1, topic="relaxing scenes", fmt="question", today=TODAY)
    [draft] = run.drafts
    assert draft.text == "Which scene do you use to relax after a long day? Tell us below."
    [retried] = [f for f in draft.flags if f.startswith("retried:")]
    for problem in ("personal data", "tags @maria_77", "offers win, free", "it states",
                    "'simply', which our brand voice avoids"):
        assert problem in retried
    retry_prompt = pipe.chat.seen[1][-1].content
    assert "personal data" in retry_prompt and "never tag members" in retry_prompt
    assert "temperature" not in pipe.chat.kwargs_seen[0] and pipe.chat.kwargs_seen[1]["temperature"] == 0.7
    assert pipe.chat.kwargs_seen[0]["response_format"]["json_schema"]["schema"]["required"] == ["post"]


def test_too_long_for_twitter_falls_back_within_the_limit(tmp_path: Path, index_template: Path) -> None:
    rambling = "POST: Which of the " + "many, " * 60 + "scenes do you use?"
    pipe = make_pipeline(tmp_path, index_template, chat=FakeChat(replies=[rambling]))
    run = draft_starters(pipe, n=2, channel="twitter", today=TODAY)
    assert len(run.drafts) == 2
    for draft in run.drafts:
        assert len(draft.text) <= 280 and draft.channel == "twitter" and draft.needs_attention
        assert any("the limit is 280" in f for f in draft.flags)


def test_long_posts_are_cut_at_a_sentence_and_repetition_is_refused(tmp_path: Path, index_template: Path) -> None:
    long = ("Which scene do you use for movie night at home? We love seeing your setups. Tell us about the "
            "colours, the brightness and the room. Do you dim the lights before the film starts, or keep a glow "
            "behind the TV? Bonus points for a photo of the popcorn corner. We read every reply and share the "
            "best ideas with the whole community each week.")
    assert len(long) > 280
    pipe = make_pipeline(tmp_path, index_template, chat=FakeChat(replies=[json.dumps({"post": long})]))
    [draft] = draft_starters(pipe, n=1, channel="twitter", topic="movie night", fmt="question", today=TODAY).drafts
    assert len(draft.text) <= 280 and draft.text.endswith(".") and not draft.needs_attention
    echo = json.dumps({"post": "What is your favourite scene? Tell us below. Tell us below. Tell us below."})
    pipe = make_pipeline(tmp_path / "2", index_template, chat=FakeChat(replies=[echo]))
    [draft] = draft_starters(pipe, n=1, topic="movie night", fmt="question", today=TODAY).drafts
    assert draft.needs_attention and any("repeats itself" in f for f in draft.flags)


def test_event_and_ama_posts_name_the_event_and_its_date(tmp_path: Path, index_template: Path) -> None:
    no_date = "POST: Come to our AMA and ask the team anything!"
    pipe = make_pipeline(tmp_path, index_template, chat=FakeChat(replies=[no_date]))
    run = draft_starters(pipe, n=1, fmt="ama", today=TODAY)
    [draft] = run.drafts  # the event is named for the model rather than asking it again
    assert draft.text == "AMA with the firmware team, 15 January: Come to our AMA and ask the team anything!"
    assert not draft.needs_attention and len(pipe.chat.seen) == 1
    with pytest.raises(UserError, match="no upcoming ama"):
        draft_starters(pipe, n=1, fmt="ama", today=TODAY.replace(year=2027, month=3, day=1))


def test_crisis_topics_and_personal_cases_are_refused(tmp_path: Path, index_template: Path) -> None:
    pipe = make_pipeline(tmp_path, index_template, chat=PromptChat(respond=good_starter))
    for topic in ("the fire at a customer's flat", "the outage last week", "refund for order #48213"):
        with pytest.raises(UserError, match="sensitive|personal data"):
            draft_starters(pipe, n=1, topic=topic, today=TODAY)
    assert pipe.chat.seen == []  # refused before any model call


def test_empty_knowledge_calendar_and_history(tmp_path: Path, index_template: Path) -> None:
    empty = tmp_path / "empty-kb"
    empty.mkdir()
    pipe = make_pipeline(tmp_path, index_template, chat=PromptChat(respond=good_starter), kb=empty)
    with pytest.raises(UserError, match="nothing to start a discussion about"):
        draft_starters(pipe, n=3, today=TODAY)
    assert conversation_topics(pipe) == []
    run = draft_starters(pipe, n=2, topic="favourite bedtime routine", today=TODAY)
    assert len(run.drafts) == 2 and run.drafts[0].text != run.drafts[1].text


def test_recent_conversations_become_a_topic_but_private_and_crisis_cases_do_not(
        tmp_path: Path, index_template: Path) -> None:
    pipe = make_pipeline(tmp_path, index_template, chat=PromptChat(respond=good_starter))
    for text in ("Which Alexa routines do you use with your lights?",
                 "Which Alexa routines do you use for the lights at night?",
                 "Alexa routines with the lights: which do you use in the morning?",
                 "Which routines do you use with Alexa and your lights?"):
        inbound_case(pipe, text, triage=labels("conversation", "positive", 0.5), when=days_ago(2))
    inbound_case(pipe, "My Alexa routines stopped, my email is jo@example.com, account 88812931",
                 triage=labels("question", private_info=True), when=days_ago(1))
    inbound_case(pipe, "Alexa routines won't help, I feel like ending it all",
                 triage=labels("crisis", "negative", -0.9, crisis=True), when=days_ago(1))
    inbound_case(pipe, "Old chatter about Alexa routines for parties", when=days_ago(40))
    topics = conversation_topics(pipe)
    assert len(topics) == 1 and topics[0].source == "conversations"
    assert "alexa" in (topics[0].title + topics[0].facts).lower()
    prompt_text = json.dumps([t.__dict__ for t in topics], default=str)
    assert "jo@example.com" not in prompt_text and "ending it all" not in prompt_text


def test_format_checks() -> None:
    assert format_problems("What's your favourite scene?", "question", None) == []
    assert format_problems("Tell us your favourite scene.", "question", None)
    assert format_problems("Which do you prefer?\n- Warm\n- Cool", "poll", None) == []
    assert format_problems("Which do you prefer? Warm or cool", "poll", None)
    assert format_problems("Share a photo of your reading nook!", "challenge", None) == []
    event = next(e for e in load_events(Path("knowledge")) if e.kind == "ama")
    assert mentions_event("The AMA with the firmware team is on 15 January, ask away!", event)
    assert mentions_event("Join the firmware team AMA on Jan 15th", event)
    assert not mentions_event("Join the AMA with the firmware team soon", event)
    assert format_problems("AMA with the firmware team on 15 January: post your questions", "ama", event) == []
    webinar = next(e for e in load_events(Path("knowledge")) if e.kind == "webinar")
    assert format_problems(f"{webinar.title} on {webinar.when}. A walkthrough of scenes.", "event", webinar)
    assert format_problems(f"Join us: {webinar.title} on {webinar.when}.", "event", webinar) == []


def test_cli_starters_json_and_errors(tmp_path: Path, index_template: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    pipe = make_pipeline(tmp_path, index_template, chat=PromptChat(respond=good_starter))
    monkeypatch.setattr("copilot.cli.community_cmd.pipeline_from", lambda args, **kw: pipe)
    monkeypatch.setattr(starters_module, "now_utc", lambda: days_ago(0).replace(year=2026, month=11, day=28))
    assert main(["community", "starters", "--n", "3", "--channel", "instagram", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["drafts"]) == 3 and len(out["items"]) == 3
    assert {pipe.queue.get(i).channel for i in out["items"]} == {"instagram"}
    assert main(["community", "starters", "--n", "0"]) == 1
    assert "--n must be between 1 and 20" in capsys.readouterr().err
    assert main(["community", "starters", "--channel", "fax"]) == 1
    assert "unknown channel" in capsys.readouterr().err
    assert main(["community", "starters", "--topic", "a member's funeral"]) == 1
    assert "sensitive" in capsys.readouterr().err
