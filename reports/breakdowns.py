"""Reports over the tickets' current state: assignee workload, issue distribution by
any groupable field, and time tracking (estimates vs worklogs). One aggregate query
each over the scope's ticket ids."""

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db.models import Model

from accounts.members.models import Membership
from accounts.models import User
from reports import flow
from reports.scope import ReportScope, fetch_all, number, table
from saas.errors import Invalid
from saas.refs import db_id_or_none, has_nul
from search.jql import ast
from search.jql import fields as fs
from tickets.models import (
    Component,
    CustomField,
    IssueType,
    Priority,
    Project,
    Resolution,
    Sprint,
    Status,
    Ticket,
    Version,
    Worklog,
)

T = table(Ticket)
U = table(User)


def _created_range(scope: ReportScope) -> tuple[str, list[Any]]:
    """`from`/`to` on reports of current state narrow to tickets created in those days."""
    sql, params = "", list[Any]()
    if scope.date_from:
        sql += " AND t.created_at >= %s"
        params.append(scope.day_start(scope.date_from))
    if scope.date_to:
        sql += " AND t.created_at < %s"
        params.append(scope.day_start(scope.date_to + timedelta(days=1)))
    return sql, params


# -- assignee workload -----------------------------------------------------------------------


def _open_statuses() -> list[int]:
    # As ids, so the (project, status) and (assignee, status) indexes can be used.
    return list(Status.objects.exclude(category=Status.Category.DONE).values_list("pk", flat=True))


def workload_report(*, scope: ReportScope) -> dict[str, Any]:
    """Open (not Done-category) tickets per assignee, unassigned as its own row: counts
    by category, story points and remaining estimate (seconds)."""
    tickets_sql, tickets_params = scope.tickets_sql()
    range_sql, range_params = _created_range(scope)
    # Aggregated per (assignee, status) first, along the covering (status, assignee)
    # index of reports migration 0002, then named: no ticket row is joined or sorted.
    rows = fetch_all(
        f"""
        SELECT a.assignee_id, u.username, u.display_name,
          sum(a.n)::bigint AS open_count,
          coalesce(sum(a.n) FILTER (WHERE s.category = 'TO_DO'), 0)::bigint AS to_do_count,
          coalesce(sum(a.n) FILTER (WHERE s.category = 'IN_PROGRESS'), 0)::bigint
            AS in_progress_count,
          coalesce(sum(a.points), 0) AS points,
          sum(a.unestimated)::bigint AS unestimated_count,
          coalesce(sum(a.remaining), 0) AS remaining_estimate
        FROM (
          SELECT t.assignee_id, t.status_id, count(*) AS n, sum(t.story_points) AS points,
                 count(*) FILTER (WHERE t.story_points IS NULL) AS unestimated,
                 sum(t.remaining_estimate) AS remaining
          FROM ({tickets_sql}) t
          WHERE t.status_id = ANY(%s) {range_sql}
          GROUP BY t.assignee_id, t.status_id
        ) a JOIN {table(Status)} s ON s.id = a.status_id
        LEFT JOIN {U} u ON u.id = a.assignee_id
        GROUP BY a.assignee_id, u.username, u.display_name
        ORDER BY sum(a.n) DESC, u.username NULLS LAST
        """,  # noqa: S608
        [*tickets_params, _open_statuses(), *range_params],
    )
    for row in rows:
        row["points"] = number(row["points"])
        row["remaining_estimate"] = int(row["remaining_estimate"])
    return {
        "rows": rows,
        "total": {
            "open_count": sum(r["open_count"] for r in rows),
            "points": number(sum(r["points"] for r in rows)),
            "remaining_estimate": sum(r["remaining_estimate"] for r in rows),
        },
    }


# -- issue distribution ----------------------------------------------------------------------


@dataclass(frozen=True)
class Grouping:
    """How to group tickets by a field: joins after `FROM tickets t`, the group's key
    and label expressions, and the label of tickets without a value."""

    name: str
    joins: str
    key: str
    label: str
    none: str = "None"
    multi: bool = False  # a ticket may fall in several groups
    # The joins yield each (ticket, group) at most once, so a group's tickets are its
    # rows: counted with count(*) (a hash aggregate) rather than count(DISTINCT id).
    once: bool = True
    # A ticket's groups as an array expression over `t` (instead of joins): tickets are
    # counted per distinct array, and only the distinct arrays are unnested.
    array: str | None = None


