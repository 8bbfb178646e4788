"""Fan-out and delivery to a real receiver on loopback: signature, payload, event type
and JQL filters, retries with backoff, disabling after a day of failures, redelivery."""

import json
import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone
from django_tenants.utils import schema_context

from accounts.members.models import Membership
from eventlog.models import AuditEntry, OutboxEvent
from notifications.models import Notification
from notifications.webhooks.delivery import (
    BASE_DELAY,
    MAX_DELAY,
    _lock_key,
    webhook_delivery_attempt,
    webhook_retry_delay,
)
from notifications.webhooks.fanout import deliveries_create_for_event
from notifications.webhooks.models import WebhookDelivery, WebhookEndpoint
from notifications.webhooks.payloads import ping_body, webhook_event_id
from notifications.webhooks.tasks import webhooks_send_due
from tests.tickets.conftest import in_own_connection
from tests.webhooks.conftest import SECRET, webhook_make
from tickets.content_services import comment_create

pytestmark = pytest.mark.usefixtures("loopback_allowed")


def _delivery(world, **filters) -> WebhookDelivery:
    with schema_context(world.schema):
        found = WebhookDelivery.objects.get(**filters)
    connection.set_schema_to_public()
    return found


def _attempt(world, delivery_id: int, *, run_callbacks=None) -> str:
    with schema_context(world.schema):
        outcome = webhook_delivery_attempt(delivery_id=delivery_id)
    connection.set_schema_to_public()
    return outcome


def _make_due(world, delivery_id: int) -> None:
    with schema_context(world.schema):
        WebhookDelivery.objects.filter(pk=delivery_id).update(
            next_attempt_at=timezone.now() - timedelta(seconds=1)
        )
    connection.set_schema_to_public()


def test_a_new_ticket_reaches_the_receiver_signed_with_the_ticket_as_the_api_shows_it(
    world_a, admin_a, receiver, make_ticket, django_capture_on_commit_callbacks
):
    # given
    endpoint = webhook_make(world_a, receiver.url, event_types=["ticket.created"])
    # when the ticket is created and the outbox and the send task run after commit
    with django_capture_on_commit_callbacks(execute=True):
        ticket = make_ticket(summary="Printer on fire", labels=["hw"])
    # then
    [request] = receiver.requests
    assert request.path == "/hooks/in?src=test"
    assert request.signature_valid(SECRET)
    assert not request.signature_valid("whsec_another-secret-entirely")
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Webhook-Event"] == "ticket.created"
    body = request.json
    with schema_context(world_a.schema):
        event = OutboxEvent.objects.get(kind="ticket.created", aggregate_id=str(ticket.pk))
    expected_id = str(webhook_event_id(schema_name=world_a.schema, outbox_event_id=event.pk))
    assert body["id"] == expected_id == request.headers["X-Webhook-Id"]
    assert body["type"] == "ticket.created"
    assert body["tenant"] == {"schema": world_a.schema, "subdomain": "alpha", "name": "Alpha Corp"}
    assert body["actor"] == {
        "id": world_a.admin.pk,
        "username": world_a.admin.username,
        "display_name": "Alpha Admin",
    }
    assert body["changes"] == {"key": ticket.key, "project": "CORE"}
    shown = admin_a.get(f"/api/v1/tickets/{ticket.key}").json()
    assert {
        k: body["data"][k] for k in ("id", "key", "summary", "labels", "status", "version")
    } == {k: shown[k] for k in ("id", "key", "summary", "labels", "status", "version")}
    assert body["data"]["summary"] == "Printer on fire"
    delivery = _delivery(world_a, endpoint=endpoint)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 1, 200)
    assert delivery.last_latency_ms is not None
    assert delivery.last_latency_ms >= 0
    assert delivery.last_response_excerpt == "thanks"
    assert str(delivery.event_id) == expected_id
    # and the log answers the same through the API
    log = admin_a.get(f"/api/v1/webhooks/{endpoint.pk}/deliveries").json()
    assert log["total"] == 1
    assert log["items"][0]["status"] == "succeeded"
    assert log["items"][0]["last_status_code"] == 200
    detail = admin_a.get(f"/api/v1/webhooks/{endpoint.pk}/deliveries/{delivery.pk}").json()
    assert detail["payload"]["id"] == expected_id
    assert [(a["number"], a["status_code"], a["error"]) for a in detail["attempt_log"]] == [
        (1, 200, "")
    ]


