"""Sending one delivery: at most one sender at a time, every attempt logged, retries
with exponential backoff and jitter for up to a day, and an endpoint that has failed
for a whole day disabled.

A sender holds a session-level advisory lock on the delivery while it sends; the lock
dies with its database connection, so a worker killed mid-send frees the delivery at
once for the redelivered task (or the sweep). The attempt is recorded (committed)
before the request goes out, so a cut-off attempt shows in the log.
"""

import hashlib
import json
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from eventlog.record import change_record
from notifications.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from notifications.webhooks.signing import webhook_secret_decrypt, webhook_signature
from notifications.webhooks.ssrf import UrlRefused, webhook_target_resolve
from notifications.webhooks.transport import SendResult, http_post_pinned
from saas.tenancy import current_schema

BASE_DELAY = timedelta(seconds=10)
MAX_DELAY = timedelta(hours=2)
FAILURE_WINDOW = timedelta(hours=24)
# Retries due sooner than this are enqueued with a countdown; later ones are left to
# the beat sweep (long countdowns outlive the broker's visibility timeout).
COUNTDOWN_LIMIT = timedelta(minutes=15)
DUE_STATUSES = (WebhookDelivery.Status.PENDING, WebhookDelivery.Status.FAILED)
USER_AGENT = "Ticketing-Webhooks/1.0"


def webhook_retry_delay(attempt: int, *, rand: Callable[[], float] = random.random) -> timedelta:
    """Delay after failed attempt number `attempt` (1-based): 10 s doubling up to 2 h,
    with "equal jitter" (between half and all of it) so receivers coming back up are
    not hit by every sender at once."""
    ceiling = min(BASE_DELAY * 2 ** min(attempt - 1, 20), MAX_DELAY)
    return ceiling * (0.5 + rand() / 2)


def _lock_key(delivery_id: int) -> int:
    digest = hashlib.sha256(f"webhook-delivery:{current_schema()}:{delivery_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def _delivery_lock(delivery_id: int) -> Iterator[bool]:
    key = _lock_key(delivery_id)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        locked = bool(cursor.fetchone()[0])
    try:
        yield locked
    finally:
        if locked:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
            except DatabaseError:  # the connection is gone, and the lock with it
                pass


def delivery_request_body(delivery: WebhookDelivery) -> bytes:
    return json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()


def _send(delivery: WebhookDelivery, endpoint: WebhookEndpoint) -> SendResult:
    try:
        target = webhook_target_resolve(endpoint.url)
        secret = webhook_secret_decrypt(endpoint.secret_encrypted)
    except UrlRefused as exc:
        return SendResult(None, 0, f"refused: {exc.message}", "")
    except ValueError as exc:
        return SendResult(None, 0, str(exc), "")
    body = delivery_request_body(delivery)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Webhook-Id": str(delivery.event_id),
        "X-Webhook-Event": delivery.event_type,
        "X-Webhook-Delivery": str(delivery.pk),
        "X-Webhook-Timestamp": str(timestamp),
        "X-Signature": webhook_signature(secret=secret, timestamp=timestamp, body=body),
    }
    return http_post_pinned(target=target, body=body, headers=headers)


def webhook_delivery_attempt(*, delivery_id: int) -> str:
    """Send the delivery if it is due and nobody else is sending it; safe to call any
    number of times. Returns what happened (succeeded, failed, abandoned, busy, ...)."""
    with _delivery_lock(delivery_id) as locked:
        if not locked:
            return "busy"
        delivery = WebhookDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
        if delivery is None:
            return "gone"
        endpoint = delivery.endpoint
        now = timezone.now()
        if delivery.status not in DUE_STATUSES or not endpoint.active:
            return "skipped"
        if delivery.next_attempt_at and delivery.next_attempt_at > now + timedelta(seconds=1):
            return "not_due"
        number = delivery.attempts + 1
        with transaction.atomic():
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                attempts=number, last_attempt_at=now
            )
            attempt = WebhookAttempt.objects.create(
                delivery=delivery, number=number, started_at=now
            )
        result = _send(delivery, endpoint)
        return _outcome_record(delivery=delivery, attempt=attempt, result=result)


