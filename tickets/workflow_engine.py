"""Running workflows: which transitions a member may take, and taking one.

A transition runs conditions (who), then applies the fields sent with it, then
validators (what must hold), then the status change and post-functions, all in one
transaction with history, audit and an outbox event.
"""

from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.members.models import Group, Membership
from accounts.policy import ADMIN_PROJECT, member_can
from eventlog.record import change_record
from saas.errors import Forbidden, Invalid, NotFound
from tickets import fields as f
from tickets.access import project_can_administer, project_require_write, project_role_of
from tickets.history import FieldChange, changes_as_audit, history_record
from tickets.models import (
    Comment,
    CustomField,
    IssueType,
    Project,
    Status,
    Ticket,
    Watcher,
    Workflow,
    WorkflowSchemeEntry,
    WorkflowVersion,
)
from tickets.workflow_definition import DEFAULT_TEMPLATE, TEMPLATES, definition_compile

# -- which workflow --------------------------------------------------------------------


def workflow_create(
    *,
    project: Project,
    name: str,
    definition: dict[str, Any],
    actor: Any = None,
    description: str = "",
) -> Workflow:
    """A new workflow of `project` with its first version (definition in input form)."""
    group_names = {g.lower() for g in Group.objects.values_list("name", flat=True)}
    stored = definition_compile(definition, group_names=group_names)
    try:
        with transaction.atomic():
            workflow = Workflow.objects.create(
                project=project, name=name.strip(), description=description
            )
    except IntegrityError as exc:
        from saas.errors import Conflict

        raise Conflict(f"{project.key} already has a workflow named {name!r}.") from exc
    version = WorkflowVersion.objects.create(
        workflow=workflow,
        number=1,
        definition=stored,
        created_by_id=getattr(getattr(actor, "user", actor), "pk", None),
    )
    workflow.current = version
    workflow.save(update_fields=["current"])
    return workflow


def project_workflow_ensure(
    *, project: Project, template: str = DEFAULT_TEMPLATE, actor: Any = None
) -> Workflow:
    """The project's default workflow, created from `template` if it has none (projects
    made before workflows existed get the default template on first use)."""
    entry = (
        WorkflowSchemeEntry.objects.select_related("workflow__current")
        .filter(project=project, issue_type__isnull=True)
        .first()
    )
    if entry is not None:
        return entry.workflow
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()
        entry = WorkflowSchemeEntry.objects.filter(project=project, issue_type__isnull=True).first()
        if entry is not None:
            return entry.workflow
        name, _ = TEMPLATES[template]
        workflow = Workflow.objects.filter(
            project=project, name__iexact=name
        ).first() or workflow_create(
            project=project, name=name, definition=TEMPLATES[template][1](), actor=actor
        )
        WorkflowSchemeEntry.objects.create(project=project, issue_type=None, workflow=workflow)
        return workflow


def workflow_version_for(*, project: Project, issue_type: IssueType | None) -> WorkflowVersion:
    entries = {
        e.issue_type_id: e.workflow
        for e in WorkflowSchemeEntry.objects.select_related("workflow__current").filter(
            project=project
        )
    }
    workflow = entries.get(getattr(issue_type, "pk", None)) or entries.get(None)
    if workflow is None:
        workflow = project_workflow_ensure(project=project)
        workflow.refresh_from_db()
    assert workflow.current is not None
    return workflow.current


def initial_status_for(*, project: Project, issue_type: IssueType) -> Status:
    version = workflow_version_for(project=project, issue_type=issue_type)
    return Status.objects.get(pk=version.definition["initial"])


# -- which transitions -----------------------------------------------------------------


@dataclass(frozen=True)
class Transition:
    id: int
    name: str
    to: Status
    fields: list[str]
    raw: dict[str, Any]


