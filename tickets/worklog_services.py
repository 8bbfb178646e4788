"""Worklogs: time logged on a ticket, and the ticket's time tracking kept in step.

`Ticket.time_spent` is the sum of the ticket's worklogs and the remaining estimate is
adjusted as Jira's "auto adjust" does (reduced by the time logged, never below 0;
given back when a worklog shrinks or goes), or left alone, or set to a new value.
Both change in the same transaction as the worklog, with `F()` on the locked row,
and each change is a history row. The author or a project administrator edits and
deletes a worklog.
"""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.db.models import Case, F, QuerySet, Value, When
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts.members.models import Membership
from eventlog.outbox import outbox_emit
from eventlog.record import change_record
from saas.errors import Forbidden, Invalid, NotFound
from saas.refs import db_id_or_none
from tickets import fields as f
from tickets.access import project_can_administer, project_require_write
from tickets.history import FieldChange, history_record
from tickets.models import Ticket, Worklog

ADJUST = ("auto", "leave", "new")


def worklogs_of(ticket: Ticket) -> QuerySet[Worklog]:
    return (
        Worklog.objects.filter(ticket=ticket).select_related("author").order_by("started_at", "id")
    )


def worklog_get(*, ticket: Ticket, worklog_id: Any) -> Worklog:
    """A worklog of a ticket the caller can already see; else 404."""
    pk = db_id_or_none(str(worklog_id))
    worklog = worklogs_of(ticket).filter(pk=pk).first() if pk else None
    if worklog is None:
        raise NotFound(f"Worklog {worklog_id} is not on {ticket.key}.", code="worklog_not_found")
    return worklog


def _seconds(value: Any, *, field: str, required: bool) -> int | None:
    try:
        seconds = f.duration_clean(value, field=field)
    except f.FieldError as exc:
        raise Invalid(exc.message, details=[exc.as_detail()]) from exc
    if required and not seconds:
        raise Invalid(
            "time_spent must be more than 0.",
            details=[{"field": field, "message": "time_spent must be more than 0."}],
        )
    return seconds


def _when(value: datetime | None) -> datetime:
    if value is None:
        return timezone.now()
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _adjust(
    ticket: Ticket, delta: int, mode: str, new_estimate: Any, actor: Membership
) -> list[FieldChange]:
    """Apply `delta` seconds logged to the (locked) ticket; the history changes."""
    if mode not in ADJUST:
        raise Invalid(
            f"adjust_estimate must be one of {', '.join(ADJUST)}.",
            details=[{"field": "adjust_estimate", "message": "auto, leave or new."}],
        )
    updates: dict[str, Any] = {
        "time_spent": F("time_spent") + delta,
        "version": F("version") + 1,
        "updated_at": timezone.now(),
    }
    if mode == "auto" and delta:
        updates["remaining_estimate"] = Case(
            When(remaining_estimate__isnull=True, then=Value(None)),
            default=Greatest(F("remaining_estimate") - delta, Value(0)),
        )
    elif mode == "new":
        if new_estimate is None:
            raise Invalid(
                'adjust_estimate "new" needs new_estimate.',
                details=[{"field": "new_estimate", "message": "new_estimate is required."}],
            )
        updates["remaining_estimate"] = _seconds(new_estimate, field="new_estimate", required=False)
    before = (ticket.time_spent, ticket.remaining_estimate)
    Ticket.objects.filter(pk=ticket.pk).update(**updates)
    ticket.refresh_from_db(fields=["time_spent", "remaining_estimate", "version", "updated_at"])
    changes = []
    if before[0] != ticket.time_spent:
        changes.append(
            FieldChange(
                "time_spent", f.duration_format(before[0]), f.duration_format(ticket.time_spent)
            )
        )
    if before[1] != ticket.remaining_estimate:
        changes.append(
            FieldChange(
                "remaining_estimate",
                f.duration_format(before[1]),
                f.duration_format(ticket.remaining_estimate),
            )
        )
    history_record(ticket=ticket, actor=actor, changes=changes, at=ticket.updated_at)
    if changes:
        outbox_emit(
            "ticket.updated",
            aggregate_type="ticket",
            aggregate_id=ticket.pk,
            actor=actor,
            payload={
                "key": ticket.key,
                "fields": [c.field for c in changes],
                "version": ticket.version,
            },
        )
    return changes


