"""The HTTP API end to end on fakes: tokens and roles, every endpoint, stale versions, JSON errors, docs."""

from __future__ import annotations

from pathlib import Path

import pytest
from _api_support import ApiWorld, make_api_world
from _ui_support import AGENT, COMPLAINT, CRISIS, REVIEWER, make_world

from copilot.types import Inbound, Triage

FOLLOW_UP = "@LumioHelp I turned the dimmer all the way up like you said and they still flicker, so annoying"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> ApiWorld:
    return make_api_world(tmp_path_factory.mktemp("api"))


def _submit(api: ApiWorld, text: str = COMPLAINT, **fields: object) -> dict:
    body = {"text": text, "channel": "twitter", "author": "@dana", **fields}
    response = api.client().post("/api/v1/messages", json=body, headers=api.auth(AGENT))
    assert response.status_code == 201, response.text
    return response.json()["item"]


def _error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and body["error"]["status"] == response.status_code
    assert body["error"]["reason"]
    return body["error"]


# Authentication and roles -----------------------------------------------------------------------------


def test_no_token_is_401(api: ApiWorld) -> None:
    response = api.client().get("/api/v1/items")
    assert response.status_code == 401 and "Bearer" in response.headers["www-authenticate"]
    assert "copilot users token" in _error(response)["reason"]


