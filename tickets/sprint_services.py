"""Writes on sprints: plan, start, complete, and move tickets between sprints.

Every change of a ticket's sprint writes the append-only scope log (`SprintChange`),
the ticket's `SprintMembership`, a "sprint" history row (so JQL WAS/CHANGED work) and a
`ticket.updated` event. Starting records COMMITTED for every ticket in the sprint;
closing records COMPLETED (status category Done) or NOT_COMPLETED for each, and carries
the unfinished ones to the backlog or a future sprint (keeping the closed membership).
Project administrators manage sprints; anyone who may edit the project's tickets
plans them (adds and removes tickets).
"""

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from accounts.members.models import Membership
from accounts.policy import ADMIN_PROJECT
from eventlog.record import change_record
from saas.errors import Conflict, Forbidden, Invalid, NotFound
from saas.refs import db_id_or_none
from tickets import fields as f
from tickets.access import project_can_administer, project_require_write, tickets_visible_to
from tickets.history import FieldChange, history_record
from tickets.models import (
    Board,
    Project,
    Sprint,
    SprintChange,
    SprintMembership,
    Status,
    Ticket,
)

DEFAULT_LENGTH = timedelta(days=14)
OPEN = (Sprint.State.FUTURE, Sprint.State.ACTIVE)


def _require_manage(actor: Membership, project: Project) -> None:
    if not project_can_administer(member=actor, project=project):
        raise Forbidden(
            f"Only administrators of {project.key} manage its sprints.",
            details={"permission": ADMIN_PROJECT},
        )


def _event(kind: str, sprint: Sprint, actor: Membership, ticket_ids: Sequence[int]) -> None:
    change_record(
        kind,
        actor=actor,
        target_type="sprint",
        target_id=sprint.pk,
        changes={"state": [None, sprint.state]},
        payload={
            "sprint_id": sprint.pk,
            "name": sprint.name,
            "project": sprint.project.key,
            "ticket_ids": sorted(ticket_ids),
        },
    )