def _ref(name: str, column: str, model: type[Model], label: str = "g.name") -> Grouping:
    return Grouping(name, f"LEFT JOIN {table(model)} g ON g.id = t.{column}", "g.id", label)


def _user(name: str, column: str) -> Grouping:
    return Grouping(
        name,
        f"LEFT JOIN {U} g ON g.id = t.{column}",
        "g.id",
        "coalesce(nullif(g.display_name, ''), g.username)",
        "Unassigned" if column == "assignee_id" else "None",
    )


def _m2m(name: str, relation: str, model: type[Model]) -> Grouping:
    through = Ticket._meta.get_field(relation).remote_field.through  # type: ignore[union-attr]
    column = f"{model._meta.model_name}_id"
    return Grouping(
        name,
        f"LEFT JOIN {table(through)} x ON x.ticket_id = t.id"
        f" LEFT JOIN {table(model)} g ON g.id = x.{column}",
        "g.id",
        "g.name",
        multi=True,
    )


GROUPINGS = {
    "status": _ref("status", "status_id", Status),
    "statuscategory": Grouping(
        "statusCategory",
        f"JOIN {table(Status)} g ON g.id = t.status_id",
        "g.category",
        "CASE g.category WHEN 'TO_DO' THEN 'To Do' WHEN 'IN_PROGRESS' THEN 'In Progress'"
        " ELSE 'Done' END",
    ),
    "priority": _ref("priority", "priority_id", Priority),
    "issuetype": _ref("issuetype", "issue_type_id", IssueType),
    "resolution": _ref("resolution", "resolution_id", Resolution, "coalesce(g.name, 'Unresolved')"),
    "project": _ref("project", "project_id", Project, "g.key"),
    "assignee": _user("assignee", "assignee_id"),
    "reporter": _user("reporter", "reporter_id"),
    "creator": _user("creator", "creator_id"),
    "labels": Grouping("labels", "", "", "", multi=True, array="t.labels"),
    "component": _m2m("component", "components", Component),
    "fixversion": _m2m("fixVersion", "fix_versions", Version),
    "sprint": _ref("sprint", "sprint_id", Sprint),
    "epic link": Grouping(
        "epic", f"LEFT JOIN {T} g ON g.id = t.epic_id", "g.id", "g.key || ' ' || g.summary"
    ),
}
_CF_RE = re.compile(r"^cf\[(\d{1,18})\]$", re.IGNORECASE)
GROUPABLE_CUSTOM = ("select", "multiselect", "user", "text")


def _custom_grouping(cf: CustomField) -> Grouping:
    key = str(cf.pk)
    if cf.type == "multiselect":
        return Grouping(
            cf.name,
            "LEFT JOIN LATERAL jsonb_array_elements_text(CASE WHEN jsonb_typeof("
            f"t.custom_fields -> '{key}') = 'array' THEN t.custom_fields -> '{key}'"
            " ELSE '[]'::jsonb END) g(v) ON true",
            "g.v",
            "g.v",
            multi=True,
            once=False,  # a JSON array may repeat a value
        )
    value = f"jsonb_extract_path_text(t.custom_fields, '{key}')"
    if cf.type == "user":
        return Grouping(
            cf.name,
            f"LEFT JOIN {U} g ON g.id = (CASE WHEN {value} ~ '^[0-9]{{1,18}}$'"
            f" THEN {value}::bigint END)",
            "g.id",
            "coalesce(nullif(g.display_name, ''), g.username)",
        )
    return Grouping(cf.name, "", value, value)


