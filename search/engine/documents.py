"""The ticket document: its mapping and how it is built from Postgres.

Every field is mapped explicitly (the root is `dynamic: strict`); custom fields live
under one object per type, keyed by the custom field's id, typed by dynamic templates
(a custom field created after the index still gets the right type). Instants are
stored as integer microseconds since the epoch so comparisons are exactly Postgres's
(an engine `date` keeps milliseconds only).

The document's external version is `updated_at` in microseconds: every change that
alters the document (fields, transitions, comments, attachments) moves `updated_at`
forward under the ticket's row lock. Watchers are the exception (adding one does not
touch the ticket), so documents are written with `external_gte`: an equal version is
rewritten with the current state, an older one is refused with 409.
"""

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.db.models import Prefetch

from tickets.models import Comment, CustomField, Ticket

ENGLISH_TEXT = {"type": "text", "analyzer": "english"}
SORTABLE_TEXT = {**ENGLISH_TEXT, "fields": {"raw": {"type": "keyword", "ignore_above": 1024}}}
KEYWORD = {"type": "keyword"}
LONG = {"type": "long"}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Long descriptions sort by their first characters only.
DESCRIPTION_SORT_CHARS = 1000


def _user_fields(prefix: str) -> dict[str, Any]:
    return {f"{prefix}_id": LONG, f"{prefix}_name": KEYWORD, f"{prefix}_username": KEYWORD}


def _ticket_ref_fields(prefix: str) -> dict[str, Any]:
    return {
        f"{prefix}_id": LONG,
        f"{prefix}_key": KEYWORD,
        f"{prefix}_project_key": KEYWORD,
        f"{prefix}_number": LONG,
    }


PROPERTIES: dict[str, Any] = {
    "id": LONG,
    "key": KEYWORD,
    "project_id": LONG,
    "project_key": KEYWORD,
    "number": LONG,
    "summary": SORTABLE_TEXT,
    "description": ENGLISH_TEXT,
    "description_sort": KEYWORD,
    # summary and description as Postgres concatenates them for `text ~`
    "summary_description": ENGLISH_TEXT,
    "empty_text": KEYWORD,  # names of the text fields that are empty
    "comments": {"type": "nested", "properties": {"body": ENGLISH_TEXT}},
    "issue_type_id": LONG,
    "issue_type_order": LONG,
    "issue_type_name": KEYWORD,
    "status_id": LONG,
    "status_order": LONG,
    "status_name": KEYWORD,
    "status_category": KEYWORD,
    "priority_id": LONG,
    "priority_rank": LONG,
    "resolution_id": LONG,
    "resolution_order": LONG,
    **_user_fields("assignee"),
    **_user_fields("reporter"),
    **_user_fields("creator"),
    "labels": KEYWORD,
    "component_ids": LONG,
    "fix_version_ids": LONG,
    "watcher_ids": LONG,
    "created_us": LONG,
    "updated_us": LONG,
    "resolved_us": LONG,
    "due_date": {"type": "date", "format": "yyyy-MM-dd"},
    "story_points": {"type": "double"},
    **_ticket_ref_fields("parent"),
    **_ticket_ref_fields("epic"),
    # the open sprint (ORDER BY sprint; membership itself is answered by Postgres)
    "sprint_id": LONG,
    "sprint_start_us": LONG,
    "sprint_sequence": LONG,
    "cf_set": LONG,  # ids of the custom fields with a value (not null, "" or [])
    "cf_nonnull": LONG,  # ids of the custom fields whose value is not JSON null
    "cf_text": {"type": "object", "dynamic": True},
    "cf_kw": {"type": "object", "dynamic": True},
    "cf_num": {"type": "object", "dynamic": True},
    "cf_date": {"type": "object", "dynamic": True},
    "cf_sort": {"type": "object", "dynamic": True},
}
DYNAMIC_TEMPLATES = [
    {"cf_text": {"path_match": "cf_text.*", "mapping": ENGLISH_TEXT}},
    {"cf_kw": {"path_match": "cf_kw.*", "mapping": KEYWORD}},
    {"cf_num": {"path_match": "cf_num.*", "mapping": {"type": "double"}}},
    {"cf_date": {"path_match": "cf_date.*", "mapping": {"type": "date", "format": "yyyy-MM-dd"}}},
    {"cf_sort": {"path_match": "cf_sort.*", "mapping": {"type": "keyword", "ignore_above": 1024}}},
]


def index_body(*, shards: int, replicas: int) -> dict[str, Any]:
    return {
        "settings": {"number_of_shards": shards, "number_of_replicas": replicas},
        "mappings": {
            "dynamic": "strict",
            "dynamic_templates": DYNAMIC_TEMPLATES,
            "properties": PROPERTIES,
        },
    }


def micros(moment: datetime | None) -> int | None:
    """Microseconds since the epoch (exact: no float on the way)."""
    if moment is None:
        return None
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def ticket_version(ticket: Ticket) -> int:
    return micros(ticket.updated_at) or 1


