"""Writes on projects, project members, project settings and custom fields.

Each is one transaction: authorize, validate everything (422 listing every problem),
change the rows, record an audit entry and an outbox event. Writes that depend on the
project's current state (members, settings, deletion) lock the project row first, so
concurrent changes of one project queue instead of racing.
"""

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.db.models.functions import Lower

from accounts.members.models import Membership
from accounts.models import User
from accounts.policy import ADMIN_PROJECT, ADMIN_TENANT, member_require
from eventlog.audit import field_changes
from eventlog.record import change_record
from saas.errors import Conflict, Invalid, NotFound
from saas.refs import db_id_valid
from tickets import fields as f
from tickets.access import project_require_admin
from tickets.models import (
    Attachment,
    Component,
    CustomField,
    IssueType,
    Project,
    ProjectMember,
    Ticket,
    Version,
)
from tickets.project_selectors import project_settings
from tickets.workflow_definition import DEFAULT_TEMPLATE, TEMPLATES
from tickets.workflow_engine import project_workflow_ensure

KEY_RE = re.compile(r"^[A-Z][A-Z0-9]{1,9}$")
KEY_RULE = "A project key is 2-10 characters, letters A-Z and digits, starting with a letter."
PROJECT_FIELDS = ("key", "name", "description", "type", "lead", "is_private", "is_archived")
SETTINGS_FIELDS = ("default_assignee", "issue_types", "components", "versions", "custom_fields")
CUSTOM_FIELD_FIELDS = ("name", "type", "description", "options")
SELECT_TYPES = (CustomField.Type.SELECT, CustomField.Type.MULTISELECT)
ADMIN = ProjectMember.Role.ADMIN


def _lock(project: Project) -> Project:
    return Project.objects.select_for_update(of=("self",)).get(pk=project.pk)


def _username(user: User | None) -> str | None:
    return user.username if user is not None else None


def _active_member(value: Any, *, field: str) -> User:
    user = f.member_user_resolve(value, field=field)
    if user is None:
        raise f.FieldError(field, "A user is required.")
    return user


def project_key_clean(raw: Any) -> str:
    """Uppercase the key, as Jira does, and check its shape."""
    key = raw.strip() if isinstance(raw, str) else ""
    if not key.isascii() or not KEY_RE.match(key.upper()):
        raise f.FieldError("key", KEY_RULE)
    return key.upper()


_name = partial(f.text_clean, label="Name", max_length=100, required=True)
_project_name = partial(f.text_clean, label="Name", max_length=200, required=True)
_description = partial(f.text_clean, label="Description", max_length=255, required=False)
_long_description = partial(f.text_clean, label="Description", max_length=32_000, required=False)
_option = partial(f.text_clean, label="An option", max_length=100, required=True)


def _record(
    action: str,
    *,
    actor: Membership,
    target: Project | CustomField,
    changes: dict[str, Any],
    payload: dict[str, Any],
) -> None:
    """The audit entry and the outbox event of a write, both named `action`."""
    target_type = "project" if isinstance(target, Project) else "custom_field"
    change_record(
        action,
        actor=actor,
        target_type=target_type,
        target_id=target.key if isinstance(target, Project) else target.pk,
        changes=changes,
        payload=payload,
        aggregate_id=target.pk,
    )


def _type_clean(value: Any) -> str:
    if value not in Project.Type.values:
        raise f.FieldError("type", f"Type must be one of {', '.join(Project.Type.values)}.")
    return str(value)


# Projects ------------------------------------------------------------------------------


