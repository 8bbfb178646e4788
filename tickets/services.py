"""Writes on tickets: create, update, status, delete, links and watchers.

Each is one transaction that validates everything first (422 listing every problem),
changes the rows, records field history, an audit entry and an outbox event.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.members.models import Membership
from eventlog.audit import audit_record
from eventlog.outbox import outbox_emit
from eventlog.record import change_record
from saas.errors import Conflict, Forbidden, Invalid, NotFound, PreconditionFailed
from tickets import fields as f
from tickets.access import (
    project_can_administer,
    project_require_write,
    tickets_visible_to,
)
from tickets.history import FieldChange, changes_as_audit, history_record
from tickets.models import Attachment, Project, Ticket, TicketLink, Watcher
from tickets.rank import project_last_rank, rank_after

EDITABLE_FIELDS = (
    "summary",
    "description",
    "type",
    "priority",
    "assignee",
    "reporter",
    "labels",
    "components",
    "fix_versions",
    "due_date",
    "story_points",
    "original_estimate",
    "remaining_estimate",
    "resolution",
    "parent",
    "epic",
    "custom_fields",
)


def _name(obj: Any) -> str | None:
    if obj is None:
        return None
    return getattr(obj, "key", None) or getattr(obj, "name", None) or str(obj)


def _ref_change(name: str, old: Any, new: Any) -> FieldChange | None:
    old_id, new_id = getattr(old, "pk", None), getattr(new, "pk", None)
    if old_id == new_id:
        return None
    return FieldChange(name, _name(old), _name(new), old_id, new_id)


def _value_change(
    name: str, old: Any, new: Any, show: Callable[[Any], str | None] = str
) -> FieldChange | None:
    if old == new:
        return None
    fmt = lambda v: None if v in (None, "", []) else show(v)  # noqa: E731
    return FieldChange(name, fmt(old), fmt(new))


def _join(values: Any) -> str:
    return " ".join(str(_name(v)) for v in values)


@dataclass
class _Plan:
    """What a create or update will write, worked out before anything is written."""

    ticket: Ticket
    changes: list[FieldChange] = field(default_factory=list)
    update_fields: set[str] = field(default_factory=set)
    m2m: dict[str, list[Any]] = field(default_factory=dict)

    def set(self, attr: str, value: Any, change: FieldChange | None) -> None:
        if change is None:
            return
        setattr(self.ticket, attr, value)
        self.update_fields.add(attr.removesuffix("_id"))
        self.changes.append(change)


def _plan(
    *, ticket: Ticket, project: Project, actor: Membership, data: Mapping[str, Any], creating: bool
) -> _Plan:
    """Validate `data` against `ticket` and work out the changes; 422 lists every error."""
    plan = _Plan(ticket=ticket)
    errors = f.FieldErrorList()
    visible = tickets_visible_to(actor)
    for name in sorted(set(data) - set(EDITABLE_FIELDS)):
        errors.add(name, "Unknown or read-only field.")

    def summary() -> None:
        value = data["summary"]
        if not isinstance(value, str) or not value.strip():
            raise f.FieldError("summary", "Summary is required.")
        if len(value.strip()) > 255:
            raise f.FieldError("summary", "Summary must be at most 255 characters.")
        plan.set("summary", value.strip(), _value_change("summary", ticket.summary, value.strip()))

    def description() -> None:
        value = data["description"] or ""
        if not isinstance(value, str) or len(value) > 100_000:
            raise f.FieldError("description", "Description must be text (at most 100000).")
        plan.set("description", value, _value_change("description", ticket.description, value))

    def issue_type() -> None:
        new = f.issue_type_resolve(data["type"], project=project)
        plan.set("issue_type", new, _ref_change("type", _current(ticket, "issue_type"), new))

    def priority() -> None:
        new = f.priority_resolve(data["priority"])
        plan.set("priority", new, _ref_change("priority", _current(ticket, "priority"), new))

    def user_field(name: str) -> Callable[[], None]:
        def resolve() -> None:
            new = f.member_user_resolve(data[name], field=name)
            plan.set(name, new, _ref_change(name, _current(ticket, name), new))

        return resolve

    def resolution() -> None:
        new = f.resolution_resolve(data["resolution"])
        plan.set("resolution", new, _ref_change("resolution", _current(ticket, "resolution"), new))

    def labels() -> None:
        new = f.labels_clean(data["labels"])
        plan.set("labels", new, _value_change("labels", list(ticket.labels), new, " ".join))

    def m2m(name: str, resolver: Callable[..., list[Any]]) -> Callable[[], None]:
        def resolve() -> None:
            new = resolver(data[name], project=project)
            old = [] if creating else list(getattr(ticket, name).all())
            if {o.pk for o in old} != {n.pk for n in new}:
                plan.m2m[name] = new
                plan.changes.append(FieldChange(name, _join(old) or None, _join(new) or None))

        return resolve

    def due_date() -> None:
        new = f.date_clean(data["due_date"], field="due_date")
        plan.set(
            "due_date",
            new,
            _value_change("due_date", ticket.due_date, new, lambda d: d.isoformat()),
        )

    def story_points() -> None:
        new = f.story_points_clean(data["story_points"])
        plan.set(
            "story_points",
            new,
            _value_change("story_points", ticket.story_points, new, lambda d: f"{d.normalize():f}"),
        )

    def estimate(name: str) -> Callable[[], None]:
        def resolve() -> None:
            new = f.duration_clean(data[name], field=name)
            plan.set(name, new, _value_change(name, getattr(ticket, name), new, f.duration_format))

        return resolve

    def parent() -> None:
        new = f.ticket_ref_resolve(data["parent"], field="parent", visible=visible)
        if new is not None:
            if new.pk == ticket.pk:
                raise f.FieldError("parent", "A ticket cannot be its own parent.")
            if new.project_id != project.pk:
                raise f.FieldError("parent", "A sub-task's parent must be in the same project.")
            if new.parent_id is not None:
                raise f.FieldError("parent", f"{new.key} is a sub-task; it cannot have sub-tasks.")
        plan.set("parent", new, _ref_change("parent", _current(ticket, "parent"), new))

    def epic() -> None:
        new = f.ticket_ref_resolve(data["epic"], field="epic", visible=visible)
        if new is not None:
            if new.pk == ticket.pk:
                raise f.FieldError("epic", "A ticket cannot be its own epic.")
            if not new.issue_type.is_epic:
                raise f.FieldError("epic", f"{new.key} is not an epic.")
        plan.set("epic", new, _ref_change("epic", _current(ticket, "epic"), new))

    def custom_fields() -> None:
        new = f.custom_fields_clean(
            data["custom_fields"], project=project, current=ticket.custom_fields
        )
        old = ticket.custom_fields or {}
        if new != old:
            for key in sorted(set(old) | set(new)):
                if old.get(key) != new.get(key):
                    plan.changes.append(
                        FieldChange(f"customfield_{key}", _show(old.get(key)), _show(new.get(key)))
                    )
            ticket.custom_fields = new
            plan.update_fields.add("custom_fields")

    steps: dict[str, Callable[[], None]] = {
        "summary": summary,
        "description": description,
        "type": issue_type,
        "priority": priority,
        "assignee": user_field("assignee"),
        "reporter": user_field("reporter"),
        "resolution": resolution,
        "labels": labels,
        "components": m2m("components", f.components_resolve),
        "fix_versions": m2m("fix_versions", f.versions_resolve),
        "due_date": due_date,
        "story_points": story_points,
        "original_estimate": estimate("original_estimate"),
        "remaining_estimate": estimate("remaining_estimate"),
        "parent": parent,
        "epic": epic,
        "custom_fields": custom_fields,
    }
    for name, step in steps.items():
        if name in data:
            errors.attempt(step)
    if creating and "summary" not in data:
        errors.add("summary", "Summary is required.")
    if not errors.items:
        errors.attempt(_check_hierarchy, plan.ticket)
    errors.raise_if_any("The ticket has invalid fields.")
    return plan


def _show(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def _current(ticket: Ticket, attr: str) -> Any:
    """The related object, or None when unset (without a query for an unsaved ticket)."""
    if getattr(ticket, f"{attr}_id", None) is None:
        return None
    return getattr(ticket, attr)


def _check_hierarchy(ticket: Ticket) -> None:
    is_subtask = ticket.issue_type.is_subtask
    if is_subtask and ticket.parent_id is None:
        raise f.FieldError("parent", "A sub-task needs a parent.")
    if not is_subtask and ticket.parent_id is not None:
        raise f.FieldError("parent", "Only sub-tasks have a parent; use an epic or a link.")
    if ticket.issue_type.is_epic and ticket.epic_id is not None:
        raise f.FieldError("epic", "An epic cannot belong to another epic.")


def _number_allocate(project: Project) -> int:
    """Next ticket number of the project: the row lock makes concurrent creates queue
    here, and a rollback gives the number back, so keys have no gaps."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Project._meta.db_table} SET ticket_counter = ticket_counter + 1 "  # noqa: S608
            "WHERE id = %s RETURNING ticket_counter",
            [project.pk],
        )
        row = cursor.fetchone()
    if row is None:  # deleted while this ticket was being written
        raise NotFound(f"Project {project.key} no longer exists.", code="project_not_found")
    return int(row[0])