@transaction.atomic
def _outcome_record(
    *, delivery: WebhookDelivery, attempt: WebhookAttempt, result: SendResult
) -> str:
    now = timezone.now()
    excerpt = result.response_excerpt[:1000]
    WebhookAttempt.objects.filter(pk=attempt.pk).update(
        finished_at=now,
        status_code=result.status_code,
        latency_ms=result.latency_ms,
        error=result.error,
        response_excerpt=excerpt,
    )
    last = {
        "last_status_code": result.status_code,
        "last_latency_ms": result.latency_ms,
        "last_error": result.error,
        "last_response_excerpt": excerpt,
    }
    deliveries = WebhookDelivery.objects.filter(pk=delivery.pk)
    endpoints = WebhookEndpoint.objects.filter(pk=delivery.endpoint_id)
    if result.succeeded:
        deliveries.update(
            status=WebhookDelivery.Status.SUCCEEDED, delivered_at=now, next_attempt_at=None, **last
        )
        endpoints.filter(failing_since__isnull=False).update(failing_since=None)
        return "succeeded"
    endpoints.filter(failing_since__isnull=True).update(failing_since=now)
    if now >= delivery.retry_until:
        deliveries.update(status=WebhookDelivery.Status.ABANDONED, next_attempt_at=None, **last)
        outcome = "abandoned"
    else:
        delay = webhook_retry_delay(attempt.number)
        deliveries.update(status=WebhookDelivery.Status.FAILED, next_attempt_at=now + delay, **last)
        if delay <= COUNTDOWN_LIMIT:
            _retry_enqueue(delivery.pk, delay)
        outcome = "failed"
    if endpoint_disable_if_failing(endpoint_id=delivery.endpoint_id, now=now, error=result.error):
        outcome = "abandoned"
    return outcome


def _retry_enqueue(delivery_id: int, delay: timedelta) -> None:
    schema_name = current_schema()

    def enqueue() -> None:
        from notifications.webhooks.tasks import webhook_delivery_send

        webhook_delivery_send.apply_async(
            args=[schema_name, delivery_id], countdown=delay.total_seconds()
        )

    transaction.on_commit(enqueue)


def endpoint_disable_if_failing(*, endpoint_id: int, now: datetime, error: str) -> bool:
    """Disable an endpoint that has failed continuously for FAILURE_WINDOW: inactive,
    with the reason, its waiting deliveries abandoned, the change audited and a
    `webhook.disabled` event emitted (its consumer tells the admins)."""
    endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint_id).first()
    if (
        endpoint is None
        or not endpoint.active
        or endpoint.failing_since is None
        or endpoint.failing_since > now - FAILURE_WINDOW
    ):
        return False
    reason = (
        f"Disabled automatically: every delivery failed since "
        f"{endpoint.failing_since:%Y-%m-%d %H:%M} UTC (last error: {error or 'unknown'})."
    )[:500]
    endpoint.active = False
    endpoint.disabled_at = now
    endpoint.disabled_reason = reason
    endpoint.save(update_fields=["active", "disabled_at", "disabled_reason", "updated_at"])
    WebhookDelivery.objects.filter(endpoint=endpoint, status__in=DUE_STATUSES).update(
        status=WebhookDelivery.Status.ABANDONED, next_attempt_at=None
    )
    change_record(
        "webhook.disabled",
        actor=None,
        target_type="webhook",
        target_id=endpoint.pk,
        changes={"active": [True, False], "disabled_reason": ["", reason]},
        payload={"webhook_id": endpoint.pk, "url": endpoint.url, "reason": reason},
    )
    return True


def deliveries_due_ids(*, limit: int = 500) -> list[int]:
    """Deliveries of active endpoints whose (next) attempt is due, oldest first."""
    return list(
        WebhookDelivery.objects.filter(
            status__in=DUE_STATUSES, next_attempt_at__lte=timezone.now(), endpoint__active=True
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