def test_comment_events_carry_the_comment_and_its_ticket(
    world_a, receiver, make_ticket, django_capture_on_commit_callbacks
):
    webhook_make(world_a, receiver.url, event_types=["comment.*"])
    # when
    with django_capture_on_commit_callbacks(execute=True):
        ticket = make_ticket(summary="Needs words")
        with schema_context(world_a.schema):
            actor = Membership.objects.select_related("user").get(user=world_a.lead)
            comment = comment_create(ticket=ticket, actor=actor, body="Looks **bad**")
    # then
    [request] = receiver.requests
    data = request.json["data"]
    assert request.json["type"] == "comment.created"
    assert (data["id"], data["body"], data["author"]["id"]) == (
        comment.pk,
        "Looks **bad**",
        world_a.lead.pk,
    )
    assert (data["ticket"]["key"], data["ticket"]["summary"]) == (ticket.key, "Needs words")
    assert request.json["changes"]["comment_id"] == comment.pk


def test_only_subscribed_event_types_are_delivered(
    world_a, receiver, make_ticket, django_capture_on_commit_callbacks
):
    # given one endpoint for comments only, one for every ticket event
    comments_only = webhook_make(world_a, receiver.url, event_types=["comment.created"])
    tickets = webhook_make(world_a, receiver.url + "&t=1", event_types=["ticket.*"])
    # when
    with django_capture_on_commit_callbacks(execute=True):
        make_ticket(summary="One")
    # then
    assert [r.path for r in receiver.requests] == ["/hooks/in?src=test&t=1"]
    with schema_context(world_a.schema):
        assert WebhookDelivery.objects.filter(endpoint=comments_only).count() == 0
        assert WebhookDelivery.objects.filter(endpoint=tickets).count() == 1


def test_inactive_webhooks_get_nothing_and_internal_events_are_never_sent(
    world_a, receiver, make_ticket, django_capture_on_commit_callbacks
):
    webhook_make(world_a, receiver.url, active=False)
    everything = webhook_make(world_a, receiver.url + "&all=1")
    with schema_context(world_a.schema):
        event = OutboxEvent.objects.create(
            kind="auth.login", aggregate_type="user", aggregate_id="1", payload={}
        )
        assert deliveries_create_for_event(event) == []
    with django_capture_on_commit_callbacks(execute=True):
        make_ticket(summary="One")
    assert [r.path for r in receiver.requests] == ["/hooks/in?src=test&all=1"]
    assert _delivery(world_a, endpoint=everything).event_type == "ticket.created"


def test_a_jql_filter_lets_through_only_events_of_matching_tickets(
    world_a, receiver, make_ticket, django_capture_on_commit_callbacks
):
    # given
    webhook_make(world_a, receiver.url, jql='summary ~ "fire" AND project = CORE')
    # when
    with django_capture_on_commit_callbacks(execute=True):
        burning = make_ticket(summary="Printer on fire")
        make_ticket(summary="Quiet ticket")
    # then
    assert [(r.json["type"], r.json["data"]["key"]) for r in receiver.requests] == [
        ("ticket.created", burning.key)
    ]


def test_fan_out_is_idempotent_per_event_and_endpoint(world_a, receiver, make_ticket):
    endpoint = webhook_make(world_a, receiver.url)
    ticket = make_ticket(summary="Twice")
    with schema_context(world_a.schema):
        event = OutboxEvent.objects.get(kind="ticket.created", aggregate_id=str(ticket.pk))
        # when the same event is handed over twice (a worker died mid-dispatch)
        first = deliveries_create_for_event(event)
        second = deliveries_create_for_event(event)
        # then
        assert len(first) == 1
        assert first == second
        assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 1