@transaction.atomic
def project_create(
    *,
    actor: Membership,
    key: str,
    name: str,
    description: str = "",
    type: str = Project.Type.SOFTWARE,
    lead: Any = None,
    is_private: bool = False,
    workflow_template: str = DEFAULT_TEMPLATE,
) -> Project:
    """Create a project (tenant admins and project leads). The creator and the lead
    become its administrators; every issue type of the workspace is enabled; its default
    workflow is made from `workflow_template`."""
    member_require(actor, ADMIN_PROJECT)
    errors = f.FieldErrorList()
    clean_key = errors.attempt(project_key_clean, key)
    clean_name = errors.attempt(_project_name, name, field="name")
    clean_description = errors.attempt(_long_description, description, field="description")
    clean_type = errors.attempt(_type_clean, type)
    lead_user = errors.attempt(
        _active_member, actor.user_id if lead is None else lead, field="lead"
    )
    if workflow_template not in TEMPLATES:
        errors.add("workflow_template", f"Workflow templates are {', '.join(TEMPLATES)}.")
    errors.raise_if_any("The project has invalid fields.")
    try:
        with transaction.atomic():
            project = Project.objects.create(
                key=clean_key,
                name=clean_name,
                description=clean_description,
                type=clean_type,
                lead=lead_user,
                owner_id=actor.user_id,
                is_private=bool(is_private),
            )
    except IntegrityError as exc:
        raise Conflict(
            f"A project with key {clean_key} already exists.",
            code="project_key_taken",
            details={"key": clean_key},
        ) from exc
    ProjectMember.objects.bulk_create(
        ProjectMember(project=project, user_id=user_id, role=ADMIN)
        for user_id in sorted({actor.user_id, lead_user.pk})
    )
    project.issue_types.add(*IssueType.objects.values_list("pk", flat=True))
    project_workflow_ensure(project=project, template=workflow_template, actor=actor)
    _record(
        "project.created",
        actor=actor,
        target=project,
        changes={
            "key": [None, project.key],
            "name": [None, project.name],
            "type": [None, project.type],
            "lead": [None, lead_user.username],
            "is_private": [None, project.is_private],
        },
        payload={"key": project.key},
    )
    return project


@transaction.atomic
def project_update(*, project: Project, actor: Membership, data: Mapping[str, Any]) -> Project:
    """Change the fields sent (project administrators). The key never changes; a new
    lead becomes a project administrator."""
    project = _lock(project)
    project_require_admin(member=actor, project=project)
    errors = f.FieldErrorList()
    for name in sorted(set(data) - set(PROJECT_FIELDS)):
        errors.add(name, "Unknown or read-only field.")

    def key(sent: Any) -> str:
        if not isinstance(sent, str) or sent.strip().upper() != project.key:
            raise f.FieldError("key", f"The key of a project cannot be changed ({project.key}).")
        return project.key

    def lead(sent: Any) -> User:
        if sent is None:
            raise f.FieldError("lead", "A project needs a lead.")
        return _active_member(sent, field="lead")

    def flag(attr: str) -> Callable[[Any], bool]:
        def clean(sent: Any) -> bool:
            if not isinstance(sent, bool):
                raise f.FieldError(attr, "Must be true or false.")
            return sent

        return clean

    cleaners: dict[str, Callable[[Any], Any]] = {
        "key": key,
        "name": partial(_project_name, field="name"),
        "description": partial(_long_description, field="description"),
        "type": _type_clean,
        "lead": lead,
        "is_private": flag("is_private"),
        "is_archived": flag("is_archived"),
    }
    new: dict[str, Any] = {}
    for attr, clean in cleaners.items():
        if attr in data:
            try:
                new[attr] = clean(data[attr])
            except f.FieldError as exc:
                errors.items.append(exc)
    errors.raise_if_any("The project has invalid fields.")

    changes: dict[str, list[Any]] = {}
    for attr, value in new.items():
        if attr == "key":
            continue
        if attr == "lead":
            if value.pk != project.lead_id:
                old_lead = (
                    User.objects.filter(pk=project.lead_id).first() if project.lead_id else None
                )
                changes["lead"] = [_username(old_lead), value.username]
                project.lead = value
        elif getattr(project, attr) != value:
            changes[attr] = [getattr(project, attr), value]
            setattr(project, attr, value)
    if not changes:
        return project
    project.save(update_fields=[*sorted(changes), "updated_at"])
    if "lead" in changes:
        # The lead administers the project; a private project must also be visible to them.
        ProjectMember.objects.update_or_create(
            project=project, user=project.lead, defaults={"role": ADMIN}
        )
    _record(
        "project.updated",
        actor=actor,
        target=project,
        changes=changes,
        payload={"key": project.key, "fields": sorted(changes)},
    )
    return project


