"""Append-only audit records, written inside the caller's transaction."""

from typing import Any

from django.db import models

from eventlog.models import AuditEntry
from saas.context import request_context


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, models.Model):
        return value.pk
    return str(value)


def audit_record(
    *,
    actor: Any,
    action: str,
    target_type: str,
    target_id: object,
    changes: dict[str, Any] | None = None,
) -> AuditEntry:
    """Record `actor` doing `action` to a target; `changes` maps field -> [before, after].

    `actor` is a Membership, a User, or None for the system.
    """
    user = getattr(actor, "user", actor)
    ctx = request_context()
    return AuditEntry.objects.create(
        actor_id=getattr(user, "pk", None),
        actor_email=getattr(user, "email", "") or "",
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        changes=_jsonable(changes or {}),
        ip=ctx.ip,
        request_id=ctx.request_id,
    )


def field_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """`{field: [old, new]}` for the fields whose values differ."""
    return {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}