def _pg_text(value: Any) -> str | None:
    """The value as Postgres's `custom_fields ->> 'id'` spells it (ORDER BY text)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _custom(ticket: Ticket, fields: dict[str, CustomField]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "cf_set": [],
        "cf_nonnull": [],
        "cf_text": {},
        "cf_kw": {},
        "cf_num": {},
        "cf_date": {},
        "cf_sort": {},
    }
    for key, value in (ticket.custom_fields or {}).items():
        field = fields.get(str(key))
        if field is None or value is None:
            continue
        doc["cf_nonnull"].append(field.pk)
        if value in ("", []):
            continue
        doc["cf_set"].append(field.pk)
        doc["cf_sort"][key] = _pg_text(value)
        if field.type == "text":
            doc["cf_text"][key] = str(value)
        elif field.type == "number":
            doc["cf_num"][key] = float(value)
        elif field.type == "date":
            doc["cf_date"][key] = str(value)[:10]
        elif field.type == "multiselect":
            doc["cf_kw"][key] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
        else:  # select, user
            doc["cf_kw"][key] = str(value)
    return doc


def _user(prefix: str, user: Any) -> dict[str, Any]:
    return {
        f"{prefix}_id": user.pk if user else None,
        f"{prefix}_name": user.display_name if user else None,
        f"{prefix}_username": user.username if user else None,
    }


def _ticket_ref(prefix: str, ref: Any) -> dict[str, Any]:
    return {
        f"{prefix}_id": ref.pk if ref else None,
        f"{prefix}_key": ref.key if ref else None,
        f"{prefix}_project_key": ref.project.key if ref else None,
        f"{prefix}_number": ref.number if ref else None,
    }


def ticket_document(ticket: Ticket, fields: dict[str, CustomField]) -> dict[str, Any]:
    """The indexed source of one ticket (loaded by `tickets_for_indexing`)."""
    status, priority = ticket.status, ticket.priority
    doc: dict[str, Any] = {
        "id": ticket.pk,
        "key": ticket.key,
        "project_id": ticket.project_id,
        "project_key": ticket.project.key,
        "number": ticket.number,
        "summary": ticket.summary,
        "description": ticket.description,
        "description_sort": ticket.description[:DESCRIPTION_SORT_CHARS],
        "summary_description": f"{ticket.summary} {ticket.description}",
        "empty_text": [name for name in ("summary", "description") if getattr(ticket, name) == ""],
        "comments": [{"body": c.body} for c in ticket.comments.all()],
        "issue_type_id": ticket.issue_type_id,
        "issue_type_order": ticket.issue_type.order,
        "issue_type_name": ticket.issue_type.name,
        "status_id": status.pk,
        "status_order": status.order,
        "status_name": status.name,
        "status_category": status.category,
        "priority_id": priority.pk,
        "priority_rank": priority.rank,
        "resolution_id": ticket.resolution_id,
        "resolution_order": ticket.resolution.order if ticket.resolution else None,
        **_user("assignee", ticket.assignee),
        **_user("reporter", ticket.reporter),
        **_user("creator", ticket.creator),
        "labels": list(ticket.labels or []),
        "component_ids": [c.pk for c in ticket.components.all()],
        "fix_version_ids": [v.pk for v in ticket.fix_versions.all()],
        "watcher_ids": sorted(w.user_id for w in ticket.watchers.all()),
        "created_us": micros(ticket.created_at),
        "updated_us": micros(ticket.updated_at),
        "resolved_us": micros(ticket.resolved_at),
        "due_date": ticket.due_date.isoformat() if ticket.due_date else None,
        "story_points": float(ticket.story_points) if ticket.story_points is not None else None,
        **_ticket_ref("parent", ticket.parent),
        **_ticket_ref("epic", ticket.epic),
        "sprint_id": ticket.sprint_id,
        "sprint_start_us": micros(ticket.sprint.start_at) if ticket.sprint else None,
        "sprint_sequence": ticket.sprint.sequence if ticket.sprint else None,
        **_custom(ticket, fields),
    }
    return doc


def tickets_for_indexing(ids: Iterable[int] | None = None) -> Any:
    """Tickets with everything their documents need, in a fixed number of queries."""
    tickets = Ticket.objects.select_related(
        "project",
        "issue_type",
        "status",
        "priority",
        "resolution",
        "assignee",
        "reporter",
        "creator",
        "parent__project",
        "epic__project",
        "sprint",
    ).prefetch_related(
        Prefetch("comments", queryset=Comment.objects.only("ticket_id", "body")),
        "components",
        "fix_versions",
        "watchers",
    )
    if ids is not None:
        tickets = tickets.filter(pk__in=list(ids))
    return tickets.order_by("pk")


def custom_fields_by_id() -> dict[str, CustomField]:
    return {str(cf.pk): cf for cf in CustomField.objects.all()}
