"""Flow reports from the history: cumulative flow (tickets per status per day), created
vs resolved, and cycle/lead time (control chart data with percentiles).

Cumulative flow never replays a ticket's whole history: a day's counts are an anchor
(the current counts, or a daily snapshot) moved by the status changes between the anchor
and that day, aggregated per day and status in SQL. Without JQL, days that have a
snapshot (reports.snapshots) are read from it directly, and the nearest snapshot is the
anchor for the others, so only the changes since the last snapshot are read."""

from datetime import date, timedelta
from typing import Any

from reports.cycle_starts import cycle_start_join_sql, in_progress_status_ids
from reports.models import SnapshotDay, StatusSnapshot
from reports.scope import ReportScope, fetch_all, table
from saas.errors import Invalid
from tickets.models import Status, TicketHistory

PERIODS = ("day", "week", "month")
MAX_POINTS = 5000


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _moved_counts(
    *, scope: ReportScope, days: list[date], anchor_day: date | None
) -> list[dict[str, Any]]:
    """Tickets per status at the end of each of `days`: the anchor's counts (a snapshot
    day, or now when None) moved back or forth by the status changes in between."""
    ids_sql, ids_params = scope.ticket_ids_sql()
    today = scope.today()
    if anchor_day is None:
        tickets_sql, tickets_params = scope.tickets_sql()
        anchor_sql = f"SELECT t.status_id AS s, count(*) AS n FROM ({tickets_sql}) t GROUP BY 1"  # noqa: S608
        anchor_params: list[Any] = tickets_params
        pivot = max(today, days[-1])
    else:
        projects_sql, projects_params = scope.project_ids().query.sql_with_params()
        anchor_sql = f"""SELECT status_id AS s, sum(tickets) AS n
                         FROM {table(StatusSnapshot)}
                         WHERE day = %s AND project_id IN ({projects_sql}) GROUP BY 1"""  # noqa: S608
        anchor_params = [anchor_day, *projects_params]
        pivot = anchor_day
    low = min(days[0], pivot)
    return fetch_all(
        f"""
        WITH anchor AS ({anchor_sql}),
        transitions AS (
          SELECT (h.created_at AT TIME ZONE %s)::date AS d, h.from_ref, h.to_ref, count(*) AS n
          FROM {table(TicketHistory)} h
          WHERE h.field = 'status' AND h.created_at >= %s AND h.ticket_id IN ({ids_sql})
          GROUP BY 1, 2, 3
        ),
        moves AS (
          SELECT m.d, x.s, sum(x.delta * m.n) AS net
          FROM transitions m
          CROSS JOIN LATERAL (VALUES (m.to_ref, 1), (m.from_ref, -1)) x(s, delta)
          WHERE x.s IS NOT NULL
          GROUP BY 1, 2
        ),
        statuses AS (SELECT s FROM anchor UNION SELECT s FROM moves),
        at_pivot AS (SELECT s, sum(net) AS net FROM moves WHERE d <= %s GROUP BY s),
        grid AS (
          SELECT days.day, st.s FROM unnest(%s::date[]) AS days(day) CROSS JOIN statuses st
        ),
        upto AS (
          SELECT g.day, g.s, coalesce(sum(m.net), 0) AS net
          FROM grid g LEFT JOIN moves m ON m.s = g.s AND m.d <= g.day
          GROUP BY g.day, g.s
        )
        SELECT u.day, u.s AS status_id, coalesce(a.n, 0) + u.net - coalesce(p.net, 0) AS count
        FROM upto u LEFT JOIN anchor a ON a.s = u.s LEFT JOIN at_pivot p ON p.s = u.s
        """,  # noqa: S608
        [
            *anchor_params,
            scope.tz,
            scope.day_start(low + timedelta(days=1)),
            *ids_params,
            pivot,
            days,
        ],
    )


def _snapshot_counts(*, scope: ReportScope, days: list[date]) -> list[dict[str, Any]]:
    projects_sql, projects_params = scope.project_ids().query.sql_with_params()
    return fetch_all(
        f"""SELECT day, status_id, sum(tickets) AS count FROM {table(StatusSnapshot)}
            WHERE day = ANY(%s::date[]) AND project_id IN ({projects_sql})
            GROUP BY day, status_id""",  # noqa: S608
        [days, *projects_params],
    )


