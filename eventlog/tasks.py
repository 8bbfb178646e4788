from celery import shared_task
from django_tenants.utils import schema_context

from eventlog.dispatch import outbox_dispatch_pending
from saas.tenancy import fan_out_per_tenant


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=8)
def outbox_dispatch(schema_name: str) -> int:
    """Dispatch the pending outbox events of one tenant."""
    with schema_context(schema_name):
        total = 0
        while (count := outbox_dispatch_pending()) > 0:
            total += count
        return total


@shared_task(acks_late=True)
def outbox_sweep_all() -> int:
    """Beat: fan out one dispatch per tenant, catching events whose task was lost."""
    return fan_out_per_tenant(outbox_dispatch)