def grouping_for(text: str) -> Grouping:
    """The grouping of a field named as in JQL (`status`, `fixVersion`, `Severity`,
    `cf[10001]`); 422 `field_not_groupable` for an unknown or ungroupable field."""
    name = " ".join(text.strip().lower().split())
    if name in ("sprint", "epic", "epic link", "epiclink"):
        return GROUPINGS["sprint" if name == "sprint" else "epic link"]
    match = _CF_RE.match(name)
    try:
        if has_nul(name):
            raise ast.JqlError("bad field", None)
        node = ast.Field(
            name=name,
            pos=None,  # type: ignore[arg-type]
            custom_id=int(match.group(1)) if match else None,
        )
        spec = fs.field_spec(node)
    except ast.JqlError as exc:
        raise Invalid(
            f"Field '{text}' does not exist.",
            code="field_not_groupable",
            details={"field": text},
        ) from exc
    if spec.kind == fs.CUSTOM and spec.custom.type in GROUPABLE_CUSTOM:
        return _custom_grouping(spec.custom)
    grouping = GROUPINGS.get(spec.name.lower())
    if grouping is None:
        raise Invalid(
            f"Tickets cannot be grouped by '{text}'.",
            code="field_not_groupable",
            details={"field": text, "groupable": sorted(g.name for g in GROUPINGS.values())},
        )
    return grouping


def distribution_report(*, scope: ReportScope, group_by: str) -> dict[str, Any]:
    """Ticket counts per value of a field, largest first; multi-valued fields (labels,
    components, versions, multi selects) count a ticket once per value, so `percent` is
    of the tickets in scope and can add up to more than 100."""
    grouping = grouping_for(group_by)
    if grouping.name == "status" and not (scope.date_from or scope.date_to):
        by_status = flow.status_counts_from_snapshot(scope=scope)
        if by_status is not None:
            return _distribution_by_status(by_status)
    if grouping.array:
        rows = _distribution_of_array(scope, grouping)
    else:
        rows = _distribution_by_joins(scope, grouping)
    total = int(rows[0]["total"]) if rows else 0
    return {
        "field": grouping.name,
        "total": total,
        "rows": [
            {
                "value": row["key"],
                "label": row["label"],
                "count": row["count"],
                "percent": round(100 * row["count"] / total, 2) if total else 0,
            }
            for row in rows
        ],
    }


def _distribution_of_array(scope: ReportScope, grouping: Grouping) -> list[dict[str, Any]]:
    """Groups from an array per ticket (labels). The scope's tickets are counted per
    distinct array first (a project's labels: an index-only scan of (project) INCLUDE
    (labels), reports migration 0003, into a few thousand distinct arrays), then each
    distinct array is unnested once. An empty array stands as one NULL value (the "None"
    group); a value repeated in an array counts once (its first position only); the total
    is the number of tickets (each array's first position)."""
    tickets_sql, tickets_params = scope.tickets_sql()
    range_sql, range_params = _created_range(scope)
    return fetch_all(
        f"""
        WITH arrays AS (
          SELECT {grouping.array} AS a, count(*) AS n
          FROM ({tickets_sql}) t
          WHERE true {range_sql}
          GROUP BY 1
        ),
        nonempty AS (
          SELECT CASE WHEN cardinality(a) > 0 THEN a ELSE '{{NULL}}' END AS a, n FROM arrays
        )
        SELECT (u.v)::text AS key, coalesce(u.v, %s) AS label, sum(x.n)::bigint AS count,
          (sum(sum(x.n) FILTER (WHERE u.i = 1)) OVER ())::bigint AS total
        FROM nonempty x CROSS JOIN LATERAL unnest(x.a) WITH ORDINALITY u(v, i)
        WHERE array_position(x.a, u.v) = u.i
        GROUP BY u.v ORDER BY sum(x.n) DESC, label
        """,  # noqa: S608
        [*tickets_params, *range_params, grouping.none],
    )


def _distribution_by_joins(scope: ReportScope, grouping: Grouping) -> list[dict[str, Any]]:
    tickets_sql, tickets_params = scope.tickets_sql()
    range_sql, range_params = _created_range(scope)
    # Groups count their tickets (rows, when the joins yield a ticket once per group);
    # multi-valued fields take the total from the tickets themselves.
    count = "count(*)" if grouping.once else "count(DISTINCT id)"
    ticket_id = "" if grouping.once else "t.id, "
    total_sql = (
        f"(SELECT count(*) FROM ({tickets_sql}) t WHERE true {range_sql})"  # noqa: S608
        if grouping.multi
        else "sum(count(*)) OVER ()"
    )
    total_params = [*tickets_params, *range_params] if grouping.multi else []
    return fetch_all(
        f"""
        WITH picked AS (
          SELECT {ticket_id}({grouping.key})::text AS key, {grouping.label} AS label
          FROM ({tickets_sql}) t {grouping.joins}
          WHERE true {range_sql}
        )
        SELECT key, coalesce(label, %s) AS label, {count} AS count, {total_sql} AS total
        FROM picked GROUP BY key, label ORDER BY {count} DESC, label
        """,  # noqa: S608
        [*tickets_params, *range_params, grouping.none, *total_params],
    )


