"""Writes on webhooks, one transaction each, audited and in the outbox (never with the
secret). Callers found the endpoint with `webhook_get_for_admin` (403/404)."""

import uuid
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.members.models import Membership
from eventlog.audit import field_changes
from eventlog.record import change_record
from notifications.webhooks.fanout import RETRY_WINDOW, deliveries_enqueue
from notifications.webhooks.models import WebhookDelivery, WebhookEndpoint
from notifications.webhooks.payloads import WEBHOOK_EVENT_TYPES, ping_body
from notifications.webhooks.signing import webhook_secret_encrypt, webhook_secret_generate
from notifications.webhooks.ssrf import UrlRefused, webhook_target_resolve
from saas.errors import Conflict, Invalid
from saas.tenancy import current_schema
from search.filter_services import filter_jql_check

_PREFIXES = {kind.split(".", 1)[0] for kind in WEBHOOK_EVENT_TYPES}
_AUDITED = ("url", "description", "event_types", "jql", "active")


def webhook_url_check(url: str) -> str:
    """422 unless webhooks may be sent to `url` (scheme, host resolving to public
    addresses only: see notifications.webhooks.ssrf)."""
    url = url.strip()
    try:
        webhook_target_resolve(url)
    except UrlRefused as exc:
        raise Invalid(exc.message, code=exc.code, details={"field": "url"}) from exc
    return url


def webhook_event_types_clean(event_types: Sequence[str]) -> list[str]:
    """Known kinds, `<prefix>.*` or `*`, without duplicates; 422 naming the unknown."""
    cleaned = list(dict.fromkeys(item.strip() for item in event_types))
    unknown = [
        item
        for item in cleaned
        if item != "*"
        and item not in WEBHOOK_EVENT_TYPES
        and not (item.endswith(".*") and item[:-2] in _PREFIXES)
    ]
    if not cleaned or unknown:
        raise Invalid(
            "Unknown event types: " + ", ".join(unknown) if unknown else "Give event types.",
            code="webhook_event_types_invalid",
            details={"field": "event_types", "unknown": unknown, "known": WEBHOOK_EVENT_TYPES},
        )
    return ["*"] if "*" in cleaned else cleaned


def _jql_check(jql: str, owner: Membership) -> str:
    jql = jql.strip()
    if jql:
        filter_jql_check(jql=jql, owner=owner)
    return jql


