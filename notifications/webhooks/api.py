"""Outbound webhooks: `/webhooks`, for tenant admins (403 for everyone else).

Each delivery is a signed JSON POST (see README "Webhooks"); the delivery log keeps
every attempt with its status code and latency.
"""

from ninja import Query, Router, Status
from ninja.pagination import paginate

from accounts.authentication import AuthedRequest
from accounts.user_schemas import errors
from notifications.webhooks.models import WebhookEndpoint
from notifications.webhooks.schemas import (
    DeliveryDetailOut,
    DeliveryFilters,
    DeliveryOut,
    WebhookIn,
    WebhookOut,
    WebhookUpdateIn,
    WebhookWithSecretOut,
)
from notifications.webhooks.selectors import (
    deliveries_list,
    delivery_get,
    webhook_get_for_admin,
    webhooks_visible_to,
)
from notifications.webhooks.services import (
    delivery_redeliver,
    webhook_create,
    webhook_delete,
    webhook_ping,
    webhook_secret_rotate,
    webhook_update,
)
from saas.idempotency import idempotent
from saas.pagination import Page

router = Router(tags=["webhooks"])


def _with_secret(request: AuthedRequest, webhook_id: int, secret: str) -> WebhookEndpoint:
    endpoint = webhook_get_for_admin(member=request.member, webhook_id=webhook_id)
    # answered once (WebhookWithSecretOut reads it), never stored in plain
    setattr(endpoint, "secret", secret)  # noqa: B010
    return endpoint


@router.get("", response={200: list[WebhookOut], **errors(403)})
@paginate(Page)
def webhooks_index(request: AuthedRequest):
    """The workspace's webhooks, oldest first. Secrets are never shown here."""
    return webhooks_visible_to(request.member).order_by("id")


@router.post("", response={201: WebhookWithSecretOut, **errors(403, 409, 422)})
def webhooks_create(request: AuthedRequest, body: WebhookIn):
    """Register a webhook. The URL must be http(s) and resolve to public addresses
    (422 `webhook_url_forbidden` otherwise); a JQL filter is checked as you would run
    it (422 `jql_invalid`). The answer carries the signing secret, shown only once."""
    webhooks_visible_to(request.member)

    def produce() -> tuple[int, dict, dict[str, str]]:
        endpoint, secret = webhook_create(actor=request.member, **body.dict())
        shown = _with_secret(request, endpoint.pk, secret)
        return 201, WebhookWithSecretOut.from_orm(shown).model_dump(mode="json"), {}

    return idempotent(request, produce)


@router.get("/{webhookId}", response={200: WebhookOut, **errors(403, 404)})
def webhooks_get(request: AuthedRequest, webhookId: int):
    """One webhook (without its secret)."""
    return webhook_get_for_admin(member=request.member, webhook_id=webhookId)


@router.put("/{webhookId}", response={200: WebhookOut, **errors(403, 404, 422)})
def webhooks_update(request: AuthedRequest, webhookId: int, body: WebhookUpdateIn):
    """Change a webhook; omitted fields stay. `active=true` turns a disabled webhook
    back on and clears its failure state."""
    endpoint = webhook_get_for_admin(member=request.member, webhook_id=webhookId)
    webhook_update(endpoint=endpoint, actor=request.member, **body.dict(exclude_unset=True))
    return webhook_get_for_admin(member=request.member, webhook_id=webhookId)


@router.delete("/{webhookId}", response={204: None, **errors(403, 404)})
def webhooks_delete(request: AuthedRequest, webhookId: int):
    """Delete a webhook and its delivery log."""
    endpoint = webhook_get_for_admin(member=request.member, webhook_id=webhookId)
    webhook_delete(endpoint=endpoint, actor=request.member)
    return Status(204, None)


@router.post("/{webhookId}/rotate-secret", response={200: WebhookWithSecretOut, **errors(403, 404)})
def webhooks_rotate_secret(request: AuthedRequest, webhookId: int):
    """Replace the signing secret; the new one is in this answer only and signs every
    attempt from now on."""
    endpoint = webhook_get_for_admin(member=request.member, webhook_id=webhookId)
    secret = webhook_secret_rotate(endpoint=endpoint, actor=request.member)
    return _with_secret(request, endpoint.pk, secret)


@router.post("/{webhookId}/ping", response={202: DeliveryOut, **errors(403, 404, 409)})
def webhooks_ping(request: AuthedRequest, webhookId: int):
    """Queue a `ping` event to the webhook; follow it in the delivery log."""
    endpoint = webhook_get_for_admin(member=request.member, webhook_id=webhookId)
    return Status(202, webhook_ping(endpoint=endpoint, actor=request.member))


@router.get("/{webhookId}/deliveries", response={200: list[DeliveryOut], **errors(403, 404)})
@paginate(Page)
def webhooks_deliveries(request: AuthedRequest, webhookId: int, filters: Query[DeliveryFilters]):
    """The delivery log, newest first: status, attempts, last status code, latency and
    error; `status` and `event_type` narrow it."""
    endpoint = webhook_get_for_admin(member=request.member, webhook_id=webhookId)
    return deliveries_list(endpoint=endpoint, status=filters.status, event_type=filters.event_type)


@router.get(
    "/{webhookId}/deliveries/{deliveryId}", response={200: DeliveryDetailOut, **errors(403, 404)}
)
def webhooks_delivery_get(request: AuthedRequest, webhookId: int, deliveryId: int):
    """One delivery with the body sent and every attempt."""
    endpoint = webhook_get_for_admin(member=request.member, webhook_id=webhookId)
    return delivery_get(endpoint=endpoint, delivery_id=deliveryId)


@router.post(
    "/{webhookId}/deliveries/{deliveryId}/redeliver",
    response={202: DeliveryOut, **errors(403, 404, 409)},
)
def webhooks_redeliver(request: AuthedRequest, webhookId: int, deliveryId: int):
    """Send a delivery again (same body and event id) with a fresh day of retries."""
    endpoint = webhook_get_for_admin(member=request.member, webhook_id=webhookId)
    delivery = delivery_get(endpoint=endpoint, delivery_id=deliveryId)
    redelivered = delivery_redeliver(delivery=delivery, endpoint=endpoint, actor=request.member)
    return Status(202, redelivered)
