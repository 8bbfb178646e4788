from celery import shared_task
from django_tenants.utils import schema_context

from notifications.webhooks.delivery import deliveries_due_ids, webhook_delivery_attempt
from saas.tenancy import fan_out_per_tenant


@shared_task(acks_late=True)
def webhook_delivery_send(schema_name: str, delivery_id: int) -> str:
    """Send one delivery if it is due (a no-op when sent, busy or not due yet)."""
    with schema_context(schema_name):
        return webhook_delivery_attempt(delivery_id=delivery_id)


@shared_task(acks_late=True)
def webhooks_send_due(schema_name: str) -> int:
    """Enqueue the deliveries of one tenant that are due: retries past their backoff
    and first sends whose task was lost."""
    with schema_context(schema_name):
        ids = deliveries_due_ids()
    for delivery_id in ids:
        webhook_delivery_send.delay(schema_name, delivery_id)
    return len(ids)


@shared_task(acks_late=True)
def webhooks_sweep_all() -> int:
    """Beat: fan out one due-deliveries sweep per active tenant."""
    return fan_out_per_tenant(webhooks_send_due)
