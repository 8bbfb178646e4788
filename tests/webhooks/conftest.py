"""A real HTTP receiver on loopback, and webhooks pointing at it."""

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from notifications.webhooks.models import WebhookEndpoint
from notifications.webhooks.signing import webhook_secret_encrypt
from tests.tickets.conftest import make_ticket, project_a  # noqa: F401  (fixtures)

SECRET = "whsec_test-secret-0123456789abcdef"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)

    def signature_valid(self, secret: str) -> bool:
        """What a receiver does: recompute HMAC-SHA256 over "<timestamp>.<body>"."""
        timestamp = self.headers["X-Webhook-Timestamp"]
        expected = hmac.new(
            secret.encode(), f"{timestamp}.".encode() + self.body, hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(self.headers["X-Signature"], f"sha256={expected}")


@dataclass
class Receiver:
    """Answers POSTs with the next status of `statuses` (200 when empty). With
    `hold_first`, the first request waits until `release` is set, answering nothing."""

    statuses: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    hold_first: bool = False
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    port: int = 0
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/in?src=test"

    def processed_event_ids(self) -> list[str]:
        """The de-duplication a receiver does on `X-Webhook-Id`, in arrival order."""
        return list(dict.fromkeys(r.headers["X-Webhook-Id"] for r in self.requests))


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock:
                first = not receiver.requests
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
            receiver.arrived.set()
            if first and receiver.hold_first:
                receiver.release.wait(30)
                return  # the sender is gone: it never gets an answer
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            reply = b"thanks" if status < 300 else b"nope " * 400
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(found))
    server.daemon_threads = True
    found.port = server.server_address[1]
    found.server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield found
    found.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def loopback_allowed(settings):
    settings.WEBHOOKS_ALLOW_LOOPBACK = True
    return settings


def webhook_make(world, url: str, **fields: Any) -> WebhookEndpoint:
    """A webhook row, written directly (the API tests cover the service): no outbox
    event, so the on-commit dispatch a test captures is the one of its own change."""
    fields.setdefault("event_types", ["*"])
    secret = fields.pop("secret", SECRET)
    with schema_context(world.schema):
        endpoint = WebhookEndpoint.objects.create(
            url=url,
            secret_encrypted=webhook_secret_encrypt(secret),
            created_by_id=world.admin.pk,
            **fields,
        )
    connection.set_schema_to_public()
    return endpoint