def status_counts_from_snapshot(*, scope: ReportScope) -> dict[int, int] | None:
    """Tickets per status now, from the latest snapshot moved by the status changes since
    (cheap on big tenants); None when there is JQL or no snapshot yet."""
    if scope.has_jql:
        return None
    anchor = SnapshotDay.objects.order_by("-day").values_list("day", flat=True).first()
    if anchor is None:
        return None
    today = scope.today()
    rows = _moved_counts(scope=scope, days=[today], anchor_day=anchor)
    return {row["status_id"]: int(row["count"]) for row in rows if row["count"]}


def cumulative_flow_report(*, scope: ReportScope) -> dict[str, Any]:
    """Tickets per status at the end of each day from `from` to `to` (default: the last
    30 days), statuses in workflow order."""
    start, end = scope.window()
    days = _days(start, end)
    covered: set[date] = set()
    if not scope.has_jql:
        covered = set(
            SnapshotDay.objects.filter(day__gte=start, day__lte=end).values_list("day", flat=True)
        )
    rows = _snapshot_counts(scope=scope, days=sorted(covered)) if covered else []
    uncovered = [day for day in days if day not in covered]
    if uncovered:
        anchor = None
        if not scope.has_jql:
            anchor = (
                SnapshotDay.objects.filter(day__lte=uncovered[-1])
                .order_by("-day")
                .values_list("day", flat=True)
                .first()
            )
        rows += _moved_counts(scope=scope, days=uncovered, anchor_day=anchor)
    counts = {(row["day"], row["status_id"]): int(row["count"]) for row in rows}
    used = {status for (_, status), count in counts.items() if count}
    statuses = list(
        Status.objects.filter(pk__in=used).order_by("order", "id").values("id", "name", "category")
    )
    return {
        "from": start,
        "to": end,
        "statuses": statuses,
        "days": [
            {"day": day, "counts": [counts.get((day, s["id"]), 0) for s in statuses]}
            for day in days
        ],
        "snapshot_days": len(covered),
    }


def created_vs_resolved_report(*, scope: ReportScope, period: str = "day") -> dict[str, Any]:
    """Tickets created and resolved per day, week (from Monday) or month of `from`..`to`
    (default: the last 30 days), with running totals over the range."""
    if period not in PERIODS:
        raise Invalid(f"`period` must be one of {', '.join(PERIODS)}.", code="period_invalid")
    start, end = scope.window()
    tickets_sql, tickets_params = scope.tickets_sql()
    since, until = scope.day_start(start), scope.day_start(end + timedelta(days=1))

    # `resolved_at` ranges use the partial (resolved_at) index of reports migration 0002.
    def counted(column: str) -> tuple[str, list[Any]]:
        return (
            f"""SELECT date_trunc(%s, t.{column} AT TIME ZONE %s)::date AS bucket, count(*) AS n
                FROM ({tickets_sql}) t
                WHERE t.{column} >= %s AND t.{column} < %s
                GROUP BY 1""",  # noqa: S608
            [period, scope.tz, *tickets_params, since, until],
        )

    created_sql, created_params = counted("created_at")
    resolved_sql, resolved_params = counted("resolved_at")
    rows = fetch_all(
        f"""
        WITH buckets AS (
          SELECT b::date AS bucket FROM generate_series(
            date_trunc(%s, %s::timestamp), %s::timestamp, ('1 ' || %s)::interval) b
        ),
        created AS ({created_sql}), resolved AS ({resolved_sql})
        SELECT b.bucket, coalesce(c.n, 0) AS created, coalesce(r.n, 0) AS resolved,
          sum(coalesce(c.n, 0)) OVER w AS created_total,
          sum(coalesce(r.n, 0)) OVER w AS resolved_total
        FROM buckets b LEFT JOIN created c ON c.bucket = b.bucket
        LEFT JOIN resolved r ON r.bucket = b.bucket
        WINDOW w AS (ORDER BY b.bucket ROWS UNBOUNDED PRECEDING)
        ORDER BY b.bucket
        """,  # noqa: S608
        [period, start, end, period, *created_params, *resolved_params],
    )
    return {
        "from": start,
        "to": end,
        "period": period,
        "rows": [
            {
                "period_start": row["bucket"],
                "created": row["created"],
                "resolved": row["resolved"],
                "created_total": int(row["created_total"]),
                "resolved_total": int(row["resolved_total"]),
            }
            for row in rows
        ],
    }


def _hours(values: Any) -> list[float | None]:
    return [None if v is None else round(float(v), 2) for v in (values or [None, None, None])]


