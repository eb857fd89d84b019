"""The incidents API: read them, approve one reply for all, resolve, approve the follow-up; roles and errors."""

from __future__ import annotations

from pathlib import Path

from _incident_support import OUTAGE, make_desk, send
from fastapi.testclient import TestClient

from copilot.api.app import build_api


def test_the_incident_flow_over_http(tmp_path: Path) -> None:
    pipe, _desk, intake, clock, platform = make_desk(tmp_path)
    queue = pipe.queue
    queue.add_user("lead", "admin")
    queue.add_user("ann", "agent", by="lead")
    _, lead = queue.create_token("lead", by="lead")
    _, ann = queue.create_token("ann", by="lead")
    cases = send(intake, platform, clock, OUTAGE[:8], prefix="x")
    client = TestClient(build_api(pipe), raise_server_exceptions=False)
    as_lead = {"Authorization": f"Bearer {lead}"}
    as_ann = {"Authorization": f"Bearer {ann}"}

    [listed] = client.get("/api/v1/incidents", headers=as_ann).json()["incidents"]
    assert listed["status"] == "open" and listed["affected"] == 8
    shown = client.get(f"/api/v1/incidents/{listed['id']}", headers=as_ann).json()
    assert {c["case_id"] for c in shown["cases"]} == set(cases) and shown["timeline"][0]["action"] == "detected"
    assert shown["insights"]["affected"] == 8

    url = f"/api/v1/incidents/{listed['id']}"
    refused = client.post(f"{url}/reply/approve", json={}, headers=as_ann)
    assert refused.status_code == 403 and "needs" in refused.json()["error"]["reason"]
    bad = client.put(f"{url}/reply", json={"texts": {"english!": "x"}}, headers=as_lead)
    assert bad.status_code == 422
    saved = client.put(f"{url}/reply", json={"texts": {"en": "We know. We'll reply here when it's fixed."}},
                       headers=as_lead)
    assert saved.status_code == 200 and saved.json()["incident"]["reply"]["en"].startswith("We know.")
    approved = client.post(f"{url}/reply/approve", json={}, headers=as_lead).json()
    assert len(approved["queued"]) == 8 and approved["left_out"] == []
    again = client.post(f"{url}/reply/approve", json={}, headers=as_lead).json()
    assert again["queued"] == [] and again["already"] == 8
    early = client.post(f"{url}/followup/approve", json={}, headers=as_lead)
    assert early.status_code == 409 and "still open" in early.json()["error"]["reason"]
    resolved = client.post(f"{url}/resolve", json={}, headers=as_lead).json()["incident"]
    assert resolved["status"] == "resolved" and resolved["followup"]["en"].startswith("Good news")
    follow = client.post(f"{url}/followup/approve", json={}, headers=as_lead).json()
    assert len(follow["queued"]) == 8
    assert client.get(url, headers=as_lead).json()["incident"]["status"] == "closed"
    assert client.get("/api/v1/incidents/99", headers=as_lead).status_code == 404
    assert client.get("/api/v1/incidents?status=nope", headers=as_lead).status_code == 400
    assert client.post(f"{url}/nope/approve", json={}, headers=as_lead).status_code == 400
    assert client.post(f"{url}/merge", json={"source": listed["id"]}, headers=as_lead).status_code == 400
