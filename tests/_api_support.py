"""Shared set-up of the HTTP API tests: the web-app test world (fakes over the sample knowledge base), a token
per role, and a TestClient on the API built for it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _ui_support import AGENT, REVIEWER, UiWorld, make_world
from fastapi.testclient import TestClient

from copilot.api.app import build_api
from copilot.pipeline import Pipeline, build_pipeline


@dataclass
class ApiWorld:
    world: UiWorld
    tokens: dict[str, str]  # user name -> bearer token

    @property
    def pipeline(self) -> Pipeline:
        return self.world.pipeline

    def client(self, pipeline: Pipeline | None = None, **api: Any) -> TestClient:
        """A client of a freshly built API (its own rate limiter), not raising the server's errors."""
        return TestClient(build_api(pipeline or self.pipeline, **api), raise_server_exceptions=False)

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def with_settings(self, **changes: Any) -> Pipeline:
        """A pipeline on the same queue and parts with some settings changed (limits)."""
        p = self.pipeline
        return build_pipeline(p.settings.model_copy(update=changes), chat=p.chat, embedder=p.embedder,
                              queue=p.queue, triager=p.triager)


def make_api_world(data_dir: Path) -> ApiWorld:
    world = make_world(data_dir)
    admin = world.admin.name
    tokens = {}
    for name in (admin, AGENT, REVIEWER):
        _, tokens[name] = world.pipeline.queue.create_token(name, by=admin, label="tests")
    return ApiWorld(world, tokens)