def initial_status_for(*, project: Project, issue_type: Any) -> Any:
    from tickets.workflow_engine import initial_status_for as workflow_initial_status

    return workflow_initial_status(project=project, issue_type=issue_type)


@transaction.atomic
def ticket_create(*, project: Project, actor: Membership, data: Mapping[str, Any]) -> Ticket:
    """Create a ticket with the next key of `project`."""
    project_require_write(member=actor, project=project)
    now = timezone.now()
    ticket = Ticket(
        project=project,
        creator_id=actor.user_id,
        reporter_id=actor.user_id,
        created_at=now,
        updated_at=now,
    )
    data = dict(data)
    data.setdefault("type", "Task")
    if data.get("priority") is None:
        ticket.priority = f.priority_default()
        data.pop("priority", None)
    if "assignee" not in data and project.default_assignee_id:
        data["assignee"] = project.default_assignee_id
    plan = _plan(ticket=ticket, project=project, actor=actor, data=data, creating=True)
    ticket.status = initial_status_for(project=project, issue_type=ticket.issue_type)
    ticket.number = _number_allocate(project)
    ticket.key = f"{project.key}-{ticket.number}"
    # After the project's last card; the numbering above holds the project row lock.
    ticket.rank = rank_after(project_last_rank(project.pk))
    ticket.save(force_insert=True)
    for name, items in plan.m2m.items():
        getattr(ticket, name).set(items)
    initial = [
        FieldChange("status", None, ticket.status.name, None, ticket.status_id),
        FieldChange("type", None, ticket.issue_type.name, None, ticket.issue_type_id),
        FieldChange("priority", None, ticket.priority.name, None, ticket.priority_id),
    ]
    if ticket.assignee_id:
        initial.append(
            FieldChange("assignee", None, _name(ticket.assignee), None, ticket.assignee_id)
        )
    history_record(ticket=ticket, actor=actor, changes=initial, at=now)
    Watcher.objects.bulk_create(
        [
            Watcher(ticket=ticket, user_id=uid)
            for uid in {actor.user_id, ticket.reporter_id, ticket.assignee_id}
            if uid
        ],
        ignore_conflicts=True,
    )
    change_record(
        "ticket.created",
        actor=actor,
        target_type="ticket",
        target_id=ticket.key,
        changes=changes_as_audit(plan.changes),
        payload={"key": ticket.key, "project": project.key},
        aggregate_id=ticket.pk,
    )
    return ticket


