"""Reads on webhooks: tenant admins only (403 for everyone else), 404 for ids that do
not exist in this workspace."""

from django.db.models import QuerySet

from accounts.members.models import Membership
from accounts.policy import ADMIN_TENANT, member_require
from notifications.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from saas.errors import NotFound
from saas.refs import db_id_valid


def webhooks_visible_to(member: Membership) -> QuerySet[WebhookEndpoint]:
    member_require(member, ADMIN_TENANT)
    return WebhookEndpoint.objects.select_related("created_by")


def webhook_get_for_admin(*, member: Membership, webhook_id: int) -> WebhookEndpoint:
    webhooks = webhooks_visible_to(member)
    endpoint = webhooks.filter(pk=webhook_id).first() if db_id_valid(webhook_id) else None
    if endpoint is None:
        raise NotFound(f"Webhook {webhook_id} does not exist.", code="webhook_not_found")
    return endpoint


def deliveries_list(
    *, endpoint: WebhookEndpoint, status: str | None = None, event_type: str | None = None
) -> QuerySet[WebhookDelivery]:
    """The endpoint's deliveries, newest first."""
    deliveries = WebhookDelivery.objects.filter(endpoint=endpoint).defer("payload")
    if status:
        deliveries = deliveries.filter(status=status)
    if event_type:
        deliveries = deliveries.filter(event_type=event_type)
    return deliveries.order_by("-id")


def delivery_get(*, endpoint: WebhookEndpoint, delivery_id: int) -> WebhookDelivery:
    delivery = (
        WebhookDelivery.objects.filter(endpoint=endpoint, pk=delivery_id).first()
        if db_id_valid(delivery_id)
        else None
    )
    if delivery is None:
        raise NotFound(f"Delivery {delivery_id} does not exist.", code="delivery_not_found")
    return delivery


def delivery_attempts(*, delivery: WebhookDelivery) -> list[WebhookAttempt]:
    return list(WebhookAttempt.objects.filter(delivery=delivery).order_by("number"))