def cycle_time_report(*, scope: ReportScope, limit: int = 500) -> dict[str, Any]:
    """Tickets resolved in `from`..`to` (default: the last 30 days): lead time (created →
    resolved) and cycle time (first move into an In Progress status → resolved) in hours,
    one point per ticket by resolution time (at most `limit`), and count, mean, p50, p85
    and p95 over all of them (percentile_cont).

    The start of a ticket's cycle comes from its CycleStart row when that holds
    (reports.cycle_starts: joined by resolution time), else from the status history
    (one probe of the partial (ticket, created_at) index of reports migration 0002,
    with the In Progress statuses as ids)."""
    start, end = scope.window()
    tickets_sql, tickets_params = scope.tickets_sql()
    since, until = scope.day_start(start), scope.day_start(end + timedelta(days=1))
    base = f"""
        WITH done AS NOT MATERIALIZED (
          SELECT t.key, t.created_at, t.resolved_at,
            CASE WHEN c.ticket_id IS NULL THEN s.started_at ELSE c.started_at END AS started_at
          FROM ({tickets_sql}) t
          {cycle_start_join_sql(ticket="t")}
          CROSS JOIN LATERAL (
            SELECT min(h.created_at) AS started_at FROM {table(TicketHistory)} h
            WHERE c.ticket_id IS NULL
              AND h.ticket_id = t.id AND h.field = 'status' AND h.to_ref = ANY(%s)
              AND h.created_at <= t.resolved_at
          ) s
          WHERE t.resolved_at >= %s AND t.resolved_at < %s
        ),
        measured AS NOT MATERIALIZED (
          SELECT *, extract(epoch FROM resolved_at - created_at) / 3600.0 AS lead_hours,
                 extract(epoch FROM resolved_at - started_at) / 3600.0 AS cycle_hours
          FROM done
        )"""  # noqa: S608
    in_progress = in_progress_status_ids()
    params = [*tickets_params, since, until, in_progress, in_progress, since, until]
    # One query for the statistics (first row) and the points. `done` is not
    # materialized: the statistics stream it (nothing is stored but the percentiles'
    # sorts; OFFSET 0 keeps `measured` a subquery there, so each row's hours are
    # computed once, not once per aggregate reading them), and the points read the
    # (resolved_at) index in order and stop after `limit` rows.
    rows = fetch_all(
        f"""{base}
        SELECT 0 AS part, count(*) AS count, count(cycle_hours) AS cycle_count,
          avg(lead_hours) AS lead_mean, avg(cycle_hours) AS cycle_mean,
          percentile_cont(ARRAY[0.5, 0.85, 0.95]) WITHIN GROUP (ORDER BY lead_hours) AS lead_p,
          percentile_cont(ARRAY[0.5, 0.85, 0.95]) WITHIN GROUP (ORDER BY cycle_hours) AS cycle_p,
          NULL AS key, NULL::timestamptz AS created_at, NULL::timestamptz AS started_at,
          NULL::timestamptz AS resolved_at, NULL::float AS lead_hours, NULL::float AS cycle_hours
        FROM (SELECT lead_hours, cycle_hours FROM measured OFFSET 0) m
        UNION ALL
        (SELECT 1, NULL, NULL, NULL, NULL, NULL, NULL, key, created_at, started_at, resolved_at,
               round(lead_hours::numeric, 2)::float, round(cycle_hours::numeric, 2)::float
         FROM measured ORDER BY resolved_at, key LIMIT %s)
        ORDER BY part, resolved_at, key""",  # noqa: S608
        [*params, limit],
    )
    stats = rows[0]
    points = [
        {
            name: row[name]
            for name in (
                "key",
                "created_at",
                "started_at",
                "resolved_at",
                "lead_hours",
                "cycle_hours",
            )
        }
        for row in rows[1:]
    ]

    def summary(kind: str, count: int) -> dict[str, Any]:
        p50, p85, p95 = _hours(stats[f"{kind}_p"])
        mean = stats[f"{kind}_mean"]
        return {
            "count": count,
            "mean": None if mean is None else round(float(mean), 2),
            "p50": p50,
            "p85": p85,
            "p95": p95,
        }

    return {
        "from": start,
        "to": end,
        "lead_time": summary("lead", stats["count"]),
        "cycle_time": summary("cycle", stats["cycle_count"]),
        "points": points,
    }
