"""Velocity and burndown, from the append-only sprint scope log (SprintChange) and the
status history: never from the tickets' current state, so closed sprints stay exact."""

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection
from django.utils import timezone

from reports.scope import ReportScope, fetch_all, number, table
from saas.errors import Invalid, NotFound
from saas.refs import db_id_or_none
from tickets.access import projects_visible_to
from tickets.models import Project, Sprint, SprintChange, Status, Ticket, TicketHistory

MAX_SPRINT_DAYS = 366


# -- velocity --------------------------------------------------------------------------------


def velocity_report(*, scope: ReportScope, sprints: int = 7) -> dict[str, Any]:
    """Committed (scope at start) vs completed (done at close, added scope included)
    story points and ticket counts of the last `sprints` closed sprints, oldest first,
    with their averages. `from`/`to` narrow to sprints completed in those local days."""
    closed = Sprint.objects.filter(
        state=Sprint.State.CLOSED, project__in=scope.project_ids(), completed_at__isnull=False
    )
    if scope.date_from:
        closed = closed.filter(completed_at__gte=scope.day_start(scope.date_from))
    if scope.date_to:
        closed = closed.filter(completed_at__lt=scope.day_start(scope.date_to + timedelta(days=1)))
    picked = list(
        closed.order_by("-completed_at", "-id").values(
            "id", "name", "project__key", "start_at", "end_at", "completed_at"
        )[:sprints]
    )
    ids_sql, ids_params = scope.sprint_ticket_filter("c.ticket_id")
    totals = {
        row["sprint_id"]: row
        for row in fetch_all(
            f"""
            SELECT c.sprint_id,
              count(*) FILTER (WHERE c.kind = 'committed') AS committed_count,
              coalesce(sum(c.points) FILTER (WHERE c.kind = 'committed'), 0) AS committed_points,
              count(*) FILTER (WHERE c.kind = 'completed') AS completed_count,
              coalesce(sum(c.points) FILTER (WHERE c.kind = 'completed'), 0) AS completed_points,
              count(*) FILTER (WHERE c.kind = 'added') AS added_count,
              count(*) FILTER (WHERE c.kind = 'removed') AS removed_count,
              count(*) FILTER (WHERE c.kind = 'not_completed') AS not_completed_count
            FROM {table(SprintChange)} c
            WHERE c.sprint_id = ANY(%s) {ids_sql}
            GROUP BY c.sprint_id
            """,  # noqa: S608
            [[row["id"] for row in picked], *ids_params],
        )
    }
    rows = []
    for sprint in reversed(picked):
        found = totals.get(sprint["id"], {})
        rows.append(
            {
                "sprint_id": sprint["id"],
                "name": sprint["name"],
                "project": sprint["project__key"],
                "start_at": sprint["start_at"],
                "end_at": sprint["end_at"],
                "completed_at": sprint["completed_at"],
                **{
                    name: number(found.get(name, 0))
                    for name in (
                        "committed_count",
                        "committed_points",
                        "completed_count",
                        "completed_points",
                        "added_count",
                        "removed_count",
                        "not_completed_count",
                    )
                },
            }
        )

    def average(name: str) -> float:
        return round(sum(row[name] for row in rows) / len(rows), 2) if rows else 0

    return {
        "sprints": rows,
        "average": {
            name: average(name)
            for name in (
                "committed_points",
                "completed_points",
                "committed_count",
                "completed_count",
            )
        },
    }


# -- burndown --------------------------------------------------------------------------------

UNITS = ("points", "count", "hours")


def _sprint_for(*, scope: ReportScope, sprint: str | None) -> Sprint | None:
    sprints = Sprint.objects.filter(project__in=projects_visible_to(scope.member).values("pk"))
    if scope.project is not None:
        sprints = sprints.filter(project_id=scope.project.pk)
    if sprint:
        pk = db_id_or_none(sprint)
        found = sprints.filter(pk=pk).first() if pk is not None else None
        if found is None:
            raise NotFound(
                f"Sprint {sprint} does not exist or you cannot see it.", code="sprint_not_found"
            )
        return found
    # Like Jira: the active sprint, else the one closed last.
    return (
        sprints.filter(state=Sprint.State.ACTIVE).order_by("-start_at", "-id").first()
        or sprints.filter(state=Sprint.State.CLOSED).order_by("-completed_at", "-id").first()
    )


def _value_sql(unit: str) -> str:
    return {
        "points": "coalesce(sc.points, 0)",
        "count": "1",
        "hours": "coalesce(sc.estimate, 0) / 3600.0",
    }[unit]


