"""Follow-ups in a conversation: retrieved with the earlier messages, the next step instead of the same one,
a person when every step was given, and an opening that knows the thread. Fake chat model, hash embeddings."""

from __future__ import annotations

from pathlib import Path

from test_compose import make
from test_draft import labels

from copilot.compose import select_facts
from copilot.thread import MAX_TURNS, QUERY_CHARS, TURN_CHARS, Thread
from copilot.types import Inbound, Passage, Turn

FIRST = "my bulb will not connect to the wifi during setup, so annoying"
OPENING = "Thanks for sticking with this, we will get it sorted together."
STEPS = ["Make sure your phone is on the 2.4 GHz network", "Hold the bulb's reset for 5 seconds",
         "Add it again in the app"]


def told(*steps: str) -> list[Turn]:
    reply = "@sam Sorry about that! Here's what to try: " + " ".join(f"{n + 1}) {s}." for n, s in enumerate(steps))
    return [Turn("in", FIRST, "@sam", platform_id="m1"), Turn("out", reply, platform_id="out-1")]


def test_a_follow_up_is_retrieved_with_the_thread_and_gets_the_next_steps(tmp_path: Path) -> None:
    pipe = make(tmp_path, [OPENING], labels())
    follow = Inbound(text="I did the first one and it still fails", channel="facebook", author="@sam", id="m2")
    alone = pipe.drafter.draft(follow)
    assert alone.cited_ids == ()  # on its own the follow-up finds nothing to answer with
    draft = pipe.drafter.draft(follow, history=told(STEPS[0]))
    assert draft.cited_ids == ("kb-wifi",)
    assert STEPS[0] not in draft.text and STEPS[1] in draft.text and STEPS[2] in draft.text
    assert any(f.startswith("left out what we already told them") for f in draft.flags)
    assert "follow-up: drafted with the 2 earlier message(s) of the conversation" in draft.flags
    assert "Earlier in this conversation" not in pipe.chat.seen[-1][-1].content  # the opening: the message alone


def test_when_every_step_was_given_a_person_takes_over(tmp_path: Path) -> None:
    pipe = make(tmp_path, [OPENING], labels())
    follow = Inbound(text="Tried everything you said, the bulb still won't join the wifi", channel="facebook",
                     author="@sam", id="m2")
    draft = pipe.drafter.draft(follow, history=told(*STEPS))
    assert not any(step in draft.text for step in STEPS)
    assert draft.needs_attention and draft.cited_ids == ()
    assert "the knowledge base has no step we have not already given: a person takes over" in draft.flags


def test_a_first_message_is_drafted_as_before(tmp_path: Path) -> None:
    pipe = make(tmp_path, [OPENING, OPENING], labels())
    inbound = Inbound(text=FIRST, channel="facebook", author="@sam", id="m1")
    plain, with_own_turn = pipe.drafter.draft(inbound), pipe.drafter.draft(inbound, history=told()[:1])
    assert plain.text == with_own_turn.text  # the stored copy of the message itself is no history
    assert all(step in plain.text for step in STEPS)
    assert not any(f.startswith("follow-up") for f in plain.flags + with_own_turn.flags)


def test_the_thread_is_bounded_and_redacted() -> None:
    turns = [Turn("in" if n % 2 == 0 else "out", f"Message {n}. " + "word " * 200 + "Mail me at sam@example.com.")
             for n in range(20)]
    thread = Thread.of(turns)
    summary = thread.summary()
    assert summary.count("\n") == MAX_TURNS - 1 and summary.startswith("Customer: Message 14.")
    assert all(len(line) <= TURN_CHARS + len("We replied: ") + 4 for line in summary.splitlines())
    assert len(thread.customer_context()) <= QUERY_CHARS
    assert "sam@example.com" not in summary + thread.customer_context() + thread.told
    assert not Thread.of([]) and Thread.of([Turn("in", "hi", platform_id="x")], current_id="x").turns == ()


def test_select_facts_leaves_out_what_we_told_them() -> None:
    answer = "1. " + ".\n2. ".join(STEPS) + "."
    passage = Passage(id="kb-wifi", chunk_id="kb-wifi#0", title="Wi-Fi", text=answer, kind="fix", official=True,
                      score=0.9)
    facts = select_facts(passage, answer, "still not working", 1000, told=f"Try this: 1) {STEPS[0]}. 2) {STEPS[1]}.")
    assert [u.text for u in facts.units] == [STEPS[2] + "."] and len(facts.skipped_told) == 2
    everything = select_facts(passage, answer, "still not working", 1000, told=answer)
    assert everything.units == () and len(everything.skipped_told) == 3


def test_a_full_reply_gets_a_summary_of_the_thread(tmp_path: Path) -> None:
    from fakes import FakeChat, HashEmbeddings
    from kb_helpers import write_kb
    from test_draft import FixedTriager

    from copilot.config import Settings
    from copilot.pipeline import build_pipeline

    settings = Settings(data_dir=tmp_path / "data", kb_dir=write_kb(tmp_path), draft_mode="full")
    pipe = build_pipeline(settings, chat=FakeChat(replies=["{}"]), embedder=HashEmbeddings(),
                          triager=FixedTriager(labels()))
    pipe.ingest()
    pipe.drafter.draft(Inbound(text="I did the first one and it still fails", channel="forum", id="m2"),
                       history=told(STEPS[0]))
    prompt = pipe.chat.seen[0][-1].content
    assert "Earlier in this conversation" in prompt and FIRST in prompt and "We replied:" in prompt
