"""The JQL field registry: what each field is, which operators it takes, how it
sorts, and how its values resolve to ids (closed fields must resolve every value).

Backend-neutral: `FieldSpec` says *what* a field is; a backend (compile_postgres)
says how to query it.
"""

from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from accounts.members.models import Membership
from accounts.models import User
from saas.refs import MAX_DB_ID, db_id_valid, has_nul, is_digits
from search.jql import ast
from search.jql.ast import JqlError

EQUALITY = frozenset({"=", "!=", "in", "not in", "is", "is not"})
RANGE = frozenset({">", ">=", "<", "<="})
TEXT = frozenset({"~", "!~", "is", "is not"})
HISTORY = frozenset({"was", "was in", "was not", "was not in", "changed"})

# Kinds of field (how values are read and compared).
REF = "ref"  # a closed catalogue: status, priority, type, resolution, project
USER = "user"
TEXT_FIELD = "text"
TEXT_ALL = "textall"  # text: summary, description, comments
COMMENT = "comment"
DATETIME = "datetime"
DATE = "date"
NUMBER = "number"
LABELS = "labels"
KEY = "key"
M2M = "m2m"  # component, fixVersion
CATEGORY = "statuscategory"
TICKET = "ticket"  # parent, epic
WATCHER = "watcher"
CUSTOM = "custom"
FILTER = "filter"  # a saved filter: its query compiled in place
SPRINT = "sprint"  # the sprints a ticket is or was in (see search/jql/sprints.py)
VIEWED = "viewed"  # lastViewed: when the caller last opened the ticket (search/jql/views.py)


@dataclass(frozen=True)
class FieldSpec:
    name: str  # as Jira names it in messages
    kind: str
    operators: frozenset[str]
    column: str | None = None  # Ticket attribute (FK columns without _id)
    catalogue: str | None = None  # tickets model name for REF / M2M values
    order: tuple[str, ...] = ()  # ORDER BY expressions (Django lookups); () = unsortable
    history: str | None = None  # TicketHistory.field
    custom: Any = None  # the CustomField