def test_failed_deliveries_retry_with_growing_backoff_then_succeed(
    world_a, receiver, make_ticket, django_capture_on_commit_callbacks
):
    # given a receiver failing twice
    receiver.statuses = [500, 503]
    endpoint = webhook_make(world_a, receiver.url)
    # when the first attempt runs after commit (the eager retry task finds it not due)
    with django_capture_on_commit_callbacks(execute=True):
        make_ticket(summary="Flaky")
    delivery = _delivery(world_a, endpoint=endpoint)
    # then it failed and waits 5-10 s (10 s, jittered)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 1, 500)
    assert delivery.last_error == "HTTP 500"
    assert len(delivery.last_response_excerpt) == 1000
    wait = delivery.next_attempt_at - delivery.last_attempt_at
    assert timedelta(seconds=5) <= wait <= timedelta(seconds=10, milliseconds=50)
    with schema_context(world_a.schema):
        assert WebhookEndpoint.objects.get(pk=endpoint.pk).failing_since is not None
    # when it is tried before it is due: nothing is sent
    assert _attempt(world_a, delivery.pk) == "not_due"
    assert len(receiver.requests) == 1
    # when due: the second attempt fails and waits 10-20 s
    _make_due(world_a, delivery.pk)
    assert _attempt(world_a, delivery.pk) == "failed"
    delivery = _delivery(world_a, pk=delivery.pk)
    wait = delivery.next_attempt_at - delivery.last_attempt_at
    assert timedelta(seconds=10) <= wait <= timedelta(seconds=20, milliseconds=50)
    assert (delivery.attempts, delivery.last_status_code) == (2, 503)
    # when due again: success
    _make_due(world_a, delivery.pk)
    assert _attempt(world_a, delivery.pk) == "succeeded"
    # then
    delivery = _delivery(world_a, pk=delivery.pk)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("succeeded", 3, None)
    assert len({r.headers["X-Webhook-Id"] for r in receiver.requests}) == 1
    assert len(receiver.requests) == 3
    with schema_context(world_a.schema):
        assert list(delivery.attempt_log.values_list("number", "status_code")) == [
            (1, 500),
            (2, 503),
            (3, 200),
        ]
        assert WebhookEndpoint.objects.get(pk=endpoint.pk).failing_since is None
    # and a further attempt sends nothing
    assert _attempt(world_a, delivery.pk) == "skipped"
    assert len(receiver.requests) == 3


def test_retry_delays_double_from_10_seconds_to_2_hours_with_jitter():
    assert webhook_retry_delay(1, rand=lambda: 1.0) == BASE_DELAY
    assert webhook_retry_delay(1, rand=lambda: 0.0) == BASE_DELAY / 2
    assert webhook_retry_delay(4, rand=lambda: 1.0) == timedelta(seconds=80)
    assert webhook_retry_delay(11, rand=lambda: 1.0) == MAX_DELAY
    assert webhook_retry_delay(60, rand=lambda: 0.0) == MAX_DELAY / 2
    # over a day that is about 20 attempts
    total, attempt = timedelta(0), 0
    while total < timedelta(hours=24):
        attempt += 1
        total += webhook_retry_delay(attempt, rand=lambda: 1.0)
    assert attempt == 21


def test_redirects_are_not_followed(world_a, receiver, make_ticket):
    receiver.statuses = [302]
    endpoint = webhook_make(world_a, receiver.url)
    ping = _ping(world_a, endpoint)
    assert _attempt(world_a, ping.pk) == "failed"
    delivery = _delivery(world_a, pk=ping.pk)
    assert delivery.last_status_code == 302
    assert delivery.last_error == "HTTP 302 (redirects are not followed)"
    assert len(receiver.requests) == 1


def test_a_delivery_past_its_day_of_retries_is_abandoned(world_a, receiver):
    receiver.statuses = [500]
    endpoint = webhook_make(world_a, receiver.url)
    ping = _ping(world_a, endpoint)
    with schema_context(world_a.schema):
        WebhookDelivery.objects.filter(pk=ping.pk).update(
            retry_until=timezone.now() - timedelta(seconds=1)
        )
    assert _attempt(world_a, ping.pk) == "abandoned"
    delivery = _delivery(world_a, pk=ping.pk)
    assert (delivery.status, delivery.next_attempt_at, delivery.attempts) == ("abandoned", None, 1)