def _lock(ticket: Ticket) -> Ticket:
    locked = (
        Ticket.objects.select_for_update(of=("self",))
        .select_related("project")
        .filter(pk=ticket.pk)
    ).first()
    if locked is None:
        raise NotFound(f"Ticket {ticket.key} no longer exists.", code="ticket_not_found")
    return locked


def _record(
    action: str, worklog: Worklog, ticket: Ticket, actor: Membership, changes: dict
) -> None:
    change_record(
        action,
        actor=actor,
        target_type="worklog",
        target_id=worklog.pk,
        changes=changes,
        payload={
            "worklog_id": worklog.pk,
            "key": ticket.key,
            "time_spent": worklog.time_spent,
            "author_id": worklog.author_id,
        },
    )


@transaction.atomic
def worklog_create(*, ticket: Ticket, actor: Membership, data: Mapping[str, Any]) -> Worklog:
    """Log time on a ticket (anyone who may edit its tickets)."""
    ticket = _lock(ticket)
    project_require_write(member=actor, project=ticket.project)
    seconds = _seconds(data.get("time_spent"), field="time_spent", required=True)
    assert seconds is not None
    now = timezone.now()
    worklog = Worklog.objects.create(
        ticket=ticket,
        author_id=actor.user_id,
        time_spent=seconds,
        started_at=_when(data.get("started_at")),
        comment=data.get("comment") or "",
        created_at=now,
        updated_at=now,
    )
    _adjust(ticket, seconds, data.get("adjust_estimate") or "auto", data.get("new_estimate"), actor)
    _record("worklog.created", worklog, ticket, actor, {"time_spent": [None, seconds]})
    return worklog


def _require_owner(worklog: Worklog, ticket: Ticket, actor: Membership) -> None:
    project_require_write(member=actor, project=ticket.project)
    if worklog.author_id != actor.user_id and not project_can_administer(
        member=actor, project=ticket.project
    ):
        raise Forbidden("Only the author or a project administrator changes a worklog.")


@transaction.atomic
def worklog_update(*, worklog: Worklog, actor: Membership, data: Mapping[str, Any]) -> Worklog:
    """Change the time, start or comment of a worklog; the estimate follows the change."""
    ticket = _lock(worklog.ticket)
    _require_owner(worklog, ticket, actor)
    worklog = Worklog.objects.select_for_update().get(pk=worklog.pk)
    changes: dict[str, list[Any]] = {}
    if data.get("time_spent") is not None:
        seconds = _seconds(data["time_spent"], field="time_spent", required=True)
        if seconds != worklog.time_spent:
            changes["time_spent"] = [worklog.time_spent, seconds]
    if data.get("started_at") is not None:
        started = _when(data["started_at"])
        if started != worklog.started_at:
            changes["started_at"] = [worklog.started_at.isoformat(), started.isoformat()]
            worklog.started_at = started
    if data.get("comment") is not None and data["comment"] != worklog.comment:
        changes["comment"] = [worklog.comment, data["comment"]]
        worklog.comment = data["comment"]
    mode = data.get("adjust_estimate") or "auto"
    if not changes and mode != "new":
        return worklog
    delta = 0
    if "time_spent" in changes:
        delta = changes["time_spent"][1] - worklog.time_spent
        worklog.time_spent = changes["time_spent"][1]
    worklog.updated_at = timezone.now()
    worklog.save(update_fields=["time_spent", "started_at", "comment", "updated_at"])
    if delta or mode == "new":
        _adjust(ticket, delta, mode, data.get("new_estimate"), actor)
    _record("worklog.updated", worklog, ticket, actor, changes)
    return worklog


@transaction.atomic
def worklog_delete(
    *, worklog: Worklog, actor: Membership, adjust_estimate: str = "auto", new_estimate: Any = None
) -> None:
    """Delete a worklog; its time leaves the ticket's total (and, with "auto", goes
    back to the remaining estimate)."""
    ticket = _lock(worklog.ticket)
    _require_owner(worklog, ticket, actor)
    deleted, _ = Worklog.objects.filter(pk=worklog.pk).delete()
    if not deleted:
        raise NotFound(f"Worklog {worklog.pk} is not on {ticket.key}.", code="worklog_not_found")
    _adjust(ticket, -worklog.time_spent, adjust_estimate, new_estimate, actor)
    _record("worklog.deleted", worklog, ticket, actor, {"time_spent": [worklog.time_spent, None]})