def ticket_lock(ticket: Ticket, expected_version: int | None) -> Ticket:
    """Lock the ticket's row; 412 when the caller saw an older version; 404 when it was
    deleted meanwhile.

    The lock is taken on the bare row first: locking through joins would let
    PostgreSQL re-check the joins against the old related rows after a concurrent
    update (EvalPlanQual) and drop the ticket from the result."""
    if not Ticket.objects.select_for_update().filter(pk=ticket.pk).exists():
        raise NotFound(f"Ticket {ticket.key} no longer exists.", code="ticket_not_found")
    # Few joins: planning a ten-way join cost more than the rest of a transition
    # (bench/transitions.py); other related rows load only when a change needs them.
    locked = Ticket.objects.select_related("project", "issue_type", "status").get(pk=ticket.pk)
    if expected_version is not None and locked.version != expected_version:
        raise PreconditionFailed(
            f"{locked.key} was changed by someone else (version {locked.version}, "
            f"you sent {expected_version}).",
            details={"current_version": locked.version},
        )
    return locked


def _save(ticket: Ticket, plan_fields: set[str], now: Any) -> None:
    ticket.version += 1
    ticket.updated_at = now
    ticket.save(update_fields=sorted({*plan_fields, "version", "updated_at"}))


@transaction.atomic
def ticket_update(
    *,
    ticket: Ticket,
    actor: Membership,
    data: Mapping[str, Any],
    expected_version: int | None = None,
) -> Ticket:
    """Change fields of a ticket; `expected_version` (If-Match) guards lost updates."""
    ticket = ticket_lock(ticket, expected_version)
    project_require_write(member=actor, project=ticket.project)
    plan = _plan(ticket=ticket, project=ticket.project, actor=actor, data=data, creating=False)
    if not plan.changes:
        return ticket
    now = timezone.now()
    _save(ticket, plan.update_fields, now)
    for name, items in plan.m2m.items():
        getattr(ticket, name).set(items)
    history_record(ticket=ticket, actor=actor, changes=plan.changes, at=now)
    if "assignee" in plan.update_fields and ticket.assignee_id:
        Watcher.objects.get_or_create(ticket=ticket, user_id=ticket.assignee_id)
    change_record(
        "ticket.updated",
        actor=actor,
        target_type="ticket",
        target_id=ticket.key,
        changes=changes_as_audit(plan.changes),
        payload={
            "key": ticket.key,
            "fields": [c.field for c in plan.changes],
            "version": ticket.version,
        },
        aggregate_id=ticket.pk,
    )
    return ticket