def _ping(world, endpoint) -> WebhookDelivery:
    """A due `ping` delivery, written directly: no outbox event of its own."""
    event_id = uuid.uuid4()
    now = timezone.now()
    with schema_context(world.schema):
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint,
            event_id=event_id,
            event_type="ping",
            payload=ping_body(event_id=event_id, at=now.isoformat(), endpoint_id=endpoint.pk),
            next_attempt_at=now,
            retry_until=now + timedelta(hours=24),
        )
    connection.set_schema_to_public()
    return delivery


def test_an_endpoint_failing_for_a_day_is_disabled_and_the_admins_are_told(
    world_a, receiver, django_capture_on_commit_callbacks
):
    # given an endpoint failing since 25 hours, with another delivery waiting
    receiver.statuses = [500]
    endpoint = webhook_make(world_a, receiver.url)
    failing = _ping(world_a, endpoint)
    waiting = _ping(world_a, endpoint)
    with schema_context(world_a.schema):
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            failing_since=timezone.now() - timedelta(hours=25)
        )
        WebhookDelivery.objects.filter(pk=waiting.pk).update(
            status="failed", next_attempt_at=timezone.now() + timedelta(hours=1)
        )
    # when the next attempt fails (the outbox dispatch runs after commit)
    with django_capture_on_commit_callbacks(execute=True):
        outcome = _attempt(world_a, failing.pk)
    # then
    assert outcome == "abandoned"
    with schema_context(world_a.schema):
        stored = WebhookEndpoint.objects.get(pk=endpoint.pk)
        assert stored.active is False
        assert stored.disabled_at is not None
        assert stored.disabled_reason.startswith("Disabled automatically: every delivery failed")
        assert stored.disabled_reason.endswith("(last error: HTTP 500).")
        assert sorted(WebhookDelivery.objects.values_list("pk", "status")) == [
            (failing.pk, "abandoned"),
            (waiting.pk, "abandoned"),
        ]
        assert AuditEntry.objects.filter(action="webhook.disabled").count() == 1
        admins = set(
            Membership.objects.filter(role="ADMIN", is_active=True).values_list(
                "user_id", flat=True
            )
        )
        notices = Notification.objects.filter(kind="webhook.disabled")
        assert {n.recipient_id for n in notices} == admins == {world_a.admin.pk}
        assert notices[0].title == f"Webhook disabled: {receiver.url}"
        assert notices[0].url == f"/settings/webhooks/{endpoint.pk}"
    # and nothing more is sent to it
    assert _attempt(world_a, waiting.pk) == "skipped"
    assert len(receiver.requests) == 1


def test_an_endpoint_failing_for_less_than_a_day_stays_active(world_a, receiver):
    receiver.statuses = [500]
    endpoint = webhook_make(world_a, receiver.url)
    ping = _ping(world_a, endpoint)
    with schema_context(world_a.schema):
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            failing_since=timezone.now() - timedelta(hours=23)
        )
    assert _attempt(world_a, ping.pk) == "failed"
    with schema_context(world_a.schema):
        assert WebhookEndpoint.objects.get(pk=endpoint.pk).active is True
        assert Notification.objects.filter(kind="webhook.disabled").count() == 0


def test_redeliver_sends_the_same_event_again(
    world_a, admin_a, receiver, django_capture_on_commit_callbacks
):
    endpoint = webhook_make(world_a, receiver.url)
    ping = _ping(world_a, endpoint)
    assert _attempt(world_a, ping.pk) == "succeeded"
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_a.post(f"/api/v1/webhooks/{endpoint.pk}/deliveries/{ping.pk}/redeliver")
    # then
    assert response.status_code == 202
    assert response.json()["status"] == "pending"
    assert [r.headers["X-Webhook-Id"] for r in receiver.requests] == [str(ping.event_id)] * 2
    assert receiver.requests[0].body == receiver.requests[1].body
    delivery = _delivery(world_a, pk=ping.pk)
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)


