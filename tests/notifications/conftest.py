"""Fixtures of the notification tests: people of tenant A as Memberships, a way to run
what happens after commit (outbox dispatch, email tasks, live pushes), and a real SMTP
server (aiosmtpd) on a loopback port."""

import email
import email.policy
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.db import connection
from django_tenants.utils import schema_context

from accounts.members.models import Membership
from eventlog.dispatch import outbox_dispatch_pending
from notifications.models import EmailDelivery, Notification
from tests.tickets import conftest as tickets_fixtures
from tickets.services import ticket_create

project_a = tickets_fixtures.project_a
private_project_a = tickets_fixtures.private_project_a


@pytest.fixture
def members_a(world_a) -> dict[str, Membership]:
    """admin, lead and user of tenant A, by role name."""
    with schema_context(world_a.schema):
        found = {
            name: Membership.objects.select_related("user").get(user=getattr(world_a, name))
            for name in ("admin", "lead", "user")
        }
    connection.set_schema_to_public()
    return found


@pytest.fixture
def after_commit(world_a, django_capture_on_commit_callbacks) -> Callable[..., Any]:
    """`after_commit(fn)`: run `fn` in tenant A's schema, then dispatch the pending
    outbox events and run what was scheduled for after commit (email tasks, live
    pushes), as a real commit would, with Celery eager. (The dispatch is called
    directly: the test's transaction never commits, so an enqueue scheduled by an
    earlier write would keep later ones from scheduling their own.)"""

    def run(fn: Callable[[], Any]) -> Any:
        with schema_context(world_a.schema), django_capture_on_commit_callbacks(execute=True):
            result = fn()
            while outbox_dispatch_pending():
                pass
        connection.set_schema_to_public()
        return result

    return run


@dataclass
class ScriptedHandler:
    """Accepts every message, except that it answers the RCPT commands in `rcpt_replies`
    first (one per command, e.g. a "451 ..." once)."""

    rcpt_replies: list[str] = field(default_factory=list)
    messages: list[tuple[str, list[str], Message]] = field(default_factory=list)
    rcpt_attempts: int = 0

    def reset(self) -> None:
        self.messages.clear()
        self.rcpt_attempts = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.rcpt_attempts += 1
        if self.rcpt_replies:
            return self.rcpt_replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server(settings) -> Iterator[ScriptedHandler]:
    """A real SMTP server on loopback; Django's SMTP backend is pointed at it."""
    handler = ScriptedHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    try:
        yield handler
    finally:
        controller.stop()


def parts(message: Message) -> dict[str, str]:
    """The decoded text/plain and text/html parts of a message."""
    found = {}
    for part in message.walk():
        if part.get_content_type() in ("text/plain", "text/html"):
            payload = part.get_payload(decode=True)
            found[part.get_content_type()] = payload.decode(part.get_content_charset() or "utf-8")
    return found


@pytest.fixture
def new_ticket(world_a, members_a, project_a, after_commit, mailoutbox) -> Callable[..., Any]:
    """`new_ticket(**data)`: a ticket created (by the admin unless `as_user`) with its
    events already handled, and what they caused cleared: tests start from a quiet
    inbox."""

    def make(project: Any = None, as_user: str = "admin", **data: Any) -> Any:
        data.setdefault("summary", "Something is broken")
        ticket = after_commit(
            lambda: ticket_create(project=project or project_a, actor=members_a[as_user], data=data)
        )
        with schema_context(world_a.schema):
            Notification.objects.all().delete()
            EmailDelivery.objects.all().delete()
        connection.set_schema_to_public()
        mailoutbox.clear()
        return ticket

    return make
