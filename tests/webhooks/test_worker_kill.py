"""Reliability: a real Celery worker is killed (SIGKILL) while it sends a webhook,
after fetching the task and before acknowledging it. A second worker gets the task
again (acks_late; the broker's visibility timeout) and the receiver, de-duplicating
on the event id, sees the event exactly once; the delivery ends succeeded with both
attempts in its log."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django_tenants.utils import schema_context

from accounts.members.models import Membership
from accounts.models import User
from notifications.webhooks.models import WebhookDelivery, WebhookEndpoint
from notifications.webhooks.signing import webhook_secret_encrypt
from saas.celery import app as celery_app
from tenants.models import Tenant
from tenants.services import tenant_signup
from tests.conftest import PASSWORD
from tests.tickets.conftest import in_own_connection
from tests.webhooks.conftest import SECRET
from tickets.models import Project
from tickets.services import ticket_create

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 60.0  # generous: worker start-up takes ~15 s on a loaded 2-core machine


def _until(check: Callable[[], Any], *, what: str, deadline: float = DEADLINE) -> Any:
    """Poll `check` until it answers something truthy; fail after `deadline` seconds."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.05)  # polling a real process, not waiting for time to pass
    pytest.fail(f"timed out waiting for {what}")


def _workers(*specs: str) -> tuple[subprocess.Popen, dict[str, int]]:
    """Start worker processes (`name:queue`); returns the launcher and their pids."""
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "WEBHOOKS_ALLOW_LOOPBACK": "1",
        "PYTHONPATH": str(ROOT),
    }
    # REDIS_URL above is already this xdist worker's db: the child must not offset it again.
    env.pop("PYTEST_XDIST_WORKER", None)
    launcher = subprocess.Popen(
        [sys.executable, "-m", "tests.webhooks.worker_main", *specs],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    pids = {}
    for _ in specs:
        name, pid = launcher.stdout.readline().split()
        pids[name] = int(pid)
    return launcher, pids


def _hostname(name: str) -> str:
    return f"{name}@{socket.gethostname()}"


def _ping(name: str) -> bool:
    return bool(celery_app.control.ping(destination=[_hostname(name)], timeout=0.5))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop(launcher: subprocess.Popen, pids: dict[str, int]) -> None:
    """SIGTERM the launcher (it passes it on to its workers); SIGKILL what lingers."""
    if launcher.poll() is None:
        launcher.send_signal(signal.SIGTERM)
        try:
            launcher.wait(timeout=15)
        except subprocess.TimeoutExpired:
            for pid in pids.values():
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)
            launcher.kill()
            launcher.wait()


@pytest.fixture
def hook_tenant(receiver) -> Iterator[tuple[str, int, int, int]]:
    """A committed tenant (the worker runs outside this test's transaction) with a
    project and a webhook to the loopback receiver; dropped afterwards."""

    def provision() -> tuple[str, int, int, int]:
        result = tenant_signup(
            company_name="Hook Kill",
            subdomain="hookkill",
            admin_email="admin@hookkill.test",
            admin_password=PASSWORD,
            admin_name="Hook Admin",
        )
        with schema_context(result.tenant.schema_name):
            project = Project.objects.create(key="HOOK", name="Hooks", lead=result.admin)
            endpoint = WebhookEndpoint.objects.create(
                url=receiver.url,
                secret_encrypted=webhook_secret_encrypt(SECRET),
                event_types=["ticket.created"],
                created_by=result.admin,
            )
        return result.tenant.schema_name, result.admin.pk, project.pk, endpoint.pk

    ids = in_own_connection(provision)
    yield ids

    def drop() -> None:
        Tenant.objects.get(schema_name=ids[0]).delete(force_drop=True)
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {User._meta.db_table} WHERE id = %s", [ids[1]])

    in_own_connection(drop)


@pytest.fixture
def real_broker() -> Iterator[None]:
    """Tasks this test enqueues go to Redis, not run in-process."""
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    yield
    celery_app.conf.task_always_eager = eager


def test_a_worker_killed_mid_delivery_is_recovered_and_the_event_arrives_once(
    hook_tenant, receiver, real_broker
):
    schema, admin_id, project_id, endpoint_id = hook_tenant
    receiver.hold_first = True
    # the first worker consumes the queue; the second stands by (consuming nothing)
    # until the first is dead
    launcher, pids = _workers(f"first:{settings.CELERY_TASK_DEFAULT_QUEUE}", "second:standby")
    try:
        _until(lambda: _ping("first") and _ping("second"), what="the workers to start")

        # given a ticket created (committed): its outbox dispatch goes to the broker
        def create() -> int:
            with schema_context(schema):
                actor = Membership.objects.select_related("user").get(user_id=admin_id)
                project = Project.objects.get(pk=project_id)
                return ticket_create(project=project, actor=actor, data={"summary": "Boom"}).pk

        ticket_id = in_own_connection(create)
        # when the first worker is sending the webhook (the receiver holds the request)
        _until(receiver.arrived.is_set, what="the first worker to send the webhook")
        # it is killed before it can record the answer or acknowledge the task
        os.kill(pids["first"], signal.SIGKILL)
        _until(lambda: not _alive(pids["first"]), what="the first worker to die")
        receiver.release.set()
        # and the standby takes over the queue
        celery_app.control.add_consumer(
            settings.CELERY_TASK_DEFAULT_QUEUE, destination=[_hostname("second")], reply=True
        )

        def delivered() -> WebhookDelivery | None:
            def read() -> WebhookDelivery | None:
                with schema_context(schema):
                    return WebhookDelivery.objects.filter(
                        endpoint_id=endpoint_id, status="succeeded"
                    ).first()

            return in_own_connection(read)

        delivery = _until(delivered, what="the second worker to deliver")
    finally:
        receiver.release.set()
        _stop(launcher, pids)

    # then the receiver got the event twice and, de-duplicated, exactly once
    assert len(receiver.requests) == 2
    assert receiver.processed_event_ids() == [str(delivery.event_id)]
    assert receiver.requests[0].body == receiver.requests[1].body
    assert all(r.signature_valid(SECRET) for r in receiver.requests)
    assert receiver.requests[1].json["data"]["id"] == ticket_id

    def log() -> tuple[int, list[tuple[int, int | None, bool]], int]:
        with schema_context(schema):
            stored = WebhookDelivery.objects.get(pk=delivery.pk)
            attempts = [
                (a.number, a.status_code, a.finished_at is not None)
                for a in stored.attempt_log.order_by("number")
            ]
            return stored.attempts, attempts, WebhookDelivery.objects.count()

    # one delivery row; the cut-off attempt is in the log, unfinished, then the success
    assert in_own_connection(log) == (2, [(1, None, False), (2, 200, True)], 1)