def _conditions_pass(rules: list[dict[str, Any]], *, ticket: Ticket, member: Membership) -> bool:
    for rule in rules:
        kind = rule.get("type")
        if kind == "role" and member.role not in rule.get("roles", []):
            return False
        if kind == "group":
            wanted = {str(g).lower() for g in rule.get("groups", [])}
            names = {n.lower() for n in member.groups.values_list("name", flat=True)}
            if not wanted & names:
                return False
        if kind == "project_role" and project_role_of(
            member=member, project=ticket.project
        ) not in rule.get("roles", []):
            return False
        if kind == "assignee" and ticket.assignee_id != member.user_id:
            return False
        if kind == "reporter" and ticket.reporter_id != member.user_id:
            return False
        if kind == "permission":
            perm = str(rule.get("permission"))
            allowed = (
                project_can_administer(member=member, project=ticket.project)
                if perm == ADMIN_PROJECT
                else member_can(member, perm)
            )
            if not allowed:
                return False
    return True


def _fields_needed(raw: dict[str, Any]) -> list[str]:
    needed: list[str] = []
    for rule in raw.get("validators", []):
        if rule.get("type") == "required_fields":
            needed.extend(rule.get("fields", []))
        elif rule.get("type") == "field_matches":
            needed.append(rule["field"])
        elif rule.get("type") == "comment_required":
            needed.append("comment")
    return list(dict.fromkeys(needed))


def _all_transitions(ticket: Ticket) -> tuple[WorkflowVersion, list[dict[str, Any]]]:
    version = workflow_version_for(project=ticket.project, issue_type=ticket.issue_type)
    return version, version.definition["transitions"]


def transitions_available(*, ticket: Ticket, member: Membership) -> list[Transition]:
    """Transitions from the ticket's current status that the member may take now."""
    from tickets.access import project_can_write

    if not project_can_write(member=member, project=ticket.project):
        return []
    _, raw_transitions = _all_transitions(ticket)
    candidates = [
        t
        for t in raw_transitions
        if (t["from"] is None or ticket.status_id in t["from"])
        and t["to"] != ticket.status_id
        and _conditions_pass(t.get("conditions", []), ticket=ticket, member=member)
    ]
    statuses = Status.objects.in_bulk({t["to"] for t in candidates})
    return [
        Transition(
            id=t["id"], name=t["name"], to=statuses[t["to"]], fields=_fields_needed(t), raw=t
        )
        for t in candidates
    ]


# -- taking one ------------------------------------------------------------------------


def _lock(ticket: Ticket, expected_version: int | None) -> Ticket:
    from tickets.services import ticket_lock

    return ticket_lock(ticket, expected_version)


def _field_empty(ticket: Ticket, name: str, m2m: dict[str, list[Any]]) -> bool:
    if name in ("components", "fix_versions"):
        items = m2m[name] if name in m2m else list(getattr(ticket, name).all())
        return not items
    attr = {
        "type": "issue_type_id",
        "priority": "priority_id",
        "assignee": "assignee_id",
        "reporter": "reporter_id",
        "resolution": "resolution_id",
    }.get(name, name)
    if hasattr(ticket, attr):
        return getattr(ticket, attr) in (None, "", [])
    cf = CustomField.objects.filter(name__iexact=name).first()
    return cf is None or ticket.custom_fields.get(str(cf.pk)) in (None, "", [])


def _field_display(ticket: Ticket, name: str) -> list[str]:
    if name in ("type", "priority", "resolution", "assignee", "reporter", "status"):
        obj = getattr(ticket, "issue_type" if name == "type" else name)
        if obj is None:
            return []
        return [getattr(obj, "username", None) or obj.name]
    if name == "labels":
        return list(ticket.labels)
    if hasattr(ticket, name):
        value = getattr(ticket, name)
        return [] if value in (None, "") else [str(value)]
    cf = CustomField.objects.filter(name__iexact=name).first()
    value = ticket.custom_fields.get(str(cf.pk)) if cf else None
    return (
        [str(v) for v in value]
        if isinstance(value, list)
        else ([] if value is None else [str(value)])
    )


