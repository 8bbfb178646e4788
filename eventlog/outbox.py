"""The transactional outbox: events are rows written with the change; after commit a
Celery task hands them to the consumers registered for their kind."""

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from django.db import connection, transaction

from eventlog.models import OutboxEvent
from saas.tenancy import current_schema

Consumer = Callable[[OutboxEvent], None]
_consumers: dict[str, list[Consumer]] = defaultdict(list)


def outbox_consumer(*kinds: str) -> Callable[[Consumer], Consumer]:
    """Register a consumer for event kinds (`"*"` for all). Consumers must be idempotent:
    an event can be handed over more than once if a worker dies mid-dispatch."""

    def register(func: Consumer) -> Consumer:
        for kind in kinds:
            _consumers[kind].append(func)
        return func

    return register


def outbox_consumers_for(kind: str) -> list[Consumer]:
    return [*_consumers.get(kind, []), *_consumers.get("*", [])]


def outbox_emit(
    kind: str,
    *,
    aggregate_type: str,
    aggregate_id: object,
    actor: Any = None,
    payload: dict[str, Any] | None = None,
) -> OutboxEvent:
    """Write an event in the current transaction; dispatch is scheduled for after commit."""
    user = getattr(actor, "user", actor)
    event = OutboxEvent.objects.create(
        kind=kind,
        aggregate_type=aggregate_type,
        aggregate_id=str(aggregate_id),
        actor_id=getattr(user, "pk", None),
        payload=payload or {},
    )
    _dispatch_after_commit(current_schema())
    return event


def _dispatch_after_commit(schema_name: str) -> None:
    """One dispatch task per tenant and transaction, however many events it wrote.
    (A callback registered by a rolled-back savepoint is no longer in the list.)"""
    for entry in connection.run_on_commit:
        func = entry[1]
        if getattr(func, "outbox_schema", None) == schema_name and not getattr(
            func, "outbox_sent", False
        ):
            return

    def enqueue() -> None:
        from eventlog.tasks import outbox_dispatch

        enqueue.outbox_sent = True  # type: ignore[attr-defined]
        outbox_dispatch.delay(schema_name)

    enqueue.outbox_schema = schema_name  # type: ignore[attr-defined]
    transaction.on_commit(enqueue)