def ticket_set_status(
    *, ticket: Ticket, actor: Membership, status_ref: Any, expected_version: int | None = None
) -> Ticket:
    """Move a ticket to a status through the one workflow transition that leads there."""
    from tickets.workflow_engine import ticket_move_to_status

    return ticket_move_to_status(
        ticket=ticket, actor=actor, status_ref=status_ref, expected_version=expected_version
    )


@transaction.atomic
def ticket_delete(*, ticket: Ticket, actor: Membership) -> None:
    """Delete a ticket (project administrators); its sub-tasks go with it."""
    if not project_can_administer(member=actor, project=ticket.project):
        raise Forbidden(f"Only administrators of {ticket.project.key} can delete tickets.")
    key, pk = ticket.key, ticket.pk
    subtasks = list(Ticket.objects.filter(parent_id=pk).values_list("key", flat=True))
    stored_files = list(
        Attachment.objects.filter(Q(ticket_id=pk) | Q(ticket__parent_id=pk)).values_list(
            "storage_key", flat=True
        )
    )
    Ticket.objects.filter(pk=pk).delete()
    audit_record(
        actor=actor,
        action="ticket.deleted",
        target_type="ticket",
        target_id=key,
        changes={"summary": [ticket.summary, None], "subtasks": [subtasks, None]},
    )
    # The files go once the rows are gone for good: see tickets.consumers.
    outbox_emit(
        "ticket.deleted",
        aggregate_type="ticket",
        aggregate_id=pk,
        actor=actor,
        payload={"key": key, "subtasks": subtasks, "storage_keys": stored_files},
    )


