"""Local fakes of the platforms the connectors talk to: real HTTP servers on 127.0.0.1, built from the
platforms' documented payloads and signature schemes, that record notes and replies, fail on request and send
signed webhooks."""

from .chatwoot import FakeChatwoot
from .discourse import FakeDiscourse
from .server import FakeServer, Request, WebhookReceiver

__all__ = ["FakeChatwoot", "FakeDiscourse", "FakeServer", "Request", "WebhookReceiver"]