def _burndown_rows(
    *, scope: ReportScope, sprint: Sprint, unit: str, days: list[date], start: Any, cap: Any
) -> tuple[list[dict[str, Any]], int | float, list[dict[str, Any]]]:
    """Per local day the scope and the remaining work at its end (at `cap` at the
    latest), the remaining work at `start`, and the events after `start`: scope changes
    and completions (reopenings undo), oldest first. For each ticket of the sprint, its
    in-scope value (last committed/added/removed row; none once removed) counts towards
    scope, and towards remaining unless its last status then is in the Done category.

    A running total, not a ticket-by-day grid: the scope rows and status moves of the
    sprint's tickets (up to `cap`) are merged per ticket into one timeline (status rows
    through the (ticket, created_at) index, per ticket, statuses as ids); each event
    carries the change it makes to the ticket's (scope, remaining) contribution (lag()
    over the same window, so the timeline is sorted once), and a day's values are the
    sum of the changes up to its end (a window over the days); events before the first
    day count on the first day.
    The events list reads the same timeline."""
    ids_sql, ids_params = scope.sprint_ticket_filter("c.ticket_id")
    sc_ids_sql, sc_ids_params = scope.sprint_ticket_filter("sc.ticket_id")
    value = _value_sql(unit)
    # Statuses as ids (a status move is kept if it names an existing status, and is
    # done if that one is in the Done category), so the moves need no join per ticket.
    categories = dict(Status.objects.values_list("pk", "category"))
    status_ids = list(categories)
    done_ids = [pk for pk, category in categories.items() if category == Status.Category.DONE]
    rows = fetch_all(
        f"""
        WITH members AS (
          SELECT DISTINCT c.ticket_id FROM {table(SprintChange)} c
          WHERE c.sprint_id = %s {ids_sql}
        ),
        timeline AS (
          SELECT sc.ticket_id, sc.at, 0 AS src, sc.id, sc.kind, {value} AS value,
                 NULL::boolean AS done, NULL::boolean AS was_done
          FROM {table(SprintChange)} sc
          WHERE sc.sprint_id = %s AND sc.kind IN ('committed', 'added', 'removed')
            AND sc.at <= %s {sc_ids_sql}
          UNION ALL
          SELECT m.ticket_id, h.created_at, 1, h.id, 'status', NULL,
                 h.to_ref = ANY(%s::bigint[]), coalesce(h.from_ref = ANY(%s::bigint[]), false)
          FROM members m CROSS JOIN LATERAL (
            SELECT h.created_at, h.id, h.to_ref, h.from_ref FROM {table(TicketHistory)} h
            WHERE h.ticket_id = m.ticket_id AND h.field = 'status' AND h.created_at <= %s
              AND h.to_ref = ANY(%s::bigint[])
            OFFSET 0
          ) h
        ),
        states AS (
          SELECT *,
            array_agg(CASE WHEN kind <> 'removed' THEN value END)
              FILTER (WHERE src = 0) OVER w AS vals,
            array_agg(done) FILTER (WHERE src = 1) OVER w AS dones
          FROM timeline
          WINDOW w AS (PARTITION BY ticket_id ORDER BY at, src, id)
        ),
        contributions AS (
          SELECT *, lag(in_scope, 1, 0) OVER w AS prev_in_scope,
            lag(open, 1, 0) OVER w AS prev_open
          FROM (
            SELECT ticket_id, at, src, id, kind, value, done, was_done,
              vals[cardinality(vals)] AS in_scope_value,
              coalesce(vals[cardinality(vals)], 0) AS in_scope,
              CASE WHEN dones[cardinality(dones)] THEN 0
                   ELSE coalesce(vals[cardinality(vals)], 0) END AS open
            FROM states
          ) s
          WINDOW w AS (PARTITION BY ticket_id ORDER BY at, src, id)
        ),
        per_day AS (
          SELECT greatest((at AT TIME ZONE %s)::date, %s::date) AS day,
            sum(in_scope - prev_in_scope) AS scope, sum(open - prev_open) AS remaining,
            sum(open - prev_open) FILTER (WHERE at <= %s) AS at_start
          FROM contributions GROUP BY 1
        ),
        events AS (
          SELECT ticket_id, at, kind, value FROM contributions
          WHERE src = 0 AND kind IN ('added', 'removed') AND at > %s
          UNION ALL
          SELECT ticket_id, at, CASE WHEN done THEN 'completed' ELSE 'reopened' END,
                 in_scope_value
          FROM contributions
          WHERE src = 1 AND at > %s AND done <> was_done AND in_scope_value IS NOT NULL
        )
        SELECT 'day' AS row, days.day, NULL::bigint AS at_us, NULL AS kind, NULL AS key,
          NULL::numeric AS value,
          sum(p.scope) OVER upto AS scope, sum(p.remaining) OVER upto AS remaining,
          (SELECT sum(at_start) FROM per_day) AS start_remaining
        FROM (SELECT d::date AS day
              FROM generate_series(%s::date, %s::date, interval '1 day') d) days
        LEFT JOIN per_day p ON p.day = days.day
        WINDOW upto AS (ORDER BY days.day)
        UNION ALL
        SELECT 'event', (e.at AT TIME ZONE %s)::date,
          (extract(epoch FROM e.at) * 1000000)::bigint, e.kind, t.key, e.value,
          NULL, NULL, NULL
        FROM events e JOIN {table(Ticket)} t ON t.id = e.ticket_id
        ORDER BY 1, 3, 5, 2
        """,  # noqa: S608
        [
            sprint.pk,
            *ids_params,
            sprint.pk,
            cap,
            *sc_ids_params,
            done_ids,
            done_ids,
            cap,
            status_ids,
            scope.tz,
            days[0],
            start,
            start,
            start,
            days[0],
            days[-1],
            scope.tz,
        ],
    )
    by_day = [row for row in rows if row["row"] == "day"]
    # Event times come as microseconds since the epoch: exact, and thousands of them
    # convert far faster than timestamptz values are parsed by the driver.
    epoch = datetime(1970, 1, 1, tzinfo=connection.timezone)
    events = [
        {
            "at": epoch + timedelta(microseconds=row["at_us"]),
            "day": row["day"],
            "kind": row["kind"],
            "key": row["key"],
            "value": number(row["value"]),
        }
        for row in rows
        if row["row"] == "event"
    ]
    start_value = number(by_day[0]["start_remaining"]) if by_day else 0
    return by_day, start_value, events