def _distribution_by_status(counts: dict[int, int]) -> dict[str, Any]:
    """The status distribution from snapshot counts (no ticket scan)."""
    names = dict(Status.objects.filter(pk__in=counts).values_list("pk", "name"))
    total = sum(counts.values())
    ordered = sorted(counts.items(), key=lambda item: (-item[1], names[item[0]]))
    return {
        "field": "status",
        "total": total,
        "rows": [
            {
                "value": str(pk),
                "label": names[pk],
                "count": n,
                "percent": round(100 * n / total, 2) if total else 0,
            }
            for pk, n in ordered
        ],
    }


# -- time tracking ---------------------------------------------------------------------------


def member_user_id(*, member: Membership, text: str) -> int:
    """A member of this tenant by id, username or email (`me` for the caller); 422."""
    value = text.strip()
    if value.lower() in ("me", "currentuser()"):
        return member.user_id
    members = Membership.objects.all()
    pk = db_id_or_none(value)
    found = None
    if not has_nul(value):
        found = (
            members.filter(user_id=pk).values_list("user_id", flat=True).first()
            if pk is not None
            else members.filter(user__username__iexact=value)
            .values_list("user_id", flat=True)
            .first()
            or members.filter(user__email__iexact=value).values_list("user_id", flat=True).first()
        )
    if found is None:
        raise Invalid(f"No member '{value}'.", code="user_not_found", details={"user": value})
    return found


def _worklog_filter(scope: ReportScope, user_id: int | None) -> tuple[str, list[Any]]:
    sql, params = "", list[Any]()
    if user_id is not None:
        sql += " AND w.author_id = %s"
        params.append(user_id)
    if scope.date_from:
        sql += " AND w.started_at >= %s"
        params.append(scope.day_start(scope.date_from))
    if scope.date_to:
        sql += " AND w.started_at < %s"
        params.append(scope.day_start(scope.date_to + timedelta(days=1)))
    return sql, params


def _per_ticket_sql(scope: ReportScope, user_id: int | None) -> tuple[str, list[Any]]:
    """Tickets with an estimate or (matching) worklogs. Time logged is summed per ticket
    by an index lookup, so a page in (project, number) order reads only its rows."""
    tickets_sql, tickets_params = scope.tickets_sql()
    wl_sql, wl_params = _worklog_filter(scope, user_id)
    narrowed = user_id is not None or scope.date_from or scope.date_to
    keep = (
        "w.logged IS NOT NULL"
        if narrowed
        else (
            "(w.logged IS NOT NULL OR t.original_estimate IS NOT NULL"
            " OR t.remaining_estimate IS NOT NULL)"
        )
    )
    sql = f"""
        SELECT t.key, t.project_id, t.number, t.summary, t.original_estimate,
               t.remaining_estimate, coalesce(w.logged, 0) AS logged
        FROM ({tickets_sql}) t LEFT JOIN LATERAL (
          SELECT sum(w.time_spent) AS logged FROM {table(Worklog)} w
          WHERE w.ticket_id = t.id {wl_sql}
        ) w ON true
        WHERE {keep}
    """  # noqa: S608
    return sql, [*tickets_params, *wl_params]