def test_an_unknown_token_is_401(api: ApiWorld) -> None:
    for token in ("cpt_not-a-real-token", "something-else", ""):
        response = api.client().get("/api/v1/items", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        _error(response)


def test_a_revoked_token_is_401_and_the_others_still_work(api: ApiWorld) -> None:
    queue = api.pipeline.queue
    token, secret = queue.create_token(REVIEWER, label="laptop")
    client = api.client()
    assert client.get("/api/v1/items", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    queue.revoke_token(token.id, by=REVIEWER)
    response = client.get("/api/v1/items", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 401 and "revoked" in _error(response)["reason"]
    assert client.get("/api/v1/items", headers=api.auth(REVIEWER)).status_code == 200


def test_an_agent_may_not_review_or_publish(api: ApiWorld) -> None:
    item = _submit(api)
    client = api.client()
    for path, body in ((f"/api/v1/items/{item['id']}/approve", {"version": item["version"]}),
                       (f"/api/v1/items/{item['id']}/edit", {"version": item["version"], "text": "Hi"}),
                       (f"/api/v1/items/{item['id']}/reject", {"version": item["version"], "reason": "no"}),
                       ("/api/v1/publish", None)):
        response = client.post(path, json=body, headers=api.auth(AGENT))
        assert response.status_code == 403, path
        assert "alice is an agent" in _error(response)["reason"]
    assert api.pipeline.queue.get(item["id"]).status == "pending"


def test_an_agent_sees_only_their_own_items(api: ApiWorld) -> None:
    mine = _submit(api)
    draft = api.pipeline.drafter.draft(Inbound(text=COMPLAINT, channel="twitter", id="other-1"))
    theirs = api.pipeline.queue.submit(draft, by=REVIEWER)
    client = api.client()
    listed = client.get("/api/v1/items?status=all", headers=api.auth(AGENT)).json()["items"]
    ids = {i["id"] for i in listed}
    assert mine["id"] in ids and theirs.id not in ids
    assert client.get(f"/api/v1/items/{theirs.id}", headers=api.auth(AGENT)).status_code == 403
    assert client.get(f"/api/v1/items/{theirs.id}", headers=api.auth(REVIEWER)).status_code == 200


# Messages in ------------------------------------------------------------------------------------------


def test_a_message_is_triaged_drafted_and_queued_and_a_follow_up_joins_its_case(api: ApiWorld) -> None:
    client = api.client()
    first = client.post("/api/v1/messages", headers=api.auth(AGENT), json={
        "text": COMPLAINT, "channel": "twitter", "author": "@dana", "id": "tw-1001", "conversation": "acme:77"})
    assert first.status_code == 201, first.text
    out = first.json()
    item = out["item"]
    assert item["status"] == "pending" and item["drafted_by"] == AGENT and item["kind"] == "reply"
    assert "dimmer" in item["text"] and item["triage"]["kind"] == "complaint"
    assert out["case"]["id"] == item["case_id"] and out["case"]["conversation"] == "acme:77"
    assert api.pipeline.queue.get(item["id"]).status == "pending"

    second = client.post("/api/v1/messages", headers=api.auth(AGENT), json={
        "text": FOLLOW_UP, "channel": "twitter", "author": "@dana", "id": "tw-1002", "conversation": "acme:77"})
    assert second.status_code == 201, second.text
    follow = second.json()["item"]
    assert follow["case_id"] == item["case_id"]
    shown = client.get(f"/api/v1/items/{follow['id']}", headers=api.auth(REVIEWER)).json()
    assert [t["text"] for t in shown["thread"] if t["direction"] == "in"] == [COMPLAINT, FOLLOW_UP]
    assert [e["action"] for e in shown["audit"]] == ["draft"]


def test_a_crisis_message_is_escalated(api: ApiWorld) -> None:
    item = _submit(api, CRISIS)
    assert item["status"] == "escalated" and item["requires_individual_decision"] is True


def test_a_spam_message_is_kept_as_a_case_without_a_draft(api: ApiWorld) -> None:
    text = "WIN A FREE PHONE click here now"
    api.world.triager.overrides[text] = Triage(kind="spam", sentiment="neutral", sentiment_score=0.0, priority=4,
                                               priority_score=1.0, confidence=0.9)
    response = api.client().post("/api/v1/messages", json={"text": text, "channel": "twitter"},
                                 headers=api.auth(AGENT))
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["item"] is None and out["spam"] is True
    assert api.pipeline.queue.get_case(out["case"]["id"]).text == text


def test_triage_search_and_draft_change_nothing_in_the_queue(api: ApiWorld) -> None:
    client = api.client()
    before = api.pipeline.queue.count_items()
    triage = client.post("/api/v1/triage", json={"text": COMPLAINT, "channel": "twitter"}, headers=api.auth(AGENT))
    assert triage.status_code == 200 and triage.json()["kind"] == "complaint"
    found = client.get("/api/v1/search", params={"q": "bulbs flicker when dimmed", "k": 3}, headers=api.auth(AGENT))
    assert found.status_code == 200
    passages = found.json()["passages"]
    assert 0 < len(passages) <= 3 and "kb-fix-bulb-flicker-dimmer" in [p["id"] for p in passages]
    draft = client.post("/api/v1/draft", json={"text": COMPLAINT, "channel": "twitter"}, headers=api.auth(AGENT))
    assert draft.status_code == 200, draft.text
    body = draft.json()["draft"]
    assert "dimmer" in body["text"] and set(body["cited_ids"]) <= set(body["retrieved_ids"])
    assert api.pipeline.queue.count_items() == before


# The review queue -------------------------------------------------------------------------------------


def test_list_items_by_status_and_kind(api: ApiWorld) -> None:
    item = _submit(api)
    client = api.client()
    pending = client.get("/api/v1/items", params={"status": "pending", "kind": "reply"}, headers=api.auth(REVIEWER))
    assert pending.status_code == 200
    listed = pending.json()["items"]
    assert item["id"] in [i["id"] for i in listed] and {i["status"] for i in listed} == {"pending"}
    assert client.get("/api/v1/items", params={"kind": "starter"}, headers=api.auth(REVIEWER)).json()["items"] == []
    bad = client.get("/api/v1/items", params={"status": "lost"}, headers=api.auth(REVIEWER))
    assert bad.status_code == 400 and "unknown status" in _error(bad)["reason"]


def test_edit_approve_and_publish(api: ApiWorld) -> None:
    item = _submit(api)
    client = api.client()
    edited = client.post(f"/api/v1/items/{item['id']}/edit", headers=api.auth(REVIEWER),
                         json={"version": item["version"], "text": "Set the wall dimmer to full, then dim in the app."})
    assert edited.status_code == 200, edited.text
    assert edited.json()["version"] > item["version"] and edited.json()["edited_by"] == REVIEWER
    approved = client.post(f"/api/v1/items/{item['id']}/approve", headers=api.auth(api.world.admin.name),
                           json={"version": edited.json()["version"]})
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    published = client.post("/api/v1/publish", headers=api.auth(REVIEWER))
    assert published.status_code == 200, published.text
    assert item["id"] in published.json()["posted"]
    assert api.pipeline.queue.get(item["id"]).status == "posted"


def test_a_stale_version_is_409_and_changes_nothing(api: ApiWorld) -> None:
    item = _submit(api)
    client = api.client()
    assert client.post(f"/api/v1/items/{item['id']}/edit", headers=api.auth(REVIEWER),
                       json={"version": item["version"], "text": "A newer text."}).status_code == 200
    stale = client.post(f"/api/v1/items/{item['id']}/approve", headers=api.auth(api.world.admin.name),
                        json={"version": item["version"]})
    assert stale.status_code == 409, stale.text
    _error(stale)
    assert api.pipeline.queue.get(item["id"]).status == "pending"


def test_reject_reopen_and_assign(api: ApiWorld) -> None:
    item = _submit(api)
    client = api.client()
    rejected = client.post(f"/api/v1/items/{item['id']}/reject", headers=api.auth(REVIEWER),
                           json={"version": item["version"], "reason": "wrong product"})
    assert rejected.status_code == 200 and rejected.json()["reject_reason"] == "wrong product"
    reopened = client.post(f"/api/v1/items/{item['id']}/reopen", headers=api.auth(REVIEWER),
                           json={"version": rejected.json()["version"]})
    assert reopened.status_code == 200 and reopened.json()["status"] == "pending"
    taken = client.post(f"/api/v1/items/{item['id']}/assign", headers=api.auth(AGENT), json={"assignee": AGENT})
    assert taken.status_code == 200 and taken.json()["assignee"] == AGENT
    given = client.post(f"/api/v1/items/{item['id']}/assign", headers=api.auth(AGENT), json={"assignee": REVIEWER})
    assert given.status_code == 403 and "only assign items to themselves" in _error(given)["reason"]
    shown = client.get(f"/api/v1/items/{item['id']}", headers=api.auth(REVIEWER)).json()
    assert [e["action"] for e in shown["audit"]] == ["draft", "reject", "reopen", "assign"]


# Errors -----------------------------------------------------------------------------------------------


def test_errors_are_json(api: ApiWorld) -> None:
    client = api.client()
    missing = client.get("/api/v1/items/999999", headers=api.auth(REVIEWER))
    assert missing.status_code == 404 and "999999" in _error(missing)["reason"]
    nowhere = client.get("/api/v1/nothing-here", headers=api.auth(REVIEWER))
    assert nowhere.status_code == 404 and "no such endpoint" in _error(nowhere)["reason"]
    wrong_method = client.delete("/api/v1/items", headers=api.auth(REVIEWER))
    assert wrong_method.status_code == 405 and "GET" in _error(wrong_method)["reason"]
    no_text = client.post("/api/v1/messages", json={"channel": "twitter"}, headers=api.auth(AGENT))
    assert no_text.status_code == 422 and "body.text" in _error(no_text)["reason"]
    extra = client.post("/api/v1/messages", json={"text": "hi", "channel": "twitter", "urgent": True},
                        headers=api.auth(AGENT))
    assert extra.status_code == 422 and "urgent" in _error(extra)["reason"]
    channel = client.post("/api/v1/triage", json={"text": "hi", "channel": "pigeon"}, headers=api.auth(AGENT))
    assert channel.status_code == 422
    not_json = client.post("/api/v1/triage", content=b"{not json", headers={**api.auth(AGENT),
                                                                             "Content-Type": "application/json"})
    assert not_json.status_code == 422
    _error(not_json)
    version = client.post("/api/v1/items/1/approve", json={"version": "latest"}, headers=api.auth(REVIEWER))
    assert version.status_code == 422


def test_an_unexpected_failure_is_a_json_500_without_internals(api: ApiWorld, monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    def broken(inbound: object) -> Triage:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(api.world.triager, "triage", broken)
    response = api.client().post("/api/v1/triage", json={"text": "hello"}, headers=api.auth(AGENT))
    assert response.status_code == 500
    reason = _error(response)["reason"]
    assert "RuntimeError" in reason and "secret" not in reason


def test_openapi_document_and_docs_page(api: ApiWorld) -> None:
    client = api.client()
    spec = client.get("/api/v1/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    for path in ("/api/v1/messages", "/api/v1/triage", "/api/v1/search", "/api/v1/draft", "/api/v1/items",
                 "/api/v1/items/{item_id}", "/api/v1/items/{item_id}/approve", "/api/v1/publish",
                 "/api/v1/health", "/webhooks/{platform}"):
        assert path in paths, path
    assert "token" in spec.json()["components"]["securitySchemes"]
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200 and "/api/v1/openapi.json" in docs.text


def test_health_needs_no_token(api: ApiWorld) -> None:
    response = api.client().get("/api/v1/health")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_the_knowledge_base_not_indexed_is_503(tmp_path: Path) -> None:
    world = make_world(tmp_path, indexed=False)
    _, token = world.pipeline.queue.create_token(AGENT)
    fresh = ApiWorld(world, {AGENT: token})
    response = fresh.client().post("/api/v1/draft", json={"text": COMPLAINT, "channel": "twitter"},
                                   headers=fresh.auth(AGENT))
    assert response.status_code == 503 and "not indexed" in _error(response)["reason"]