@transaction.atomic
def project_delete(*, project: Project, actor: Membership, confirm: str | None = None) -> int:
    """Delete a project and its tickets (tenant admins). A project with tickets is only
    deleted when `confirm` repeats its key. Returns the number of tickets deleted."""
    member_require(actor, ADMIN_TENANT)
    project = _lock(project)
    ticket_count = Ticket.objects.filter(project=project).count()
    if ticket_count and (confirm or "").strip() != project.key:
        raise Conflict(
            f"{project.key} has {ticket_count} tickets; to delete them with the project, "
            f"send confirm={project.key}.",
            code="confirmation_required",
            details={"ticket_count": ticket_count, "confirm": project.key},
        )
    # The files stay in storage until a consumer of the event removes them.
    storage_keys = list(
        Attachment.objects.filter(ticket__project=project).values_list("storage_key", flat=True)
    )
    _record(
        "project.deleted",
        actor=actor,
        target=project,
        changes={
            "key": [project.key, None],
            "name": [project.name, None],
            "ticket_count": [ticket_count, 0],
        },
        payload={"key": project.key, "ticket_count": ticket_count, "storage_keys": storage_keys},
    )
    project.delete()
    return ticket_count


# Members -------------------------------------------------------------------------------


def _role_clean(role: Any) -> str:
    if role not in ProjectMember.Role.values:
        raise Invalid(
            f"Role must be one of {', '.join(ProjectMember.Role.values)}.",
            details=[{"field": "role", "message": "Unknown project role."}],
        )
    return str(role)


def _member_of(project: Project, user_id: int) -> ProjectMember:
    member = (
        ProjectMember.objects.select_related("user")
        .filter(project=project, user_id=user_id)
        .first()
        if db_id_valid(user_id)
        else None
    )
    if member is None:
        raise NotFound(
            f"User {user_id} is not a member of {project.key}.", code="project_member_not_found"
        )
    return member


def _require_another_admin(project: Project, member: ProjectMember, verb: str) -> None:
    others = ProjectMember.objects.filter(project=project, role=ADMIN).exclude(pk=member.pk)
    if member.role == ADMIN and not others.exists():
        raise Conflict(
            f"Cannot {verb} {member.user.username}: {project.key} needs at least one "
            "administrator.",
            code="last_project_admin",
        )


def _member_event(
    kind: str, *, project: Project, actor: Membership, user: User, roles: list[str | None]
) -> None:
    _record(
        f"project.{kind}",
        actor=actor,
        target=project,
        changes={f"member.{user.username}": roles},
        payload={"key": project.key, "user_id": user.pk, "role": roles[1]},
    )


@transaction.atomic
def project_member_add(
    *, project: Project, actor: Membership, user_ref: Any, role: str = ProjectMember.Role.DEVELOPER
) -> ProjectMember:
    """Add an active member of the workspace to the project (project administrators)."""
    project = _lock(project)
    project_require_admin(member=actor, project=project)
    role = _role_clean(role)
    try:
        user = _active_member(user_ref, field="user")
    except f.FieldError as exc:
        raise Invalid(exc.message, details=[exc.as_detail()]) from exc
    existing = ProjectMember.objects.filter(project=project, user=user).first()
    if existing is not None:
        raise Conflict(
            f"{user.username} is already a member of {project.key} ({existing.role}); "
            "change their role instead.",
            code="already_project_member",
            details={"role": existing.role},
        )
    member = ProjectMember.objects.create(project=project, user=user, role=role)
    _member_event(
        "member_added",
        project=project,
        actor=actor,
        user=user,
        roles=[None, role],
    )
    return member


@transaction.atomic
def project_member_update(
    *, project: Project, actor: Membership, user_id: int, role: str
) -> ProjectMember:
    """Change a member's project role; the last administrator cannot be demoted."""
    project = _lock(project)
    project_require_admin(member=actor, project=project)
    role = _role_clean(role)
    member = _member_of(project, user_id)
    if member.role == role:
        return member
    _require_another_admin(project, member, "demote")
    old = member.role
    member.role = role
    member.save(update_fields=["role"])
    _member_event(
        "member_role_changed",
        project=project,
        actor=actor,
        user=member.user,
        roles=[old, role],
    )
    return member


@transaction.atomic
def project_member_remove(*, project: Project, actor: Membership, user_id: int) -> None:
    """Remove a member; the last administrator and the lead cannot be removed."""
    project = _lock(project)
    project_require_admin(member=actor, project=project)
    member = _member_of(project, user_id)
    if member.user_id == project.lead_id:
        raise Conflict(
            f"{member.user.username} leads {project.key}; choose another lead first.",
            code="project_lead",
        )
    _require_another_admin(project, member, "remove")
    member.delete()
    _member_event(
        "member_removed",
        project=project,
        actor=actor,
        user=member.user,
        roles=[member.role, None],
    )