def test_ping_through_the_api_reaches_the_receiver(
    world_a, admin_a, receiver, django_capture_on_commit_callbacks
):
    endpoint = webhook_make(world_a, receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_a.post(f"/api/v1/webhooks/{endpoint.pk}/ping")
    assert response.status_code == 202
    [request] = receiver.requests
    assert request.json["type"] == "ping"
    assert request.json["data"]["webhook_id"] == endpoint.pk
    assert request.json["id"] == response.json()["event_id"]
    assert uuid.UUID(request.json["id"]).version == 4
    assert request.signature_valid(SECRET)


def test_a_rotated_secret_signs_the_next_attempts(world_a, admin_a, receiver):
    endpoint = webhook_make(world_a, receiver.url)
    new_secret = admin_a.post(f"/api/v1/webhooks/{endpoint.pk}/rotate-secret").json()["secret"]
    ping = _ping(world_a, endpoint)
    assert _attempt(world_a, ping.pk) == "succeeded"
    [request] = receiver.requests
    assert request.signature_valid(new_secret)
    assert not request.signature_valid(SECRET)


def test_deliveries_list_pages_and_filters(world_a, admin_a, receiver):
    receiver.statuses = [500]
    endpoint = webhook_make(world_a, receiver.url)
    pings = [_ping(world_a, endpoint) for _ in range(3)]
    _attempt(world_a, pings[0].pk)
    base = f"/api/v1/webhooks/{endpoint.pk}/deliveries"
    page = admin_a.get(base, limit=2).json()
    failed = admin_a.get(base, status="failed").json()
    bad = admin_a.get(base, status="exploded")
    assert (page["total"], [d["id"] for d in page["items"]]) == (3, [pings[2].pk, pings[1].pk])
    assert [d["id"] for d in failed["items"]] == [pings[0].pk]
    assert failed["items"][0]["last_error"] == "HTTP 500"
    assert bad.status_code == 422
    body = json.dumps(admin_a.get(base).json())
    assert "payload" not in body


def test_the_sweep_sends_what_is_due_and_only_that(world_a, receiver):
    # given one due delivery, one waiting for its retry, one of an inactive webhook
    active = webhook_make(world_a, receiver.url)
    paused = webhook_make(world_a, receiver.url + "&paused=1", active=False)
    due = _ping(world_a, active)
    waiting = _ping(world_a, active)
    of_paused = _ping(world_a, paused)
    with schema_context(world_a.schema):
        WebhookDelivery.objects.filter(pk=waiting.pk).update(
            status="failed", next_attempt_at=timezone.now() + timedelta(minutes=5)
        )
    connection.set_schema_to_public()
    # when (eager Celery runs the fanned-out sends at once)
    sent = webhooks_send_due.apply(args=[world_a.schema]).get()
    # then
    assert sent == 1
    assert [r.headers["X-Webhook-Id"] for r in receiver.requests] == [str(due.event_id)]
    assert _delivery(world_a, pk=due.pk).status == "succeeded"
    assert _delivery(world_a, pk=waiting.pk).status == "failed"
    assert _delivery(world_a, pk=of_paused.pk).status == "pending"


def test_a_delivery_being_sent_elsewhere_is_not_sent_twice(world_a, receiver):
    # given another connection (another worker) holding the delivery's send lock
    endpoint = webhook_make(world_a, receiver.url)
    ping = _ping(world_a, endpoint)
    with schema_context(world_a.schema):
        key = _lock_key(ping.pk)
    held, done = threading.Event(), threading.Event()

    def other_worker() -> None:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [key])
            held.set()
            done.wait(10)
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])

    thread = threading.Thread(target=lambda: in_own_connection(other_worker))
    thread.start()
    try:
        assert held.wait(10)
        # when
        outcome = _attempt(world_a, ping.pk)
    finally:
        done.set()
        thread.join()
    # then
    assert outcome == "busy"
    assert receiver.requests == []
    assert (_delivery(world_a, pk=ping.pk).attempts, _attempt(world_a, ping.pk)) == (0, "succeeded")
