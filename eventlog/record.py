"""The audit entry and the outbox event of one write, named alike."""

from typing import Any

from eventlog.audit import audit_record
from eventlog.outbox import outbox_emit


def change_record(
    action: str,
    *,
    actor: Any,
    target_type: str,
    target_id: object,
    changes: dict[str, Any] | None = None,
    payload: dict[str, Any] | None = None,
    aggregate_id: object = None,
) -> None:
    """Record `action` in the audit log and emit it to the outbox, in the caller's
    transaction. `aggregate_id` defaults to `target_id` (they differ where the audit
    names a ticket by key and the event by id)."""
    audit_record(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        changes=changes,
    )
    outbox_emit(
        action,
        aggregate_type=target_type,
        aggregate_id=target_id if aggregate_id is None else aggregate_id,
        actor=actor,
        payload=payload,
    )
