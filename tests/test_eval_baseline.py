"""The extractive baseline the gate drafts with: it answers from the variables the drafter rendered into the
prompt, so rewording a drafting template moves neither its answers nor the gate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from _eval_support import KNOWLEDGE, REPO, LabelTriager, support_rows, write_jsonl
from fakes import HashEmbeddings
from langchain_core.messages import HumanMessage, SystemMessage

from copilot.config import Settings
from copilot.errors import ProviderError
from copilot.evaluation.baseline import ExtractiveChat
from copilot.evaluation.runs import Backends, run_dataset
from copilot.prompts import load_prompts
from copilot.types import Passage

HUB = Passage(id="kb-a", chunk_id="kb-a#0", title="Hub offline",
              text="Hub offline\nUnplug the hub for 30 seconds. Plug it back in. Wait two minutes.",
              kind="faq", official=True, score=0.9)
OTHER = Passage(id="kb-b", chunk_id="kb-b#0", title="Other", text="Other\nSomething else.", kind="faq",
                official=True, score=0.5)
# A few cases of the shipped set across kinds: fixes, a private case, a crisis, praise, a knowledge gap.
CASES = ("sup-001", "sup-005", "sup-013", "sup-020", "sup-047", "sup-060", "sup-065", "sup-077")
# The wording the baseline once parsed with regexes, each line reworded with the same variables.
REWORDED = {
    "draft/user.j2": [
        ("Channel: {{ channel }} ({{ style }}). At most {{ max_chars }} characters.",
         "Keep the reply under {{ max_chars }} characters; it goes out on {{ channel }} ({{ style }})."),
        ("Message type: {{ kind }}, sentiment {{ sentiment }}.",
         "They wrote a {{ kind }} and sound {{ sentiment }}."),
        ("invite them to continue in {{ private_channel }}.", "point them to {{ private_channel }} instead."),
    ],
    "draft/opener.j2": [
        ("Message type: {{ kind }}, sentiment {{ sentiment }}.", "A {{ kind }}, {{ sentiment }} in tone."),
        ("Opening:", "First sentence of the reply:"),
    ],
    "draft/translate_query.j2": [("Translation:", "The message in that language:")],
}


def user_prompt(**overrides: object) -> str:
    variables: dict[str, object] = {
        "channel": "twitter", "style": "brief", "max_chars": 120, "author": None, "kind": "complaint",
        "sentiment": "negative", "private": False, "private_channel": "a DM", "passages": [HUB, OTHER],
        "any_unofficial": False, "message": "hub down", "example": None,
    }
    variables.update(overrides)
    return load_prompts().render("draft/user.j2", **variables).text


def test_the_baseline_answers_from_the_first_passage_shown() -> None:
    chat = ExtractiveChat()
    system = SystemMessage("the system prompt")
    answer = json.loads(chat.answer([system, HumanMessage(user_prompt())]))
    assert answer["sources"] == ["kb-a"] and answer["reply"].startswith("Sorry about this")
    assert "Unplug the hub for 30 seconds." in answer["reply"] and len(answer["reply"]) <= 120
    praise = json.loads(chat.answer([HumanMessage(user_prompt(kind="praise", sentiment="positive", passages=[]))]))
    assert praise["sources"] == [] and praise["reply"].startswith("Thanks for reaching out!")
    private = json.loads(chat.answer([HumanMessage(user_prompt(private=True, max_chars=400))]))
    assert "Please send us a DM" in private["reply"]
    assert chat.answer([HumanMessage(user_prompt())]) == chat.answer([HumanMessage(user_prompt())])  # deterministic


def test_a_prompt_the_drafter_did_not_render_is_a_clear_error() -> None:
    with pytest.raises(ProviderError, match="not rendered there"):
        ExtractiveChat().answer([HumanMessage("Message type: complaint, sentiment negative.")])


def _reworded_prompts(tmp_path: Path) -> Path:
    root = tmp_path / "prompts"
    shutil.copytree(REPO / "prompts", root)
    for name, edits in REWORDED.items():
        path = root / name
        text = path.read_text(encoding="utf-8")
        for old, new in edits:
            assert old in text, f"{name} no longer says {old!r}: update REWORDED"
            text = text.replace(old, new)
        path.write_text(text, encoding="utf-8")
    return root


def _drafts(tmp_path: Path, cases: Path, prompts_dir: Path | None, mode: str) -> list[tuple[object, ...]]:
    settings = Settings(data_dir=tmp_path / f"data-{mode}-{prompts_dir is not None}", kb_dir=KNOWLEDGE,
                        prompts_dir=prompts_dir, draft_mode=mode)
    chat = ExtractiveChat(prompts_dir=str(prompts_dir) if prompts_dir else None)
    backends = Backends(chat=chat, embedder=HashEmbeddings(), triager=LabelTriager(cases))
    result = run_dataset(settings, cases, out_root=None, backends=backends)
    assert not any(row["error"] for row in result.rows)
    return [(row["id"], row["draft"]["text"], tuple(row["draft"]["cited_ids"]), row["score"], row["passed"])
            for row in result.rows]


@pytest.mark.parametrize("mode", ["compose", "full"])
def test_rewording_the_drafting_prompts_does_not_change_the_baseline(tmp_path: Path, mode: str) -> None:
    cases = write_jsonl(tmp_path / "cases.jsonl", support_rows(*CASES))
    reworded = _reworded_prompts(tmp_path)
    assert load_prompts(str(reworded)).source_hash("draft/user.j2") != load_prompts().source_hash("draft/user.j2")
    assert _drafts(tmp_path, cases, reworded, mode) == _drafts(tmp_path, cases, None, mode)