def _dates(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and end <= start:
        raise Invalid(
            "A sprint must end after it starts.",
            details=[{"field": "end", "message": "end must be after start."}],
        )


def _name(value: Any) -> str:
    name = value.strip() if isinstance(value, str) else ""
    if not name or len(name) > 255 or "\x00" in name:
        raise Invalid(
            "A sprint needs a name of 1-255 characters.",
            details=[{"field": "name", "message": "name must be 1-255 characters."}],
        )
    return name


@transaction.atomic
def sprint_create(
    *, project: Project, actor: Membership, data: Mapping[str, Any], board: Board | None = None
) -> Sprint:
    """A future sprint, last in the project's plan."""
    _require_manage(actor, project)
    _dates(data.get("start"), data.get("end"))
    if board is not None and board.project_id not in (None, project.pk):
        raise Invalid(
            f"Board {board.name!r} belongs to another project.",
            details=[{"field": "board", "message": "The board is not of this project."}],
        )
    Project.objects.select_for_update().filter(pk=project.pk).first()  # sequence in order
    top = Sprint.objects.filter(project=project).aggregate(top=Max("sequence"))["top"]
    sprint = Sprint.objects.create(
        project=project,
        board=board,
        name=_name(data.get("name")),
        goal=data.get("goal") or "",
        start_at=data.get("start"),
        end_at=data.get("end"),
        sequence=(top or 0) + 1,
    )
    _event("sprint.created", sprint, actor, [])
    return sprint


def _lock(sprint: Sprint) -> Sprint:
    locked = Sprint.objects.select_for_update().filter(pk=sprint.pk).first()
    if locked is None:
        raise NotFound(f"Sprint {sprint.pk} no longer exists.", code="sprint_not_found")
    locked.project = sprint.project
    return locked


@transaction.atomic
def sprint_update(*, sprint: Sprint, actor: Membership, data: Mapping[str, Any]) -> Sprint:
    """Rename, change the goal or dates (of a sprint not closed yet)."""
    _require_manage(actor, sprint.project)
    sprint = _lock(sprint)
    changes: dict[str, list[Any]] = {}
    if "name" in data and data["name"] is not None:
        changes["name"] = [sprint.name, _name(data["name"])]
    if "goal" in data and data["goal"] is not None:
        changes["goal"] = [sprint.goal, data["goal"]]
    for key, attr in (("start", "start_at"), ("end", "end_at")):
        if key in data and data[key] is not None:
            if sprint.state == Sprint.State.CLOSED:
                raise Conflict("The dates of a closed sprint cannot change.")
            changes[attr] = [getattr(sprint, attr), data[key]]
    start = changes.get("start_at", [None, sprint.start_at])[1]
    end = changes.get("end_at", [None, sprint.end_at])[1]
    _dates(start, end)
    if not changes:
        return sprint
    for attr, (_, new) in changes.items():
        setattr(sprint, attr, new)
    sprint.version += 1
    sprint.save(update_fields=[*changes, "version"])
    change_record(
        "sprint.updated",
        actor=actor,
        target_type="sprint",
        target_id=sprint.pk,
        changes={k: [str(v[0]), str(v[1])] for k, v in changes.items()},
        payload={"sprint_id": sprint.pk, "name": sprint.name, "project": sprint.project.key},
    )
    return sprint


@transaction.atomic
def sprint_delete(*, sprint: Sprint, actor: Membership) -> None:
    """Delete a future sprint; its tickets go back to the backlog."""
    _require_manage(actor, sprint.project)
    sprint = _lock(sprint)
    if sprint.state != Sprint.State.FUTURE:
        raise Conflict(f"Only future sprints can be deleted; {sprint.name} is {sprint.state}.")
    now = timezone.now()
    for ticket in _tickets_of(sprint):
        _history(ticket, actor, sprint, None, now)
    change_record(
        "sprint.deleted",
        actor=actor,
        target_type="sprint",
        target_id=sprint.pk,
        changes={"name": [sprint.name, None]},
        payload={"sprint_id": sprint.pk, "name": sprint.name, "project": sprint.project.key},
    )
    sprint.delete()


def _tickets_of(sprint: Sprint) -> list[Ticket]:
    return list(
        Ticket.objects.select_for_update(of=("self",))
        .filter(sprint=sprint)
        .select_related("status")
        .order_by("rank", "id")
    )


@transaction.atomic
def sprint_start(
    *,
    sprint: Sprint,
    actor: Membership,
    goal: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Sprint:
    """Start a future sprint (409 when the project has an active one); every ticket in
    it is COMMITTED with its story points and remaining estimate."""
    _require_manage(actor, sprint.project)
    sprint = _lock(sprint)
    if sprint.state != Sprint.State.FUTURE:
        raise Conflict(f"{sprint.name} is {sprint.state}; only a future sprint can start.")
    now = timezone.now()
    sprint.start_at = start or sprint.start_at or now
    sprint.end_at = end or sprint.end_at or sprint.start_at + DEFAULT_LENGTH
    _dates(sprint.start_at, sprint.end_at)
    if goal is not None:
        sprint.goal = goal
    sprint.state = Sprint.State.ACTIVE
    sprint.version += 1
    try:
        with transaction.atomic():
            sprint.save(update_fields=["state", "start_at", "end_at", "goal", "version"])
    except IntegrityError as exc:
        active = Sprint.objects.filter(project=sprint.project_id, state=Sprint.State.ACTIVE).first()
        raise Conflict(
            f"{sprint.project.key} already has an active sprint"
            + (f" ({active.name})." if active else "."),
            code="sprint_already_active",
        ) from exc
    tickets = _tickets_of(sprint)
    SprintChange.objects.bulk_create(
        SprintChange(
            sprint=sprint,
            ticket=t,
            kind=SprintChange.Kind.COMMITTED,
            points=t.story_points,
            estimate=t.remaining_estimate,
            actor_id=actor.user_id,
            at=now,
        )
        for t in tickets
    )
    _event("sprint.started", sprint, actor, [t.pk for t in tickets])
    return sprint


def _target_sprint(sprint: Sprint, move_open_to: Any) -> Sprint | None:
    if move_open_to in (None, "", "backlog"):
        return None
    pk = db_id_or_none(str(move_open_to))
    target = (
        Sprint.objects.select_for_update().filter(pk=pk, project_id=sprint.project_id).first()
        if pk
        else None
    )
    if target is None or target.state != Sprint.State.FUTURE:
        raise Invalid(
            'move_open_to must be "backlog" or a future sprint of the same project.',
            details=[{"field": "move_open_to", "message": f"{move_open_to!r} is not one."}],
        )
    target.project = sprint.project
    return target


@transaction.atomic
def sprint_complete(*, sprint: Sprint, actor: Membership, move_open_to: Any = "backlog") -> Sprint:
    """Close the active sprint: COMPLETED for tickets whose status is in the Done
    category, NOT_COMPLETED for the rest, which move to the backlog or to a future
    sprint (their membership of the closed sprint stays)."""
    _require_manage(actor, sprint.project)
    sprint = _lock(sprint)
    if sprint.state != Sprint.State.ACTIVE:
        raise Conflict(f"{sprint.name} is {sprint.state}; only the active sprint completes.")
    target = _target_sprint(sprint, move_open_to)
    now = timezone.now()
    tickets = _tickets_of(sprint)
    done = [t for t in tickets if t.status.category == Status.Category.DONE]
    open_ = [t for t in tickets if t.status.category != Status.Category.DONE]
    SprintChange.objects.bulk_create(
        SprintChange(
            sprint=sprint,
            ticket=t,
            kind=SprintChange.Kind.COMPLETED if t in done else SprintChange.Kind.NOT_COMPLETED,
            points=t.story_points,
            estimate=t.remaining_estimate,
            actor_id=actor.user_id,
            at=now,
        )
        for t in tickets
    )
    sprint.state = Sprint.State.CLOSED
    sprint.completed_at = now
    sprint.version += 1
    sprint.save(update_fields=["state", "completed_at", "version"])
    # Ticket.sprint points at open sprints only; done tickets stay members of this one.
    Ticket.objects.filter(pk__in=[t.pk for t in done]).update(sprint=None)
    for ticket in open_:
        _move(ticket, actor, sprint, target, now, leave_membership=False)
    _event("sprint.completed", sprint, actor, [t.pk for t in tickets])
    return sprint


def _history(
    ticket: Ticket, actor: Membership, old: Sprint | None, new: Sprint | None, now: datetime
) -> None:
    change = FieldChange(
        "sprint",
        old.name if old else None,
        new.name if new else None,
        old.pk if old else None,
        new.pk if new else None,
    )
    history_record(ticket=ticket, actor=actor, changes=[change], at=now)
    Ticket.objects.filter(pk=ticket.pk).update(
        sprint=new, version=ticket.version + 1, updated_at=now
    )
    ticket.version += 1
    ticket.sprint = new
    change_record(
        "ticket.updated",
        actor=actor,
        target_type="ticket",
        target_id=ticket.key,
        changes={"sprint": [change.from_value, change.to_value]},
        payload={"key": ticket.key, "fields": ["sprint"], "version": ticket.version},
        aggregate_id=ticket.pk,
    )


def _log(sprint: Sprint, ticket: Ticket, kind: str, actor: Membership, now: datetime) -> None:
    SprintChange.objects.create(
        sprint=sprint,
        ticket=ticket,
        kind=kind,
        points=ticket.story_points,
        estimate=ticket.remaining_estimate,
        actor_id=actor.user_id,
        at=now,
    )


def _move(
    ticket: Ticket,
    actor: Membership,
    old: Sprint | None,
    new: Sprint | None,
    now: datetime,
    *,
    leave_membership: bool = True,
) -> None:
    """Move one (locked) ticket from its open sprint `old` to `new` (None: backlog)."""
    if old is not None and leave_membership:
        SprintMembership.objects.filter(sprint=old, ticket=ticket).update(removed_at=now)
        _log(old, ticket, SprintChange.Kind.REMOVED, actor, now)
    if new is not None:
        membership, created = SprintMembership.objects.get_or_create(
            sprint=new, ticket=ticket, defaults={"added_at": now}
        )
        if not created and membership.removed_at is not None:
            membership.removed_at = None
            membership.save(update_fields=["removed_at"])
        _log(new, ticket, SprintChange.Kind.ADDED, actor, now)
    _history(ticket, actor, old, new, now)


def _tickets_resolve(actor: Membership, refs: Sequence[Any], field: str) -> list[Ticket]:
    visible = tickets_visible_to(actor)
    errors = f.FieldErrorList()
    found: dict[int, Ticket] = {}
    for i, ref in enumerate(refs):
        try:
            ticket = f.ticket_ref_resolve(ref, field=f"{field}.{i}", visible=visible)
        except f.FieldError as exc:
            errors.items.append(exc)
            continue
        if ticket is not None:
            found[ticket.pk] = ticket
    errors.raise_if_any("Some tickets do not exist or you cannot see them.")
    return list(found.values())


@transaction.atomic
def sprint_tickets_change(
    *, sprint: Sprint, actor: Membership, add: Sequence[Any], remove: Sequence[Any]
) -> Sprint:
    """Add tickets to an open sprint (taking them out of any other open sprint) and
    remove tickets from it (back to the backlog). ADDED/REMOVED are logged."""
    project_require_write(member=actor, project=sprint.project)
    sprint = _lock(sprint)
    if sprint.state == Sprint.State.CLOSED:
        raise Conflict(f"{sprint.name} is closed; its scope cannot change.")
    adding = _tickets_resolve(actor, add, "add")
    removing = _tickets_resolve(actor, remove, "remove")
    both = {t.pk for t in adding} & {t.pk for t in removing}
    problems = [
        {
            "field": "add",
            "message": f"{t.key} is in project {t.project.key}, not {sprint.project.key}.",
        }
        for t in adding
        if t.project_id != sprint.project_id
    ] + [
        {"field": "remove", "message": f"{t.key} is not in {sprint.name}."}
        for t in removing
        if t.sprint_id != sprint.pk
    ]
    if both:
        problems.append(
            {"field": "add", "message": "A ticket cannot be added and removed at once."}
        )
    if problems:
        raise Invalid("The sprint's tickets cannot change so.", details=problems)
    now = timezone.now()
    ids = sorted({t.pk for t in adding} | {t.pk for t in removing})
    locked = {
        t.pk: t
        for t in Ticket.objects.select_for_update(of=("self",))
        .select_related("sprint")
        .filter(pk__in=ids)
        .order_by("pk")
    }
    for ticket in adding:
        current = locked[ticket.pk]
        if current.sprint_id != sprint.pk:
            _move(current, actor, current.sprint, sprint, now)
    for ticket in removing:
        current = locked[ticket.pk]
        if current.sprint_id == sprint.pk:
            _move(current, actor, sprint, None, now)
    return sprint


def ticket_sprint_set(*, ticket: Ticket, actor: Membership, sprint: Sprint | None) -> Ticket:
    """Move one ticket to an open sprint of its project, or to the backlog."""
    if sprint is None:
        if ticket.sprint_id is None:
            return ticket
        current = Sprint.objects.select_related("project").get(pk=ticket.sprint_id)
        sprint_tickets_change(sprint=current, actor=actor, add=[], remove=[ticket.pk])
    else:
        sprint_tickets_change(sprint=sprint, actor=actor, add=[ticket.pk], remove=[])
    ticket.refresh_from_db()
    return ticket