def _validator_problems(
    raw: dict[str, Any], *, ticket: Ticket, m2m: dict[str, list[Any]], comment: str
) -> list[dict[str, str]]:
    problems: list[dict[str, str]] = []
    for rule in raw.get("validators", []):
        kind = rule.get("type")
        if kind == "required_fields":
            for name in rule.get("fields", []):
                if _field_empty(ticket, name, m2m):
                    problems.append({"field": name, "message": f"{name} is required."})
        elif kind == "field_matches":
            wanted = str(rule.get("value", "")).lower()
            if wanted not in [v.lower() for v in _field_display(ticket, rule["field"])]:
                problems.append(
                    {
                        "field": rule["field"],
                        "message": f"{rule['field']} must be {rule.get('value')}.",
                    }
                )
        elif kind == "comment_required" and not comment.strip():
            problems.append({"field": "comment", "message": "A comment is required."})
        elif kind == "subtasks_done":
            open_subtasks = list(
                Ticket.objects.filter(parent=ticket)
                .exclude(status__category=Status.Category.DONE)
                .values_list("key", flat=True)
            )
            if open_subtasks:
                problems.append(
                    {
                        "field": "subtasks",
                        "message": "Sub-tasks are not done: " + ", ".join(open_subtasks) + ".",
                    }
                )
    return problems


def _set_resolution(
    ticket: Ticket, resolution: Any, changes: list[FieldChange], update: set[str]
) -> None:
    old = ticket.resolution if ticket.resolution_id else None
    if getattr(old, "pk", None) == getattr(resolution, "pk", None):
        return
    changes.append(
        FieldChange(
            "resolution",
            getattr(old, "name", None),
            getattr(resolution, "name", None),
            getattr(old, "pk", None),
            getattr(resolution, "pk", None),
        )
    )
    ticket.resolution = resolution
    update.add("resolution")


def _set_assignee(ticket: Ticket, user: Any, changes: list[FieldChange], update: set[str]) -> None:
    old = ticket.assignee if ticket.assignee_id else None
    if getattr(old, "pk", None) == getattr(user, "pk", None):
        return
    changes.append(
        FieldChange(
            "assignee",
            getattr(old, "name", None),
            getattr(user, "name", None),
            getattr(old, "pk", None),
            getattr(user, "pk", None),
        )
    )
    ticket.assignee = user
    update.add("assignee")