@transaction.atomic
def ticket_link_add(
    *, ticket: Ticket, actor: Membership, link_type: str, target_ref: Any, outward: bool = True
) -> TicketLink:
    """Link `ticket` to another visible ticket. `outward=False` reads the type from the
    other side (e.g. "is blocked by")."""
    project_require_write(member=actor, project=ticket.project)
    if link_type not in TicketLink.Type.values:
        raise Invalid(
            f"Unknown link type {link_type!r}.", details={"allowed": TicketLink.Type.values}
        )
    try:
        other = f.ticket_ref_resolve(target_ref, field="target", visible=tickets_visible_to(actor))
    except f.FieldError as exc:
        raise Invalid(exc.message, details=[exc.as_detail()]) from exc
    if other is None or other.pk == ticket.pk:
        raise Invalid("A ticket cannot be linked to itself.")
    source, target = (ticket, other) if outward else (other, ticket)
    try:
        with transaction.atomic():
            link = TicketLink.objects.create(
                source=source, target=target, type=link_type, created_by_id=actor.user_id
            )
    except IntegrityError as exc:
        raise Conflict(f"{source.key} already {link_type} {target.key}.") from exc
    label = link.get_type_display()
    history_record(
        ticket=source,
        actor=actor,
        changes=[FieldChange("link", None, f"{label} {target.key}", None, target.pk)],
    )
    history_record(
        ticket=target,
        actor=actor,
        changes=[
            FieldChange(
                "link", None, f"{TicketLink.INVERSE[link_type]} {source.key}", None, source.pk
            )
        ],
    )
    change_record(
        "ticket.linked",
        actor=actor,
        target_type="ticket",
        target_id=source.key,
        changes={"link": [None, f"{link_type} {target.key}"]},
        payload={"source": source.key, "target": target.key, "type": link_type},
        aggregate_id=source.pk,
    )
    return link


@transaction.atomic
def ticket_link_remove(*, ticket: Ticket, actor: Membership, link_id: int) -> None:
    project_require_write(member=actor, project=ticket.project)
    link = (
        TicketLink.objects.select_related("source", "target")
        .filter(pk=link_id)
        .filter(source=ticket)
        .first()
        or TicketLink.objects.select_related("source", "target")
        .filter(pk=link_id, target=ticket)
        .first()
    )
    if link is None:
        raise NotFound("No such link on this ticket.")
    link.delete()
    history_record(
        ticket=link.source,
        actor=actor,
        changes=[
            FieldChange(
                "link", f"{link.get_type_display()} {link.target.key}", None, link.target_id, None
            )
        ],
    )
    history_record(
        ticket=link.target,
        actor=actor,
        changes=[
            FieldChange(
                "link",
                f"{TicketLink.INVERSE[link.type]} {link.source.key}",
                None,
                link.source_id,
                None,
            )
        ],
    )
    change_record(
        "ticket.unlinked",
        actor=actor,
        target_type="ticket",
        target_id=link.source.key,
        changes={"link": [f"{link.type} {link.target.key}", None]},
        payload={"source": link.source.key, "target": link.target.key, "type": link.type},
        aggregate_id=link.source_id,
    )


@transaction.atomic
def watcher_add(*, ticket: Ticket, actor: Membership, user_ref: Any) -> Watcher:
    """Watch a ticket: yourself, or (project administrators) someone else."""
    try:
        user = f.member_user_resolve(user_ref, field="user") if user_ref is not None else None
    except f.FieldError as exc:
        raise Invalid(exc.message, details=[exc.as_detail()]) from exc
    user_id = user.pk if user else actor.user_id
    if user_id != actor.user_id and not project_can_administer(
        member=actor, project=ticket.project
    ):
        raise Forbidden("Only project administrators can add other watchers.")
    if user_id != actor.user_id:
        target = Membership.objects.get(user_id=user_id)
        if not tickets_visible_to(target).filter(pk=ticket.pk).exists():
            raise Invalid("That member cannot see this ticket.")
    watcher, created = Watcher.objects.get_or_create(ticket=ticket, user_id=user_id)
    if created:
        change_record(
            "ticket.watcher_added",
            actor=actor,
            target_type="ticket",
            target_id=ticket.key,
            changes={"watcher": [None, user_id]},
            payload={"key": ticket.key, "user_id": user_id},
            aggregate_id=ticket.pk,
        )
    return watcher


@transaction.atomic
def watcher_remove(*, ticket: Ticket, actor: Membership, user_id: int) -> None:
    if user_id != actor.user_id and not project_can_administer(
        member=actor, project=ticket.project
    ):
        raise Forbidden("Only project administrators can remove other watchers.")
    deleted, _ = Watcher.objects.filter(ticket=ticket, user_id=user_id).delete()
    if not deleted:
        raise NotFound("That member is not watching this ticket.")
    change_record(
        "ticket.watcher_removed",
        actor=actor,
        target_type="ticket",
        target_id=ticket.key,
        changes={"watcher": [user_id, None]},
        payload={"key": ticket.key, "user_id": user_id},
        aggregate_id=ticket.pk,
    )