_SPECS = [
    FieldSpec("project", REF, EQUALITY, "project", "Project", ("project__key",)),
    FieldSpec("key", KEY, EQUALITY | RANGE, None, None, ("project__key", "number")),
    FieldSpec(
        "issuetype",
        REF,
        EQUALITY | HISTORY,
        "issue_type",
        "IssueType",
        ("issue_type__order", "issue_type__name"),
        "type",
    ),
    FieldSpec(
        "status",
        REF,
        EQUALITY | HISTORY,
        "status",
        "Status",
        ("status__order", "status__name"),
        "status",
    ),
    FieldSpec("statusCategory", CATEGORY, EQUALITY, "status", None, ("status__category",)),
    FieldSpec(
        "priority",
        REF,
        EQUALITY | RANGE | HISTORY,
        "priority",
        "Priority",
        ("priority__rank",),
        "priority",
    ),
    FieldSpec(
        "resolution",
        REF,
        EQUALITY | HISTORY,
        "resolution",
        "Resolution",
        ("resolution__order",),
        "resolution",
    ),
    FieldSpec(
        "assignee",
        USER,
        EQUALITY | HISTORY,
        "assignee",
        None,
        ("assignee__display_name", "assignee__username"),
        "assignee",
    ),
    FieldSpec(
        "reporter",
        USER,
        EQUALITY | HISTORY,
        "reporter",
        None,
        ("reporter__display_name", "reporter__username"),
        "reporter",
    ),
    FieldSpec(
        "creator",
        USER,
        EQUALITY,
        "creator",
        None,
        ("creator__display_name", "creator__username"),
    ),
    FieldSpec("summary", TEXT_FIELD, TEXT, "summary", None, ("summary",)),
    FieldSpec("description", TEXT_FIELD, TEXT, "description", None, ("description",)),
    FieldSpec("comment", COMMENT, frozenset({"~", "!~"})),
    FieldSpec("text", TEXT_ALL, frozenset({"~", "!~"})),
    FieldSpec("labels", LABELS, EQUALITY | HISTORY, "labels", history="labels"),
    FieldSpec("component", M2M, EQUALITY | HISTORY, "components", "Component", (), "components"),
    FieldSpec("fixVersion", M2M, EQUALITY | HISTORY, "fix_versions", "Version", (), "fix_versions"),
    FieldSpec("created", DATETIME, EQUALITY | RANGE, "created_at", None, ("created_at",)),
    FieldSpec("updated", DATETIME, EQUALITY | RANGE, "updated_at", None, ("updated_at",)),
    FieldSpec("resolved", DATETIME, EQUALITY | RANGE, "resolved_at", None, ("resolved_at",)),
    FieldSpec("due", DATE, EQUALITY | RANGE, "due_date", None, ("due_date",)),
    FieldSpec(
        "parent", TICKET, EQUALITY, "parent", None, ("parent__project__key", "parent__number")
    ),
    FieldSpec("Epic Link", TICKET, EQUALITY, "epic", None, ("epic__project__key", "epic__number")),
    FieldSpec("Story Points", NUMBER, EQUALITY | RANGE, "story_points", None, ("story_points",)),
    FieldSpec("watcher", WATCHER, EQUALITY),
    FieldSpec(
        "sprint",
        SPRINT,
        EQUALITY,
        "sprint",
        "Sprint",
        ("sprint__sequence", "sprint__id"),
    ),
    FieldSpec("lastViewed", VIEWED, RANGE | frozenset({"is", "is not"}), None, None, ("viewed",)),
    FieldSpec("filter", FILTER, frozenset({"=", "!=", "in", "not in"})),
]
SYSTEM_FIELDS = {spec.name.lower(): spec for spec in _SPECS}
ALIASES = {
    "issue": "key",
    "issuekey": "key",
    "id": "key",
    "type": "issuetype",
    "createddate": "created",
    "updateddate": "updated",
    "resolutiondate": "resolved",
    "duedate": "due",
    "epic": "epic link",
    "epiclink": "epic link",
    "storypoints": "story points",
    "watchers": "watcher",
    "component": "component",
    "components": "component",
    "fixversions": "fixversion",
    "label": "labels",
    "category": "statuscategory",
    "savedfilter": "filter",
    "request": "filter",
    "sprints": "sprint",
    "lastviewed": "lastviewed",
}


def field_spec(node: ast.Field) -> FieldSpec:
    """The spec of a field as written, or JqlError for an unknown field."""
    from tickets.models import CustomField

    if node.custom_id is not None:
        cf = (
            CustomField.objects.filter(pk=node.custom_id).first()
            if node.custom_id <= MAX_DB_ID
            else None
        )
        if cf is None:
            raise JqlError(
                f"Field 'cf[{node.custom_id}]' does not exist or you do not have permission "
                "to view it",
                node.pos,
            )
        return _custom_spec(cf)
    name = " ".join(node.name.lower().split())
    name = ALIASES.get(name, name)
    if name in SYSTEM_FIELDS:
        return SYSTEM_FIELDS[name]
    cf = CustomField.objects.filter(name__iexact=name).first() if not has_nul(name) else None
    if cf is None:
        raise JqlError(
            f"Field '{node.name}' does not exist or you do not have permission to view it",
            node.pos,
        )
    return _custom_spec(cf)


def _custom_spec(cf: Any) -> FieldSpec:
    kind = cf.type
    if kind == "text":
        operators = TEXT
    elif kind in ("number", "date"):
        operators = EQUALITY | RANGE
    else:
        operators = EQUALITY
    return FieldSpec(cf.name, CUSTOM, operators, custom=cf)


def operator_check(spec: FieldSpec, op: str, pos: ast.Position | None) -> None:
    if op not in spec.operators:
        raise JqlError(
            f"The operator '{op.upper()}' is not supported by the '{spec.name}' field", pos
        )


def unknown_value(spec: FieldSpec, value: str, pos: ast.Position | None) -> JqlError:
    return JqlError(f"The value '{value}' does not exist for the field '{spec.name}'", pos)


# -- value resolution ----------------------------------------------------------------------