# Settings ------------------------------------------------------------------------------


@dataclass
class _ItemsPlan:
    """How a sent list of components or versions maps onto the project's rows."""

    update: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)
    create: list[dict[str, Any]] = field(default_factory=list)
    delete: list[Any] = field(default_factory=list)


def _component_clean(
    prefix: str, item: Mapping[str, Any], errors: f.FieldErrorList
) -> dict[str, Any]:
    lead = errors.attempt(f.member_user_resolve, item.get("lead"), field=f"{prefix}.lead")
    return {"lead_id": getattr(lead, "pk", None)}


def _version_clean(
    prefix: str, item: Mapping[str, Any], errors: f.FieldErrorList
) -> dict[str, Any]:
    values = {
        "release_date": errors.attempt(
            f.date_clean, item.get("release_date"), field=f"{prefix}.release_date"
        )
    }
    for flag in ("is_released", "is_archived"):
        values[flag] = item.get(flag, False)
        if not isinstance(values[flag], bool):
            errors.add(f"{prefix}.{flag}", "Must be true or false.")
    return values


# setting -> (model, label, cleaner of the model's own fields)
_ITEMS: dict[str, tuple[type[Component] | type[Version], str, Callable[..., dict[str, Any]]]] = {
    "components": (Component, "Component", _component_clean),
    "versions": (Version, "Version", _version_clean),
}


def _items_plan(
    *, setting: str, project: Project, items: Any, errors: f.FieldErrorList
) -> _ItemsPlan:
    """Match items by id, then by name (case-insensitive); unmatched items are new, and
    the project's rows left unmatched are to be deleted."""
    model, label, clean = _ITEMS[setting]
    plan = _ItemsPlan()
    if not isinstance(items, list | tuple) or not all(isinstance(i, Mapping) for i in items):
        errors.add(setting, f"{label}s must be a list of objects.")
        return plan
    existing: list[Any] = list(model._default_manager.filter(project=project))
    by_id = {obj.pk: obj for obj in existing}
    by_name = {obj.name.lower(): obj for obj in existing}
    cleaned: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        prefix, before = f"{setting}.{i}", len(errors.items)
        values = {
            "name": errors.attempt(_name, item.get("name"), field=f"{prefix}.name"),
            "description": errors.attempt(
                _description, item.get("description"), field=f"{prefix}.description"
            ),
            **clean(prefix, item, errors),
        }
        raw = item.get("name")
        name = raw.strip() if isinstance(raw, str) else ""
        if name and name.lower() in seen:
            errors.add(f"{prefix}.name", f"{name!r} is listed twice.")
        seen.add(name.lower())
        cleaned.append(values if len(errors.items) == before else {})
    matched: dict[int, Any] = {}
    for i, item in enumerate(items):
        if item.get("id") is None:
            continue
        obj = by_id.get(item["id"])
        if obj is None:
            errors.add(f"{setting}.{i}.id", f"No {label.lower()} {item['id']} in {project.key}.")
        elif obj in matched.values():
            errors.add(f"{setting}.{i}.id", f"{label} {item['id']} is listed twice.")
        else:
            matched[i] = obj
    for i, values in enumerate(cleaned):
        obj = by_name.get(values.get("name", "").lower())
        if values and items[i].get("id") is None and obj and obj not in matched.values():
            matched[i] = obj
    for i, values in enumerate(cleaned):
        if i in matched:
            plan.update.append((matched[i], values))
        elif values:
            plan.create.append(values)
    plan.delete = [obj for obj in existing if obj not in matched.values()]
    return plan


def _items_in_use(setting: str, plan: _ItemsPlan) -> list[dict[str, Any]]:
    if not plan.delete:
        return []
    used = (
        _ITEMS[setting][0]
        ._default_manager.filter(pk__in=[o.pk for o in plan.delete])
        .annotate(ticket_count=Count("tickets"))
        .filter(ticket_count__gt=0)
        .order_by("name")
    )
    return [{"id": o.pk, "name": o.name, "ticket_count": o.ticket_count} for o in used]


