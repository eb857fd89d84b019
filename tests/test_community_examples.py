"""Learning from approvals: approved replies (after edits) become tone examples in later draft prompts."""

from __future__ import annotations

from pathlib import Path

import pytest
from _community_support import FixedTriager, build_index_template, inbound_case, labels, make_pipeline
from fakes import FakeChat

from copilot.community.examples import ToneExamples
from copilot.types import Inbound

COMPLAINT = labels("complaint", "negative", -0.6)
EDITED = ("@sam So sorry about the hub, that's no fun at all. Unplug it for 30 seconds and give it 2 minutes; "
          "we're right here if it stays amber.")
OK = ("REPLY: So sorry your hub is offline! Unplug it for 30 seconds, plug it back in and wait 2 minutes for the "
      "LED to turn solid green. Reply here if it doesn't.\nSOURCES: kb-fix-hub-offline")


@pytest.fixture(scope="module")
def index_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_index_template(tmp_path_factory.mktemp("examples-index"))


def approved_history(pipe) -> None:  # type: ignore[no-untyped-def]
    inbound_case(pipe, "my lumio hub is offline again and the lights don't respond", author="@sam",
                 channel="twitter", triage=COMPLAINT, reply="@sam Sorry! Unplug the hub.", approve=EDITED)
    inbound_case(pipe, "my lumio hub is offline and nothing responds", author="@kai", channel="twitter",
                 triage=labels("praise", "positive", 0.6), reply="@kai Thanks!", approve="@kai Thank you so much!")
    inbound_case(pipe, "my lumio hub is offline, is it on fire? smoke everywhere", author="@lee",
                 triage=labels("crisis", "negative", -0.9, crisis=True), reply="Please unplug it now.",
                 approve="Please unplug it now; we are calling you.")
    inbound_case(pipe, "my lumio hub is offline since the router change", author="@ana", channel="twitter",
                 triage=COMPLAINT, reply="@ana Sorry, try a restart.")  # pending: not an example


def test_approved_replies_of_the_same_kind_are_examples(tmp_path: Path, index_template: Path) -> None:
    pipe = make_pipeline(tmp_path, index_template)
    examples = ToneExamples(pipe.index, pipe.embedder, pipe.queue)
    message = Inbound(text="the lumio hub went offline and my lights don't respond", channel="twitter")
    assert examples.examples_for(message, COMPLAINT) == []  # empty history
    approved_history(pipe)
    found = examples.examples_for(message, COMPLAINT)
    assert [e.text for e in found] == [EDITED.removeprefix("@sam ")]  # the team's words, without the handle
    assert found[0].edited and found[0].kind == "complaint" and found[0].similarity > 0.35
    assert [e.text for e in examples.examples_for(message, labels("praise"))] == ["Thank you so much!"]
    assert examples.examples_for(message, labels("crisis", crisis=True)) == []  # crises are never examples
    assert examples.examples_for(Inbound(text="gift wrapping options for Christmas orders", channel="twitter"), COMPLAINT) == []
    assert examples.sync() == 0  # nothing new since the last look


def test_the_drafter_shows_one_short_example_in_its_prompt(tmp_path: Path, index_template: Path) -> None:
    pipe = make_pipeline(tmp_path, index_template, chat=FakeChat(replies=[OK]), triager=FixedTriager(COMPLAINT))
    first = pipe.drafter.draft(Inbound(text="my lumio hub is offline, lights dead", channel="twitter",
                                       author="@jo"))
    assert "<example>" not in pipe.chat.seen[0][1].content  # no approved replies yet
    approved_history(pipe)
    draft = pipe.drafter.draft(Inbound(text="my lumio hub is offline, lights dead", channel="twitter",
                                       author="@jo"))
    prompt = pipe.chat.seen[-1][1].content
    assert "match its tone, not its facts" in prompt
    assert "<example>So sorry about the hub, that's no fun at all." in prompt
    assert prompt.index("<example>") < prompt.index("Message: ")
    assert draft.status == first.status == "pending" and draft.cited_ids == ("kb-fix-hub-offline",)
