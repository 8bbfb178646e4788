"""Validating an import file into a plan, before anything is written.

The whole file is checked and every problem is listed (`ImportInvalid`, 422) with the
section and index it belongs to. Names are resolved against what exists in the tenant:
what exists becomes a `Slot` with its id; what the import will create becomes a `Slot`
whose id the writer fills in. The plan refers to slots only, so the writer needs no
lookups of its own.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import partial
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection
from django.utils import timezone

from accounts.members.models import Group, Invitation, Membership
from accounts.models import User
from saas.errors import Invalid
from tickets import fields as f
from tickets.models import (
    Component,
    CustomField,
    IssueType,
    Priority,
    Project,
    Resolution,
    Status,
    Ticket,
    Version,
)
from tickets.sprint_import import sprints_validate, ticket_sprints_validate

MAX_ERRORS = 1000
MAX_NUMBER = 2**31 - 1
KEY_RE = re.compile(r"^([A-Z][A-Z0-9_]{1,9})-([1-9][0-9]{0,9})$")
PROJECT_KEY_RE = re.compile(r"^[A-Z][A-Z0-9_]{1,9}$")
SECTIONS = ("users", "projects", "custom_fields", "sprints", "tickets")
TICKET_FIELDS = frozenset(
    (
        *("key", "project", "type", "status", "priority", "resolution", "summary", "title"),
        *("description", "labels", "components", "fix_versions", "assignee", "reporter"),
        *("watchers", "created", "updated", "resolved", "due", "due_date", "story_points"),
        *("original_estimate", "remaining_estimate", "time_spent", "parent", "epic"),
        *("custom_fields", "comments", "history", "sprints"),
    )
)
HISTORY_FIELD_ALIASES = {"issuetype": "type", "issue_type": "type"}
DONE_WORDS = ("done", "closed", "resolved", "complete", "cancel", "rejected", "won't", "wontfix")
PROGRESS_WORDS = ("progress", "review", "testing", "qa", "doing", "develop", "verif")


CLEANERS: dict[str, Callable[[Any], Any]] = {
    "labels": f.labels_clean,
    "due": partial(f.date_clean, field="due"),
    "story_points": f.story_points_clean,
    "original_estimate": partial(f.duration_clean, field="original_estimate"),
    "remaining_estimate": partial(f.duration_clean, field="remaining_estimate"),
    "time_spent": partial(f.duration_clean, field="time_spent"),
}


Where = tuple[str, int]  # (section, index)
FieldWhere = tuple[str, int, str]  # (section, index, field)


class Slot:
    """Something the import refers to by name: existing, or `new` (to be created: its
    `id` is 0 until the writer has created it)."""

    __slots__ = ("data", "id", "name", "new")

    def __init__(
        self, name: str, *, id: int | None = None, data: dict[str, Any] | None = None
    ) -> None:
        self.name, self.id, self.new = name, id or 0, id is None
        self.data: dict[str, Any] = data or {}


class TicketPlan:
    """One ticket of the file, resolved (references are slots, or tickets of the plan)."""

    __slots__ = (
        "assignee", "comments", "components", "created", "custom", "description", "due",
        "epic", "history", "id", "index", "key", "labels", "number", "original_estimate",
        "parent", "priority", "project", "rank", "remaining_estimate", "reporter",
        "resolution", "resolved", "sprints", "status", "story_points", "summary",
        "time_spent", "type", "updated", "versions", "watchers",
    )  # fmt: skip
    index: int
    id: int | None
    key: str
    number: int
    project: Slot
    type: Slot
    status: Slot
    priority: Slot
    resolution: Slot | None
    summary: str | None
    description: str
    labels: list[str]
    components: list[Slot]
    versions: list[Slot]
    assignee: Slot | None
    reporter: Slot | None
    watchers: list[Slot]
    due: date | None
    story_points: Decimal | None
    original_estimate: int | None
    remaining_estimate: int | None
    time_spent: int
    parent: "TicketPlan | int | str | None"
    epic: "TicketPlan | int | str | None"
    custom: list[tuple[Slot, Any]]
    created: datetime
    updated: datetime
    resolved: datetime | None
    # (author, body, created)
    comments: list[tuple[Slot | None, str, datetime]]
    # (field, from, to, from ref, to ref, actor, at)
    history: list[tuple[str, str | None, str | None, Slot | None, Slot | None, Slot | None, Any]]

    rank: str
    sprints: list[Any]  # SprintPlan: the file's sprints the ticket is in

    def __init__(self, index: int) -> None:
        self.index, self.id = index, None
        self.parent = self.epic = None
        self.rank, self.sprints = "", []


@dataclass
class ImportPlan:
    users: list[Slot] = field(default_factory=list)  # the `users` section, resolved
    groups: dict[str, Slot] = field(default_factory=dict)
    statuses: dict[str, Slot] = field(default_factory=dict)
    types: dict[str, Slot] = field(default_factory=dict)
    priorities: dict[str, Slot] = field(default_factory=dict)
    resolutions: dict[str, Slot] = field(default_factory=dict)
    custom_fields: dict[str, Slot] = field(default_factory=dict)
    projects: dict[str, Slot] = field(default_factory=dict)
    components: dict[tuple[str, str], Slot] = field(default_factory=dict)
    versions: dict[tuple[str, str], Slot] = field(default_factory=dict)
    tickets: list[TicketPlan] = field(default_factory=list)
    enable_fields: set[tuple[str, str]] = field(default_factory=set)  # (project, field)
    enable_types: set[tuple[str, str]] = field(default_factory=set)  # (project, type)
    sprints: dict[str, Any] = field(default_factory=dict)  # the file's id -> SprintPlan


class ImportInvalid(Invalid):
    code = "import_invalid"

    def __init__(self, errors: list[dict[str, Any]], total: int) -> None:
        details = list(errors)
        if total > len(errors):
            more = total - len(errors)
            details.append(
                {"index": None, "section": None, "field": None, "message": f"{more} more errors."}
            )
        super().__init__(
            f"The import has {total} error{'s' if total != 1 else ''}; nothing was imported.",
            details=details,
        )
        self.errors, self.total = errors, total


def status_category_guess(name: str) -> str:
    lowered = name.lower()
    if any(word in lowered for word in DONE_WORDS):
        return Status.Category.DONE
    if any(word in lowered for word in PROGRESS_WORDS):
        return Status.Category.IN_PROGRESS
    return Status.Category.TO_DO


class _Validator:
    def __init__(self, data: Any, *, strict: bool) -> None:
        self.data, self.strict, self.plan = data, strict, ImportPlan()
        self.errors: list[dict[str, Any]] = []
        self.total = 0
        self.users: dict[str, Slot] = {}  # lowercased username or email -> slot
        self.groups_loaded = False
        self.project_types: dict[str, set[int]] = {}  # project key -> enabled type ids
        self.now = timezone.now()
        self.memo: dict[Any, Any] = {}
        plan = self.plan  # history values that name a status, a user... get its id too
        self.history_refs: dict[str, dict[str, Slot]] = {
            "status": plan.statuses,
            "priority": plan.priorities,
            "type": plan.types,
            "assignee": self.users,
            "reporter": self.users,
        }

    def bad(self, section: str | None, index: int | None, fld: Any, msg: str) -> None:
        """Record a problem; `fld` may be a tuple of path parts, joined only here."""
        self.total += 1
        if len(self.errors) < MAX_ERRORS:
            if isinstance(fld, tuple):
                fld = ".".join(map(str, fld))
            self.errors.append({"index": index, "section": section, "field": fld, "message": msg})

    def section(self, name: str) -> list[Any]:
        value = self.data.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            self.bad(name, None, None, f"`{name}` must be a list.")
            return []
        return value

    def text(
        self, entry: dict, key: str, where: Where, *, limit: int, required: bool
    ) -> str | None:
        value = entry.get(key)
        if value is None or (isinstance(value, str) and not value.strip() and required):
            if required:
                self.bad(*where, key, f"{key} is required.")
            return None
        if not isinstance(value, str) or len(value.strip()) > limit:
            self.bad(*where, key, f"{key} must be text of at most {limit} characters.")
            return None
        return value.strip()

    def run(self) -> ImportPlan:
        if not isinstance(self.data, dict):
            self.bad(None, None, None, "The import must be a JSON object.")
            raise ImportInvalid(self.errors, self.total)
        for key in sorted(set(self.data) - set(SECTIONS)):
            if self.strict:
                self.bad(None, None, key, f"Unknown section {key!r}.")
        self._catalogues()
        self._users()
        self._custom_fields()
        self._projects()
        sprints_validate(self)
        self._tickets()
        if self.total:
            raise ImportInvalid(self.errors, self.total)
        return self.plan

    # --- catalogues and users ---------------------------------------------------------

    def _catalogues(self) -> None:
        plan = self.plan
        for model, target in (
            (Status, plan.statuses),
            (IssueType, plan.types),
            (Priority, plan.priorities),
            (Resolution, plan.resolutions),
        ):
            for obj in model.objects.all():
                data = {
                    "is_subtask": getattr(obj, "is_subtask", False),
                    "is_epic": getattr(obj, "is_epic", False),
                    "category": getattr(obj, "category", None),
                }
                target[obj.name.lower()] = Slot(obj.name, id=obj.pk, data=data)
        for cf in CustomField.objects.all():
            plan.custom_fields[cf.name.lower()] = Slot(cf.name, id=cf.pk, data={"field": cf})

    def _users(self) -> None:
        members: dict[str, Slot] = {}
        for user_id, member_name, member_email in Membership.objects.values_list(
            "user_id", "user__username", "user__email"
        ):
            member = Slot(member_name, id=user_id, data={"member": True})
            for ref in (member_name, member_name.lower(), member_email, member_email.lower()):
                members.setdefault(ref, member)
        self.users.update(members)
        entries: list[tuple[int, dict, str, str | None]] = []
        seen: set[str] = set()
        for i, entry in enumerate(self.section("users")):
            where = ("users", i)
            if not isinstance(entry, dict):
                self.bad(*where, None, "Each user must be an object.")
                continue
            given_name = self.text(entry, "username", where, limit=150, required=True)
            given_email = self.text(entry, "email", where, limit=254, required=False)
            if given_email is not None:
                given_email = given_email.lower()
                try:
                    validate_email(given_email)
                except ValidationError:
                    self.bad(*where, "email", f"{given_email!r} is not a valid email address.")
                    continue
            if given_name is None:
                continue
            refs = [r for r in (given_name.lower(), given_email) if r]
            if any(r in seen for r in refs):
                self.bad(*where, None, f"User {given_name!r} appears more than once.")
                continue
            seen.update(refs)
            entries.append((i, entry, given_name, given_email))
        emails = [e for _, _, _, e in entries if e]
        globals_by_email = {
            u.email.lower(): u for u in User.objects.filter(email__in=emails).only("email")
        }
        open_invites = set(
            Invitation.objects.filter(
                email__in=emails, accepted_at__isnull=True, revoked_at__isnull=True
            ).values_list("email", flat=True)
        )
        for i, entry, username, email in entries:
            by_name, by_email = members.get(username.lower()), members.get(email or "")
            if by_name and by_email and by_name is not by_email:
                self.bad("users", i, None, f"{username!r} and {email!r} are different members.")
                continue
            slot = by_name or by_email
            if slot is None and email is None:
                self.bad("users", i, "email", "email is required for a new member.")
                continue
            if slot is None:
                display = self.text(entry, "display_name", ("users", i), limit=255, required=False)
                identity = globals_by_email.get(email or "")
                slot = Slot(
                    username,
                    id=identity.pk if identity else None,
                    data={
                        "member": False,
                        "email": email,
                        "display_name": display or "",
                        "invite": identity is None and email not in open_invites,
                    },
                )
            slot.data["groups"] = self._groups(entry.get("groups"), i)
            self.plan.users.append(slot)
            refs = [username, username.lower(), email or "", str(entry.get("email") or "")]
            for ref in filter(None, refs):  # as written (the usual hit), and lowercased
                self.users[ref] = slot

    def _groups(self, value: Any, index: int) -> list[Slot]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(
            isinstance(g, str) and 0 < len(g.strip()) <= 150 for g in value
        ):
            self.bad("users", index, "groups", "groups must be a list of names (1-150 chars).")
            return []
        if not self.groups_loaded:
            self.groups_loaded = True
            self.plan.groups = {g.name.lower(): Slot(g.name, id=g.pk) for g in Group.objects.all()}
        slots = [self.plan.groups.setdefault(g.strip().lower(), Slot(g.strip())) for g in value]
        return list(dict.fromkeys(slots))  # once each, in order

    def user(self, value: Any, section: str, index: int, fld: Any) -> Slot | None:
        if value is None or value == "":
            return None
        slot = self.users.get(value) if isinstance(value, str) else None
        if slot is None and isinstance(value, str):
            slot = self.users.get(value.strip().lower())
        if slot is None:
            self.bad(section, index, fld, f"Unknown user {value!r}: not in `users`, not a member.")
        return slot

    # --- custom fields and projects ---------------------------------------------------

    def _custom_fields(self) -> None:
        seen: set[str] = set()
        for i, entry in enumerate(self.section("custom_fields")):
            where = ("custom_fields", i)
            if not isinstance(entry, dict):
                self.bad(*where, None, "Each custom field must be an object.")
                continue
            name = self.text(entry, "name", where, limit=100, required=True)
            kind = entry.get("type")
            if kind not in CustomField.Type.values:
                self.bad(*where, "type", f"type must be one of {', '.join(CustomField.Type)}.")
            options = entry.get("options") or []
            if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
                self.bad(*where, "options", "options must be a list of strings.")
                options = []
            elif kind in ("select", "multiselect") and not options:
                self.bad(*where, "options", f"A {kind} field needs options.")
            if name is None or kind not in CustomField.Type.values:
                continue
            if name.lower() in seen:
                self.bad(*where, "name", f"Custom field {name!r} appears more than once.")
            seen.add(name.lower())
            existing = self.plan.custom_fields.get(name.lower())
            if existing is not None and existing.data["field"].type != kind:
                self.bad(
                    *where, "type", f"{name!r} exists with type {existing.data['field'].type}."
                )
            elif existing is not None:
                existing.data["declared"] = True
            else:
                description = self.text(entry, "description", where, limit=255, required=False)
                cf = CustomField(
                    name=name, type=kind, options=options, description=description or ""
                )
                self.plan.custom_fields[name.lower()] = Slot(
                    name, data={"field": cf, "declared": True}
                )

    def _projects(self) -> None:
        for project_id, key in Project.objects.values_list("id", "key"):
            self.plan.projects[key] = Slot(key, id=project_id)
        for model, target in ((Component, self.plan.components), (Version, self.plan.versions)):
            for obj_id, key, name in model.objects.values_list("id", "project__key", "name"):
                target[(key, name.lower())] = Slot(name, id=obj_id)
        for i, entry in enumerate(self.section("projects")):
            where = ("projects", i)
            if not isinstance(entry, dict):
                self.bad(*where, None, "Each project must be an object.")
                continue
            given_key = self.text(entry, "key", where, limit=10, required=True)
            if given_key is None:
                continue
            key = given_key.upper()
            if not PROJECT_KEY_RE.match(key):
                self.bad(*where, "key", f"{key!r} is not a project key (e.g. CORE).")
                continue
            slot = self.plan.projects.get(key)
            if slot is not None and slot.data.get("declared"):
                self.bad(*where, "key", f"Project {key} appears more than once.")
                continue
            title = self.text(entry, "name", where, limit=200, required=slot is None)
            description = entry.get("description") or ""
            if not isinstance(description, str):
                self.bad(*where, "description", "description must be text.")
            lead = self.user(entry.get("lead"), "projects", i, "lead")
            if slot is None:
                slot = Slot(key, data={"name": title, "lead": lead, "description": description})
                self.plan.projects[key] = slot
            slot.data["declared"] = True
        restricted = Project.issue_types.through.objects.values_list("project__key", "issuetype_id")
        for key, type_id in restricted:
            self.project_types.setdefault(key, set()).add(type_id)

    def catalogue(self, target: dict[str, Slot], kind: str, value: Any, where: FieldWhere) -> Slot:
        name = value.strip() if isinstance(value, str) else ""
        lowered = name.lower()
        slot = target.get(lowered)
        if slot is None:
            if not name or len(name) > 60:
                self.bad(*where, f"{kind} must be a name of 1-60 characters.")
            slot = target[lowered] = Slot(name)
            slot.data = {
                "category": status_category_guess(name),
                "is_subtask": "sub" in lowered and "task" in lowered,
                "is_epic": lowered == "epic",
            }
        if slot.new and self.strict:
            self.bad(*where, f"Unknown {kind} {name!r} (strict mode creates none).")
        return slot

    # --- tickets ----------------------------------------------------------------------

    def _tickets(self) -> None:
        by_key: dict[str, TicketPlan] = {}
        entries = self.section("tickets")
        initial = Status.objects.filter(category=Status.Category.TO_DO).order_by("order", "pk")
        status, priority = initial.first(), f.priority_default()
        defaults = {
            "status": self.plan.statuses[status.name.lower()] if status else None,
            "priority": self.plan.priorities[priority.name.lower()] if priority else None,
        }
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                self.bad("tickets", i, None, "Each ticket must be an object.")
                continue
            ticket = self._ticket(i, entry, defaults)
            if ticket is None:
                continue
            if ticket.key in by_key:
                self.bad("tickets", i, "key", f"{ticket.key} appears more than once.")
                continue
            by_key[ticket.key] = ticket
            self.plan.tickets.append(ticket)
        self._keys_free(by_key)
        self._hierarchy(by_key)
        declared_projects = [k for k, s in self.plan.projects.items() if s.data.get("declared")]
        declared_fields = [k for k, s in self.plan.custom_fields.items() if s.data.get("declared")]
        self.plan.enable_fields.update(
            (project, name) for project in declared_projects for name in declared_fields
        )

    def _ticket(self, i: int, e: dict, defaults: dict[str, Slot | None]) -> TicketPlan | None:
        t, where = TicketPlan(i), ("tickets", i)
        if self.strict:
            for name in sorted(set(e) - TICKET_FIELDS):
                self.bad(*where, name, "Unknown field.")
        raw_key = e.get("key")
        match = KEY_RE.match(raw_key.strip().upper()) if isinstance(raw_key, str) else None
        if match is None or int(match.group(2)) > MAX_NUMBER:
            self.bad(*where, "key", f"{raw_key!r} is not a ticket key (e.g. CORE-12).")
            return None
        t.key, t.number = match.group(0), int(match.group(2))
        project_key = e.get("project") or match.group(1)
        if not isinstance(project_key, str) or project_key.upper() != match.group(1):
            self.bad(*where, "project", f"The key {t.key} is not in project {project_key!r}.")
            return None
        project = self.plan.projects.get(match.group(1))
        if project is None:
            self.bad(*where, "project", f"Unknown project {match.group(1)}: not in `projects`.")
            return None
        t.project = project
        t.type = self.catalogue(self.plan.types, "type", e.get("type") or "Task", (*where, "type"))
        t.status = self._default(e, "status", self.plan.statuses, defaults, where)
        t.priority = self._default(e, "priority", self.plan.priorities, defaults, where)
        t.resolution = None
        if e.get("resolution"):
            t.resolution = self.catalogue(
                self.plan.resolutions, "resolution", e["resolution"], (*where, "resolution")
            )
        elif t.status is not None and t.status.data.get("category") == "DONE":
            t.resolution = self.plan.resolutions.get("done")
        self._type_enabled(t, where)
        t.summary = self.text(
            {"summary": e.get("summary", e.get("title"))},
            "summary",
            where,
            limit=255,
            required=True,
        )
        description = e.get("description") or ""
        if not isinstance(description, str) or len(description) > 100_000:
            self.bad(*where, "description", "description must be text (at most 100000).")
        t.description = description
        t.labels = self._clean(e.get("labels"), where, "labels") or []
        t.components = self._parts(e, "components", t.project, self.plan.components, where)
        t.versions = self._parts(e, "fix_versions", t.project, self.plan.versions, where)
        t.assignee = self.user(e.get("assignee"), *where, "assignee")
        t.reporter = self.user(e.get("reporter"), *where, "reporter")
        watchers = e.get("watchers") or []
        if not isinstance(watchers, list):
            self.bad(*where, "watchers", "watchers must be a list of users.")
            watchers = []
        found = [self.user(w, *where, "watchers") for w in watchers]
        t.watchers = list({id(s): s for s in (t.reporter, t.assignee, *found) if s}.values())
        t.created = self._time(e.get("created"), where, "created", self.now)
        t.updated = self._time(e.get("updated"), where, "updated", t.created)
        t.resolved = self._time(e.get("resolved"), where, "resolved", None)
        if t.resolved is None and t.status is not None and t.status.data.get("category") == "DONE":
            t.resolved = t.updated
        t.due = self._clean(e.get("due", e.get("due_date")), where, "due")
        t.time_spent = 0
        for name in ("story_points", "original_estimate", "remaining_estimate", "time_spent"):
            value = e.get(name)
            setattr(t, name, None if value is None else self._clean(value, where, name))
        t.time_spent = t.time_spent or 0
        for name in ("parent", "epic"):
            ref = e.get(name)
            if ref is not None and not (isinstance(ref, str) and KEY_RE.match(ref.strip().upper())):
                self.bad(*where, name, f"{ref!r} is not a ticket key.")
                ref = None
            setattr(t, name, ref.strip().upper() if ref else None)
        t.custom = self._custom(e.get("custom_fields"), t, where)
        t.comments = self._comments(e.get("comments"), t, where)
        t.history = self._history(e.get("history"), t, where)
        t.sprints = ticket_sprints_validate(self, e.get("sprints"), t, where)
        return t

    def _default(self, e: dict, name: str, target: dict, defaults: dict, where: Where) -> Any:
        if e.get(name) is None:
            if defaults[name] is None:
                self.bad(*where, name, f"No {name} given and the workspace has no default.")
            return defaults[name]
        return self.catalogue(target, name, e[name], (*where, name))

    def _type_enabled(self, t: TicketPlan, where: Where) -> None:
        enabled = self.project_types.get(t.project.name)
        if not enabled or t.type.id in enabled:
            return
        if self.strict:
            self.bad(
                *where, "type", f"Issue type {t.type.name} is not enabled in {t.project.name}."
            )
        self.plan.enable_types.add((t.project.name, t.type.name.lower()))

    def _clean(self, value: Any, where: Where, name: str, cf: CustomField | None = None) -> Any:
        """`CLEANERS[name](value)` (or a custom field's), remembered per value: an
        import repeats the same few values many times."""
        if value is None:
            return None
        try:
            key = (name, id(cf), type(value), tuple(value) if type(value) is list else value)
            result = self.memo.get(key, self.memo)
        except TypeError:  # unhashable
            key, result = None, self.memo
        if result is self.memo:
            try:
                result = f.custom_value_clean(cf, value) if cf else CLEANERS[name](value)
            except f.FieldError as exc:
                result = exc
            if key is not None:
                self.memo[key] = result
        if isinstance(result, f.FieldError):
            self.bad(*where, name if cf is None else result.field, result.message)
            return None
        return result

    def _time(self, value: Any, where: Where, name: Any, default: Any) -> Any:
        if value is None:
            return default
        try:
            parsed = datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except (TypeError, ValueError):
            self.bad(*where, name, f"{value!r} is not an ISO 8601 date-time.")
            return default

    def _parts(self, e: dict, name: str, project: Slot, target: dict, where: Where) -> list:
        value = e.get(name)
        if value is None:
            return []
        if not isinstance(value, list) or not all(
            isinstance(v, str) and 0 < len(v.strip()) <= 100 for v in value
        ):
            self.bad(*where, name, f"{name} must be a list of names (1-100 characters).")
            return []
        slots = {}
        for v in value:
            key = (project.name, v.strip().lower())
            slots[key] = target.get(key) or target.setdefault(key, Slot(v.strip()))
        return list(slots.values())

    def _custom(self, value: Any, t: TicketPlan, where: Where) -> list[tuple[Slot, Any]]:
        if value is None:
            return []
        if not isinstance(value, dict):
            self.bad(*where, "custom_fields", "custom_fields must be an object.")
            return []
        cleaned = []
        for name, raw in value.items():
            slot = self.plan.custom_fields.get(str(name).lower())
            if slot is None:
                self.bad(*where, ("custom_fields", name), f"Unknown custom field {name!r}.")
                continue
            cf = slot.data["field"]
            if cf.type == CustomField.Type.USER:
                user = self.user(raw, *where, ("custom_fields", name))
                if user is not None:
                    cleaned.append((slot, user))
                    self.plan.enable_fields.add((t.project.name, str(name).lower()))
                continue
            result = self._clean(raw, where, "custom_fields", cf)
            if result is not None:
                cleaned.append((slot, result))
                self.plan.enable_fields.add((t.project.name, str(name).lower()))
        return cleaned

    def _list(self, value: Any, where: Where, name: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.bad(*where, name, f"{name} must be a list of objects.")
            return []
        return value

    def _comments(self, value: Any, t: TicketPlan, where: Where) -> list[tuple]:
        comments = []
        for n, c in enumerate(self._list(value, where, "comments")):
            body = c.get("body")
            if not isinstance(body, str) or not body.strip() or len(body) > 100_000:
                self.bad(*where, ("comments", n, "body"), "body must be text (1-100000 chars).")
            author = self.user(c.get("author"), *where, ("comments", n, "author"))
            created = self._time(c.get("created"), where, ("comments", n, "created"), t.created)
            comments.append((author, body, created))
        return comments

    def _history(self, value: Any, t: TicketPlan, where: Where) -> list[tuple]:
        rows = []
        scalar = (str, int, float)
        for n, h in enumerate(self._list(value, where, "history")):
            name = h.get("field")
            if not isinstance(name, str) or not 0 < len(name.strip()) <= 64:
                self.bad(*where, ("history", n, "field"), "field must be a name (1-64 chars).")
                continue
            name = HISTORY_FIELD_ALIASES.get(name.strip().lower(), name.strip())
            lookup = self.history_refs.get(name.lower())
            old, new = h.get("from"), h.get("to")
            if old is not None and not isinstance(old, scalar):
                self.bad(*where, ("history", n, "from"), "must be text, a number or null.")
                old = None
            if new is not None and not isinstance(new, scalar):
                self.bad(*where, ("history", n, "to"), "must be text, a number or null.")
                new = None
            old_ref = new_ref = None
            if old is not None:
                old = str(old)
                if lookup:
                    old_ref = lookup.get(old) or lookup.get(old.strip().lower())
            if new is not None:
                new = str(new)
                if lookup:
                    new_ref = lookup.get(new) or lookup.get(new.strip().lower())
            by = self.user(h.get("by"), *where, ("history", n, "by"))
            at = self._time(h.get("at"), where, ("history", n, "at"), t.created)
            rows.append((name, old, new, old_ref, new_ref, by, at))
        return rows

    def _keys_free(self, by_key: dict[str, TicketPlan]) -> None:
        table = Ticket._meta.db_table
        numbers: dict[int, list[int]] = {}
        for t in by_key.values():
            if not t.project.new:
                numbers.setdefault(t.project.id, []).append(t.number)
        with connection.cursor() as cursor:
            # One array parameter, not thousands of placeholders.
            cursor.execute(
                f"SELECT key FROM {table} WHERE key = ANY(%s)",  # noqa: S608
                [list(by_key)],
            )
            taken = {row[0] for row in cursor.fetchall()}
            for project_id, nums in numbers.items():
                cursor.execute(
                    f"SELECT p.key || '-' || t.number FROM {table} t "  # noqa: S608
                    f"JOIN {Project._meta.db_table} p ON p.id = t.project_id "
                    "WHERE t.project_id = %s AND t.number = ANY(%s)",
                    [project_id, nums],
                )
                taken.update(row[0] for row in cursor.fetchall())
        for key in sorted(taken & set(by_key), key=lambda k: by_key[k].index):
            self.bad("tickets", by_key[key].index, "key", f"{key} already exists.")

    def _hierarchy(self, by_key: dict[str, TicketPlan]) -> None:
        wanted = {
            ref
            for t in by_key.values()
            for ref in (t.parent, t.epic)
            if isinstance(ref, str) and ref not in by_key
        }
        existing = {
            row["key"]: row
            for row in Ticket.objects.filter(key__in=wanted).values(
                "id", "key", "project_id", "parent_id", "issue_type__is_epic"
            )
        }
        for t in by_key.values():
            where = ("tickets", t.index)
            if isinstance(t.parent, str):
                self._parent(t, by_key.get(t.parent), existing.get(t.parent), where)
            elif t.type.data.get("is_subtask"):
                self.bad(*where, "parent", "A sub-task needs a parent.")
            if isinstance(t.epic, str):
                self._epic(t, by_key.get(t.epic), existing.get(t.epic), where)

    def _parent(self, t: TicketPlan, inner: Any, outer: Any, where: Where) -> None:
        ref = t.parent
        if inner is None and outer is None:
            self.bad(*where, "parent", f"Ticket {ref} is not in the file and does not exist.")
        elif inner is t:
            self.bad(*where, "parent", "A ticket cannot be its own parent.")
        elif not t.type.data.get("is_subtask"):
            self.bad(*where, "parent", "Only sub-tasks have a parent; use an epic or a link.")
        elif (inner.project if inner else outer["project_id"]) not in (t.project, t.project.id):
            self.bad(*where, "parent", "A sub-task's parent must be in the same project.")
        elif (inner.parent if inner else outer["parent_id"]) is not None:
            self.bad(*where, "parent", f"{ref} is a sub-task; it cannot have sub-tasks.")
        else:
            t.parent = inner or outer["id"]

    def _epic(self, t: TicketPlan, inner: Any, outer: Any, where: Where) -> None:
        ref = t.epic
        if inner is None and outer is None:
            self.bad(*where, "epic", f"Ticket {ref} is not in the file and does not exist.")
        elif inner is t:
            self.bad(*where, "epic", "A ticket cannot be its own epic.")
        elif t.type.data.get("is_epic"):
            self.bad(*where, "epic", "An epic cannot belong to another epic.")
        elif not (inner.type.data.get("is_epic") if inner else outer["issue_type__is_epic"]):
            self.bad(*where, "epic", f"{ref} is not an epic.")
        else:
            t.epic = inner or outer["id"]


def import_validate(*, data: Any, strict: bool = False) -> ImportPlan:
    """Check the whole import (422 `ImportInvalid` listing every problem, capped at
    `MAX_ERRORS`) and resolve it into a plan. Reads only; writes nothing."""
    return _Validator(data, strict=strict).run()
