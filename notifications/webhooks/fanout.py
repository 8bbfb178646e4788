"""The outbox consumer of webhooks: one delivery row per event and matching endpoint
(unique, so handing the same event over twice creates nothing new), sent by a task
enqueued after the dispatch transaction commits."""

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from django_tenants.utils import get_tenant_model

from accounts.members.models import Membership, Role
from eventlog.models import OutboxEvent
from eventlog.outbox import outbox_consumer
from notifications.webhooks.models import WebhookDelivery, WebhookEndpoint
from notifications.webhooks.payloads import (
    WEBHOOK_EVENT_TYPES,
    event_body,
    event_ticket_id,
    event_type_matches,
    webhook_event_id,
)
from saas.tenancy import current_schema
from search.jql import ast
from search.jql.compile_postgres import jql_compile_postgres
from search.jql.parser import jql_parse

logger = logging.getLogger(__name__)
RETRY_WINDOW = timedelta(hours=24)


def endpoint_viewer(endpoint: WebhookEndpoint) -> Membership | None:
    """Whose view a JQL filter runs in: the endpoint's creator while an active member,
    else an active admin of the workspace."""
    members = Membership.objects.select_related("user").filter(is_active=True)
    creator_id = endpoint.created_by_id
    creator = members.filter(user_id=creator_id).first() if creator_id else None
    return creator or members.filter(role=Role.ADMIN).order_by("id").first()


def _jql_admits(
    endpoint: WebhookEndpoint, event: OutboxEvent, ticket_id: int | None, tenant: Any
) -> bool:
    """A JQL filter applies to events about a ticket: the ticket must match it now.
    Tickets that are gone (ticket.deleted) cannot match."""
    if not endpoint.jql or event.aggregate_type != "ticket":
        return True
    viewer = endpoint_viewer(endpoint)
    if ticket_id is None or viewer is None:
        return False
    try:
        tickets = jql_compile_postgres(jql_parse(endpoint.jql), member=viewer, tenant=tenant)
    except (ast.JqlError, OverflowError) as exc:
        logger.warning("webhook %s: its JQL filter no longer compiles: %s", endpoint.pk, exc)
        return False
    return tickets.filter(pk=ticket_id).exists()


def deliveries_enqueue(schema_name: str, delivery_ids: list[int]) -> None:
    """Send these deliveries once the current transaction has committed."""
    if not delivery_ids:
        return

    def enqueue() -> None:
        from notifications.webhooks.tasks import webhook_delivery_send

        for delivery_id in delivery_ids:
            webhook_delivery_send.delay(schema_name, delivery_id)

    transaction.on_commit(enqueue)


def deliveries_create_for_event(event: OutboxEvent) -> list[int]:
    """Create the deliveries of `event` (idempotent); the ids of those still unsent."""
    if event.kind not in WEBHOOK_EVENT_TYPES:
        return []
    endpoints = [
        endpoint
        for endpoint in WebhookEndpoint.objects.filter(active=True)
        if event_type_matches(endpoint.event_types, event.kind)
    ]
    if not endpoints:
        return []
    schema_name = current_schema()
    tenant = get_tenant_model().objects.filter(schema_name=schema_name).first()
    ticket_id = event_ticket_id(event) if any(e.jql for e in endpoints) else None
    endpoints = [e for e in endpoints if _jql_admits(e, event, ticket_id, tenant)]
    if not endpoints:
        return []
    event_id = webhook_event_id(schema_name=schema_name, outbox_event_id=event.pk)
    body: dict[str, Any] = event_body(event, event_id=event_id, tenant=tenant)
    now = timezone.now()
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                endpoint=endpoint,
                event_id=event_id,
                event_type=event.kind,
                payload=body,
                next_attempt_at=now,
                retry_until=now + RETRY_WINDOW,
            )
            for endpoint in endpoints
        ],
        ignore_conflicts=True,
    )
    return list(
        WebhookDelivery.objects.filter(
            event_id=event_id, endpoint__in=endpoints, status=WebhookDelivery.Status.PENDING
        ).values_list("pk", flat=True)
    )


@outbox_consumer("*")
def webhooks_fan_out(event: OutboxEvent) -> None:
    deliveries_enqueue(current_schema(), deliveries_create_for_event(event))
