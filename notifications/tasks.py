"""Celery tasks of notification email. Each takes the tenant schema and is safe to run
twice: a delivery already sent is skipped, digests lock what they take."""

from datetime import timedelta

from celery import shared_task
from django_tenants.utils import schema_context

from notifications.digests import digests_queue_due
from notifications.emails import (
    MAX_ATTEMPTS,
    email_deliveries_stuck,
    email_delivery_send,
    email_retry_countdown,
)
from saas.tenancy import fan_out_per_tenant

# A queued delivery due for this long has lost its task (worker died, broker lost it).
STUCK_AFTER = timedelta(minutes=10)


@shared_task(bind=True, acks_late=True, max_retries=MAX_ATTEMPTS)
def email_delivery_send_task(self, schema_name: str, delivery_id: int):  # type: ignore[no-untyped-def]
    """Send one recorded email; transient SMTP failures retry with exponential
    backoff, permanent ones are recorded and not retried."""
    with schema_context(schema_name):
        outcome = email_delivery_send(delivery_id=delivery_id)
    if outcome.status == "retry":
        # throw=False: a worker publishes the retry and this run ends normally; eager
        # Celery (tests) runs the returned retry at once, where a raised one would
        # propagate instead.
        return self.retry(countdown=email_retry_countdown(outcome.attempts), throw=False)
    return outcome.status


@shared_task(acks_late=True)
def notifications_email_sweep(schema_name: str) -> dict[str, int]:
    """One tenant: queue the digests that are due and re-enqueue lost deliveries."""
    with schema_context(schema_name):
        digests = digests_queue_due()
        stuck = email_deliveries_stuck(grace=STUCK_AFTER)
    for delivery_id in stuck:
        email_delivery_send_task.delay(schema_name, delivery_id)
    return {"digests": digests, "requeued": len(stuck)}


@shared_task(acks_late=True)
def notifications_email_sweep_all() -> int:
    """Beat: fan out one email sweep per active tenant."""
    return fan_out_per_tenant(notifications_email_sweep)