def _as_id(text: str) -> int | None:
    text = text.strip()
    if is_digits(text) and db_id_valid(int(text)):
        return int(text)
    return None


def catalogue_resolve(
    spec: FieldSpec, literals: list[ast.Literal], *, member: Membership
) -> list[int]:
    """Ids of the catalogue rows named (case-insensitively) or numbered by `literals`;
    every value must exist (Jira's closed fields)."""
    from tickets.access import projects_visible_to
    from tickets.models import Component, IssueType, Priority, Project, Resolution, Status, Version

    models = {
        "Project": Project,
        "IssueType": IssueType,
        "Status": Status,
        "Priority": Priority,
        "Resolution": Resolution,
        "Component": Component,
        "Version": Version,
    }
    model = models[spec.catalogue or ""]
    rows = projects_visible_to(member) if model is Project else model._default_manager.all()
    wanted = [lit.value.strip() for lit in literals if not has_nul(lit.value)]
    cond = Q(pk__in=[])
    for text in wanted:
        cond |= Q(name__iexact=text)
        if model is Project:
            cond |= Q(key__iexact=text)
        if _as_id(text) is not None:
            cond |= Q(pk=_as_id(text))
    found = list(
        rows.filter(cond).values_list("pk", "name", *(["key"] if model is Project else []))
    )
    ids: list[int] = []
    for lit in literals:
        text = lit.value.strip().lower()
        hits = [
            row[0]
            for row in found
            if row[1].lower() == text
            or (len(row) > 2 and row[2].lower() == text)
            or str(row[0]) == text
        ]
        if not hits:
            raise unknown_value(spec, lit.value, lit.pos)
        ids.extend(hits)
    return ids


CATEGORY_VALUES = {
    "to do": "TO_DO",
    "todo": "TO_DO",
    "new": "TO_DO",
    "to_do": "TO_DO",
    "2": "TO_DO",
    "in progress": "IN_PROGRESS",
    "indeterminate": "IN_PROGRESS",
    "in_progress": "IN_PROGRESS",
    "4": "IN_PROGRESS",
    "done": "DONE",
    "complete": "DONE",
    "3": "DONE",
}


def category_resolve(spec: FieldSpec, literals: list[ast.Literal]) -> list[str]:
    out = []
    for lit in literals:
        value = CATEGORY_VALUES.get(" ".join(lit.value.lower().split()))
        if value is None:
            raise unknown_value(spec, lit.value, lit.pos)
        out.append(value)
    return out


def users_resolve(texts: list[str], *, pos: ast.Position | None, field_name: str) -> list[int]:
    """Members of this tenant (active or not) by id, username or email."""
    members = User.objects.filter(pk__in=Membership.objects.values("user_id"))
    ids = []
    for text in texts:
        value = text.strip()
        user_id = None
        if not has_nul(value):
            cond = Q(username__iexact=value) | Q(email__iexact=value)
            if _as_id(value) is not None:
                cond |= Q(pk=_as_id(value))
            user_id = members.filter(cond).order_by("pk").values_list("pk", flat=True).first()
        if user_id is None:
            raise JqlError(f"The value '{text}' does not exist for the field '{field_name}'", pos)
        ids.append(user_id)
    return ids


def saved_filters_resolve(
    spec: FieldSpec, literals: list[ast.Literal], *, member: Membership
) -> list[Any]:
    """The saved filters visible to `member` named (case-insensitively) or numbered by
    `literals`; every value must exist."""
    from search.filter_selectors import filters_named

    found = filters_named(member=member, texts=[lit.value for lit in literals])
    result: list[Any] = []
    for lit in literals:
        text = lit.value.strip().lower()
        hits = [f for f in found if f.name.lower() == text or str(f.pk) == text]
        if not hits:
            raise unknown_value(spec, lit.value, lit.pos)
        result.extend(f for f in hits if f not in result)
    return result


def custom_option_resolve(spec: FieldSpec, lit: ast.Literal) -> str:
    options = {str(o).lower(): str(o) for o in spec.custom.options}
    value = options.get(lit.value.strip().lower())
    if value is None:
        raise unknown_value(spec, lit.value, lit.pos)
    return value