def _items_apply(setting: str, project: Project, plan: _ItemsPlan) -> None:
    model: Any = _ITEMS[setting][0]
    manager = model._default_manager
    if plan.delete:
        manager.filter(pk__in=[o.pk for o in plan.delete]).delete()
    # Names are unique per project: park renamed rows on a free name first, so that
    # swaps and renames onto a sibling's old name go through.
    for obj, values in plan.update:
        if obj.name != values["name"]:
            manager.filter(pk=obj.pk).update(name=f"~renaming~{uuid.uuid4().hex}")
    for obj, values in plan.update:
        changed = [k for k, v in values.items() if getattr(obj, k) != v]
        for k in changed:
            setattr(obj, k, values[k])
        if changed:
            obj.save(update_fields=changed)
    manager.bulk_create(model(project=project, **v) for v in plan.create)


def _catalog_resolve(
    model: type[IssueType] | type[CustomField],
    values: Any,
    *,
    setting: str,
    errors: f.FieldErrorList,
) -> list[Any]:
    """Catalogue entries by id or case-insensitive name, in one query, deduplicated."""
    label = model._meta.verbose_name
    if not isinstance(values, list | tuple):
        errors.add(setting, f"{setting} must be a list.")
        return []
    ids = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
    names = [v.strip().lower() for v in values if isinstance(v, str)]
    found = model._default_manager.annotate(lname=Lower("name")).filter(
        Q(pk__in=[i for i in ids if db_id_valid(i)]) | Q(lname__in=names)
    )
    by_ref: dict[Any, Any] = {}
    for entry in found:
        by_ref[entry.pk] = by_ref[entry.name.lower()] = entry
    resolved: list[Any] = []
    for i, value in enumerate(values):
        ref = value.strip().lower() if isinstance(value, str) else value
        obj = by_ref.get(ref) if isinstance(ref, str | int) and not isinstance(ref, bool) else None
        if obj is None:
            errors.add(f"{setting}.{i}", f"Unknown {label} {value!r}.")
        elif obj not in resolved:
            resolved.append(obj)
    return resolved


@transaction.atomic
def project_settings_update(
    *, project: Project, actor: Membership, data: Mapping[str, Any]
) -> Project:
    """Replace the settings sent (project administrators): default assignee, enabled
    issue types and custom fields, components and versions. Components and versions
    are matched by id, else by name; new ones are created, and ones left out are
    deleted unless tickets use them (409 listing them)."""
    project = _lock(project)
    project_require_admin(member=actor, project=project)
    errors = f.FieldErrorList()
    for name in sorted(set(data) - set(SETTINGS_FIELDS)):
        errors.add(name, "Unknown setting.")
    assignee = None
    if "default_assignee" in data:
        assignee = errors.attempt(
            f.member_user_resolve, data["default_assignee"], field="default_assignee"
        )
    catalogs: dict[str, list[Any]] = {}
    for setting, model in (("issue_types", IssueType), ("custom_fields", CustomField)):
        if setting in data:
            catalogs[setting] = _catalog_resolve(
                model, data[setting], setting=setting, errors=errors
            )
    if data.get("issue_types", None) == []:
        errors.add("issue_types", "Enable at least one issue type.")
    plans = {
        setting: _items_plan(setting=setting, project=project, items=data[setting], errors=errors)
        for setting in _ITEMS
        if setting in data
    }
    errors.raise_if_any("The settings have invalid values.")
    in_use = {
        setting: used for setting, plan in plans.items() if (used := _items_in_use(setting, plan))
    }
    if in_use:
        listed = "; ".join(
            f"{setting}: " + ", ".join(f"{u['name']} ({u['ticket_count']})" for u in used)
            for setting, used in in_use.items()
        )
        raise Conflict(
            f"Tickets still use what you removed, so it was kept: {listed}.",
            code="in_use",
            details=in_use,
        )

    before = project_settings(project=project)
    if "default_assignee" in data and project.default_assignee_id != getattr(assignee, "pk", None):
        project.default_assignee = assignee
        project.save(update_fields=["default_assignee", "updated_at"])
    for setting, chosen in catalogs.items():
        getattr(project, setting).set(chosen)
    for setting, plan in plans.items():
        _items_apply(setting, project, plan)
    after = project_settings(project=project)
    changes = field_changes(before, {k: v for k, v in after.items() if k in data})
    if changes:
        _record(
            "project.settings_changed",
            actor=actor,
            target=project,
            changes=changes,
            payload={"key": project.key, "settings": sorted(changes)},
        )
    return project