def _time_totals(
    scope: ReportScope, user_id: int | None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The report's totals and time logged per user, in one query: the matching worklogs
    of the scope's tickets are read once (through the scope's ticket ids, an index-only
    scan of (project, id) for a project, merged with the covering (ticket, started_at)
    worklog index of reports migration 0004) and summed per (ticket, user), then per
    ticket and per user (a user's tickets are their (ticket, user) groups: no DISTINCT
    sort). Without a user or date range the tickets are those with an estimate (a
    partial index) or a worklog; with one, only those with a matching worklog."""
    ids_sql, ids_params = scope.ticket_ids_sql()
    tickets_sql, tickets_params = scope.tickets_sql()
    wl_sql, wl_params = _worklog_filter(scope, user_id)
    narrowed = user_id is not None or scope.date_from or scope.date_to
    if narrowed:
        per_ticket = f"""SELECT count(*) AS tickets, sum(t.original_estimate) AS original,
              sum(l.logged) AS logged, sum(t.remaining_estimate) AS remaining
            FROM logged l JOIN {T} t ON t.id = l.ticket_id"""  # noqa: S608
        per_ticket_params: list[Any] = []
    else:
        per_ticket = f"""SELECT count(*) AS tickets, sum(e.original_estimate) AS original,
              sum(l.logged) AS logged, sum(e.remaining_estimate) AS remaining
            FROM (SELECT t.id, t.original_estimate, t.remaining_estimate
                  FROM ({tickets_sql}) t
                  WHERE t.original_estimate IS NOT NULL OR t.remaining_estimate IS NOT NULL) e
            FULL JOIN logged l ON l.ticket_id = e.id"""  # noqa: S608
        per_ticket_params = tickets_params
    rows = fetch_all(
        f"""
        WITH wl AS MATERIALIZED (
          SELECT w.ticket_id, w.author_id, sum(w.time_spent) AS logged, count(*) AS worklogs
          FROM {table(Worklog)} w
          WHERE w.ticket_id IN ({ids_sql}) {wl_sql}
          GROUP BY w.ticket_id, w.author_id
        ),
        logged AS (SELECT ticket_id, sum(logged) AS logged FROM wl GROUP BY ticket_id)
        SELECT 0 AS part, NULL::bigint AS user_id, NULL AS username, tickets,
               original, logged, remaining, NULL::bigint AS worklogs
        FROM ({per_ticket}) totals
        UNION ALL
        SELECT 1, a.author_id, u.username, a.tickets, NULL, a.logged, NULL, a.worklogs
        FROM (
          SELECT author_id, count(*) AS tickets, sum(logged) AS logged,
                 sum(worklogs)::bigint AS worklogs
          FROM wl GROUP BY author_id
        ) a LEFT JOIN {U} u ON u.id = a.author_id
        ORDER BY part, logged DESC, username
        """,  # noqa: S608
        [*ids_params, *wl_params, *per_ticket_params],
    )
    first = rows[0]
    total = {
        "tickets": first["tickets"],
        "original_estimate": first["original"],
        "logged": first["logged"],
        "remaining_estimate": first["remaining"],
    }
    users = [
        {
            "user_id": row["user_id"],
            "username": row["username"],
            "logged": row["logged"],
            "worklogs": row["worklogs"],
            "tickets": row["tickets"],
        }
        for row in rows[1:]
    ]
    return {key: int(value or 0) for key, value in total.items()}, users


_COLUMNS = "r.key, r.summary, r.original_estimate, r.remaining_estimate, r.logged"
# By project, then number (CORE-9 before CORE-10), along the (project, number) index.
_ORDER = "r.project_id, r.number"


def time_tracking_report(
    *, scope: ReportScope, user: str | None = None, offset: int = 0, limit: int = 50
) -> dict[str, Any]:
    """Original estimate vs time logged vs remaining estimate (seconds) per ticket (a
    page, by key) and in total, and time logged per user. `user` keeps the worklogs of
    one member (and the tickets they logged on); `from`/`to` keep the worklogs started in
    those days."""
    user_id = member_user_id(member=scope.member, text=user) if user else None
    base_sql, base_params = _per_ticket_sql(scope, user_id)
    tickets = fetch_all(
        f"SELECT {_COLUMNS} FROM ({base_sql}) r ORDER BY {_ORDER} LIMIT %s OFFSET %s",  # noqa: S608
        [*base_params, limit, offset],
    )
    total, users = _time_totals(scope, user_id)
    return {
        "total": {key: int(value) for key, value in total.items()},
        "tickets": tickets,
        "offset": offset,
        "limit": limit,
        "users": [{**row, "logged": int(row["logged"])} for row in users],
    }


def time_tracking_rows_sql(*, scope: ReportScope, user: str | None) -> tuple[str, list[Any]]:
    """Every per-ticket row of the time tracking report, for streaming as CSV."""
    user_id = member_user_id(member=scope.member, text=user) if user else None
    sql, params = _per_ticket_sql(scope, user_id)
    return f"SELECT {_COLUMNS} FROM ({sql}) r ORDER BY {_ORDER}", params  # noqa: S608
