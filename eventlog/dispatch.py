"""Hand pending outbox events to their consumers, at least once, in order."""

import logging

from django.db import transaction
from django.utils import timezone

from eventlog.models import OutboxEvent
from eventlog.outbox import outbox_consumers_for

logger = logging.getLogger(__name__)
BATCH = 100


def outbox_dispatch_pending(*, batch: int = BATCH) -> int:
    """Dispatch up to `batch` pending events of the current schema; returns how many.

    Rows are locked with SKIP LOCKED so concurrent workers share the work; an event
    whose consumer fails stays pending (attempts and the error are recorded).
    """
    dispatched = 0
    with transaction.atomic():
        events = list(
            OutboxEvent.objects.select_for_update(skip_locked=True)
            .filter(dispatched_at__isnull=True)
            .order_by("id")[:batch]
        )
        for event in events:
            try:
                with transaction.atomic():
                    for consumer in outbox_consumers_for(event.kind):
                        consumer(event)
            except Exception as exc:  # recorded and retried by the sweep
                logger.exception("outbox consumer failed for event %s", event.pk)
                OutboxEvent.objects.filter(pk=event.pk).update(
                    attempts=event.attempts + 1, last_error=repr(exc)[:2000]
                )
                continue
            OutboxEvent.objects.filter(pk=event.pk).update(
                dispatched_at=timezone.now(), attempts=event.attempts + 1, last_error=""
            )
            dispatched += 1
    return dispatched