@transaction.atomic
def ticket_transition(
    *,
    ticket: Ticket,
    actor: Membership,
    transition_id: int,
    fields: dict[str, Any] | None = None,
    comment: str = "",
    expected_version: int | None = None,
) -> Ticket:
    """Take a workflow transition; 404 unknown, 403 conditions, 422 not available from the
    current status or validators failing (every problem listed), 412 stale version."""
    from tickets.services import _plan, _save

    ticket = _lock(ticket, expected_version)
    project_require_write(member=actor, project=ticket.project)
    # Workflow changes lock the project row FOR UPDATE; KEY SHARE makes them wait for
    # transitions in flight (and vice versa) without blocking ticket creation.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {Project._meta.db_table} WHERE id = %s FOR KEY SHARE",  # noqa: S608
            [ticket.project_id],
        )
    version, raw_transitions = _all_transitions(ticket)
    raw = next((t for t in raw_transitions if t["id"] == transition_id), None)
    if raw is None:
        raise NotFound(
            f"Transition {transition_id} is not part of {ticket.key}'s workflow.",
            code="transition_not_found",
        )
    if raw["from"] is not None and ticket.status_id not in raw["from"]:
        raise Invalid(
            f"{raw['name']!r} cannot be taken from status {ticket.status.name}.",
            code="transition_unavailable",
            details={"allowed": _allowed(ticket=ticket, member=actor)},
        )
    if not _conditions_pass(raw.get("conditions", []), ticket=ticket, member=actor):
        raise Forbidden(
            f"You may not take {raw['name']!r} on {ticket.key}.", code="transition_forbidden"
        )
    plan = _plan(
        ticket=ticket, project=ticket.project, actor=actor, data=fields or {}, creating=False
    )
    problems = _validator_problems(raw, ticket=ticket, m2m=plan.m2m, comment=comment)
    if problems:
        raise Invalid(
            f"{raw['name']!r} needs more: " + " ".join(p["message"] for p in problems),
            code="transition_invalid",
            details=problems,
        )

    now = timezone.now()
    old_status = ticket.status
    new_status = Status.objects.get(pk=raw["to"])
    changes = list(plan.changes)
    update = set(plan.update_fields)
    changes.append(
        FieldChange("status", old_status.name, new_status.name, old_status.pk, new_status.pk)
    )
    ticket.status = new_status
    update.add("status")
    done_now = new_status.category == Status.Category.DONE
    done_before = old_status.category == Status.Category.DONE
    if done_now and not done_before:
        ticket.resolved_at = now
        update.add("resolved_at")
    elif done_before and not done_now:
        ticket.resolved_at = None
        update.add("resolved_at")
    comments = [comment] if comment.strip() else []
    for rule in raw.get("post_functions", []):
        kind = rule.get("type")
        if kind == "set_resolution":
            _set_resolution(ticket, f.resolution_resolve(rule["value"]), changes, update)
        elif kind == "clear_resolution":
            _set_resolution(ticket, None, changes, update)
        elif kind == "assign":
            target = {"current_user": actor.user, "reporter": ticket.reporter, "unassigned": None}[
                rule["to"]
            ]
            _set_assignee(ticket, target, changes, update)
        elif kind == "set_field":
            extra = _plan(
                ticket=ticket,
                project=ticket.project,
                actor=actor,
                data={rule["field"]: rule.get("value")},
                creating=False,
            )
            changes.extend(extra.changes)
            update |= extra.update_fields
            plan.m2m.update(extra.m2m)
        elif kind == "add_comment":
            comments.append(str(rule["body"]))
    _save(ticket, update, now)
    for name, items in plan.m2m.items():
        getattr(ticket, name).set(items)
    history_record(ticket=ticket, actor=actor, changes=changes, at=now)
    for body in comments:
        created = Comment.objects.create(
            ticket=ticket, author_id=actor.user_id, body=body, created_at=now, updated_at=now
        )
        history_record(
            ticket=ticket,
            actor=actor,
            at=now,
            changes=[FieldChange("comment", None, str(created.pk), None, created.pk)],
        )
    if ticket.assignee_id:
        Watcher.objects.get_or_create(ticket=ticket, user_id=ticket.assignee_id)
    change_record(
        "ticket.transitioned",
        actor=actor,
        target_type="ticket",
        target_id=ticket.key,
        changes={**changes_as_audit(changes), "transition": [None, raw["name"]]},
        payload={
            "key": ticket.key,
            "transition": raw["name"],
            "from": old_status.name,
            "to": new_status.name,
            "version": ticket.version,
            "workflow_version": version.number,
        },
        aggregate_id=ticket.pk,
    )
    return ticket


def _allowed(*, ticket: Ticket, member: Membership) -> list[dict[str, Any]]:
    return [
        {"id": t.id, "name": t.name, "to": t.to.name}
        for t in transitions_available(ticket=ticket, member=member)
    ]


def ticket_move_to_status(
    *, ticket: Ticket, actor: Membership, status_ref: Any, expected_version: int | None = None
) -> Ticket:
    """Move to a status when exactly one available transition leads there; otherwise 422
    listing the transitions that are allowed now."""
    try:
        target = f.status_resolve(status_ref)
    except f.FieldError as exc:
        raise Invalid(exc.message, details=[exc.as_detail()]) from exc
    if target.pk == ticket.status_id:
        return ticket
    available = transitions_available(ticket=ticket, member=actor)
    leading = [t for t in available if t.to.pk == target.pk]
    if len(leading) != 1:
        reason = (
            "No transition you may take leads" if not leading else "More than one transition leads"
        )
        raise Invalid(
            f"{reason} from {ticket.status.name} to {target.name}; use the transitions API.",
            code="status_not_reachable",
            details={"allowed": [{"id": t.id, "name": t.name, "to": t.to.name} for t in available]},
        )
    return ticket_transition(
        ticket=ticket, actor=actor, transition_id=leading[0].id, expected_version=expected_version
    )