def _sprint_days(*, scope: ReportScope, sprint: Sprint) -> list[date]:
    """Local days from the start to the planned end (or the close, if later)."""
    assert sprint.start_at is not None
    last_at = sprint.end_at or sprint.completed_at or timezone.now()
    if sprint.completed_at and sprint.completed_at > last_at:
        last_at = sprint.completed_at
    first = sprint.start_at.astimezone(_zone(scope)).date()
    last = last_at.astimezone(_zone(scope)).date()
    if (last - first).days >= MAX_SPRINT_DAYS:
        raise Invalid("The sprint is too long to chart.", code="sprint_too_long")
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _zone(scope: ReportScope) -> ZoneInfo:
    return ZoneInfo(scope.tz)


def burndown_report(*, scope: ReportScope, sprint: str | None, unit: str = "points") -> dict:
    """Remaining work per day of a sprint (its active one, or the one closed last, when
    not given) with the ideal line, the scope changes and the completions per day."""
    found = _sprint_for(scope=scope, sprint=sprint)
    if found is None or found.start_at is None:
        return {"sprint": None, "unit": unit, "start_value": 0, "days": [], "events": []}
    now = timezone.now()
    cap = min(found.completed_at or now, now)
    days = _sprint_days(scope=scope, sprint=found)
    rows, start_value, events = _burndown_rows(
        scope=scope, sprint=found, unit=unit, days=days, start=found.start_at, cap=cap
    )
    by_day = {row["day"]: row for row in rows}
    today = now.astimezone(_zone(scope)).date()
    out_days = []
    events_by_day: dict[date, list[dict[str, Any]]] = {}
    for event in events:
        events_by_day.setdefault(event["day"], []).append(event)
    for index, day in enumerate(days):
        row = by_day.get(day, {})
        future = day > today and found.completed_at is None
        on_day = events_by_day.get(day, [])

        def total(kind: str, on_day: list[dict] = on_day) -> float:
            return number(sum(e["value"] for e in on_day if e["kind"] == kind))

        out_days.append(
            {
                "day": day,
                "remaining": None if future else number(row.get("remaining")),
                "scope": None if future else number(row.get("scope")),
                "ideal": round(start_value * (1 - (index + 1) / len(days)), 2),
                "added": total("added"),
                "removed": total("removed"),
                "completed": number(total("completed") - total("reopened")),
            }
        )
    return {
        "sprint": {
            "id": found.pk,
            "name": found.name,
            "state": found.state,
            "start_at": found.start_at,
            "end_at": found.end_at,
            "completed_at": found.completed_at,
        },
        "unit": unit,
        "start_value": start_value,
        "days": out_days,
        "events": events,
    }


def sprint_progress(*, member: Any, project_ids: Any) -> list[dict[str, Any]]:
    """Done vs total (tickets and points) of the active sprints of the projects."""
    return fetch_all(
        f"""
        SELECT sp.id AS sprint_id, sp.name, p.key AS project, sp.end_at,
          count(t.id) AS total_count,
          count(t.id) FILTER (WHERE s.category = 'DONE') AS done_count,
          coalesce(sum(t.story_points), 0) AS total_points,
          coalesce(sum(t.story_points) FILTER (WHERE s.category = 'DONE'), 0) AS done_points
        FROM {table(Sprint)} sp
        JOIN {table(Project)} p ON p.id = sp.project_id
        LEFT JOIN {table(Ticket)} t ON t.sprint_id = sp.id
        LEFT JOIN {table(Status)} s ON s.id = t.status_id
        WHERE sp.state = 'active' AND sp.project_id = ANY(%s)
        GROUP BY sp.id, sp.name, p.key, sp.end_at ORDER BY p.key, sp.id
        """,  # noqa: S608
        [list(project_ids)],
    )