def _state(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {name: getattr(endpoint, name) for name in _AUDITED}


@transaction.atomic
def webhook_create(
    *,
    actor: Membership,
    url: str,
    event_types: Sequence[str],
    description: str = "",
    jql: str = "",
    active: bool = True,
    secret: str | None = None,
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it with its signing secret (shown only now)."""
    secret = secret or webhook_secret_generate()
    endpoint = WebhookEndpoint.objects.create(
        url=webhook_url_check(url),
        description=description,
        event_types=webhook_event_types_clean(event_types),
        jql=_jql_check(jql, actor),
        active=active,
        secret_encrypted=webhook_secret_encrypt(secret),
        created_by_id=actor.user_id,
    )
    change_record(
        "webhook.created",
        actor=actor,
        target_type="webhook",
        target_id=endpoint.pk,
        changes={name: [None, value] for name, value in _state(endpoint).items()},
        payload={"webhook_id": endpoint.pk},
    )
    return endpoint, secret


@transaction.atomic
def webhook_update(
    *, endpoint: WebhookEndpoint, actor: Membership, **fields: Any
) -> WebhookEndpoint:
    """Change the given fields. Turning an endpoint back on clears its failure state."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    before = _state(endpoint)
    if fields.get("url") is not None and fields["url"].strip() != endpoint.url:
        endpoint.url = webhook_url_check(fields["url"])
    if fields.get("event_types") is not None:
        endpoint.event_types = webhook_event_types_clean(fields["event_types"])
    if fields.get("jql") is not None:
        endpoint.jql = _jql_check(fields["jql"], actor)
    if fields.get("description") is not None:
        endpoint.description = fields["description"]
    if fields.get("active") is not None:
        if fields["active"] and not endpoint.active:
            endpoint.failing_since = None
            endpoint.disabled_at = None
            endpoint.disabled_reason = ""
        endpoint.active = fields["active"]
    changes = field_changes(before, _state(endpoint))
    if changes:
        endpoint.save(
            update_fields=[
                *_AUDITED,
                "failing_since",
                "disabled_at",
                "disabled_reason",
                "updated_at",
            ]
        )
        change_record(
            "webhook.updated",
            actor=actor,
            target_type="webhook",
            target_id=endpoint.pk,
            changes=changes,
            payload={"webhook_id": endpoint.pk, "fields": sorted(changes)},
        )
    return endpoint


@transaction.atomic
def webhook_delete(*, endpoint: WebhookEndpoint, actor: Membership) -> None:
    """Remove the endpoint and its delivery log; nothing more is sent to it."""
    pk, url = endpoint.pk, endpoint.url
    WebhookEndpoint.objects.filter(pk=pk).delete()
    change_record(
        "webhook.deleted",
        actor=actor,
        target_type="webhook",
        target_id=pk,
        changes={"url": [url, None]},
        payload={"webhook_id": pk},
    )


@transaction.atomic
def webhook_secret_rotate(*, endpoint: WebhookEndpoint, actor: Membership) -> str:
    """A new signing secret, used from the next attempt on; returned only now."""
    secret = webhook_secret_generate()
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        secret_encrypted=webhook_secret_encrypt(secret),
        secret_rotated_at=timezone.now(),
        updated_at=timezone.now(),
    )
    change_record(
        "webhook.secret_rotated",
        actor=actor,
        target_type="webhook",
        target_id=endpoint.pk,
        payload={"webhook_id": endpoint.pk},
    )
    return secret


def _require_active(endpoint: WebhookEndpoint) -> None:
    if not endpoint.active:
        raise Conflict(
            "The webhook is disabled; turn it on (active=true) first.",
            code="webhook_inactive",
            details={"disabled_reason": endpoint.disabled_reason},
        )


@transaction.atomic
def webhook_ping(*, endpoint: WebhookEndpoint, actor: Membership) -> WebhookDelivery:
    """Queue a `ping` delivery (a new event id each time) to test the receiver."""
    _require_active(endpoint)
    now = timezone.now()
    event_id = uuid.uuid4()
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        event_id=event_id,
        event_type="ping",
        payload=ping_body(event_id=event_id, at=now.isoformat(), endpoint_id=endpoint.pk),
        next_attempt_at=now,
        retry_until=now + RETRY_WINDOW,
    )
    change_record(
        "webhook.pinged",
        actor=actor,
        target_type="webhook",
        target_id=endpoint.pk,
        payload={"webhook_id": endpoint.pk, "delivery_id": delivery.pk},
    )
    deliveries_enqueue(current_schema(), [delivery.pk])
    return delivery


@transaction.atomic
def delivery_redeliver(
    *, delivery: WebhookDelivery, endpoint: WebhookEndpoint, actor: Membership
) -> WebhookDelivery:
    """Send a delivery again, whatever its state: the same body and event id (receivers
    that already processed it can tell), a fresh day of retries."""
    _require_active(endpoint)
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
    before = delivery.status
    now = timezone.now()
    delivery.status = WebhookDelivery.Status.PENDING
    delivery.next_attempt_at = now
    delivery.retry_until = now + RETRY_WINDOW
    delivery.save(update_fields=["status", "next_attempt_at", "retry_until"])
    change_record(
        "webhook.redelivered",
        actor=actor,
        target_type="webhook",
        target_id=endpoint.pk,
        changes={"status": [before, delivery.status]},
        payload={"webhook_id": endpoint.pk, "delivery_id": delivery.pk},
    )
    deliveries_enqueue(current_schema(), [delivery.pk])
    return delivery
