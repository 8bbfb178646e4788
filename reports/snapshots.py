"""Daily status snapshots: tickets and story points per project and status at the end of
a local day, the cumulative flow's fast path on big tenants (reports.flow).

A day is computed from the current state moved back by the status changes since that
day ended (so it only reads recent history), then written in one transaction: rows of
the day are upserted, rows that fell to zero deleted, and the day marked complete.
Running it twice for the same day writes the same rows. The same job keeps the cycle
time starts of the tickets resolved since its last run (reports.cycle_starts)."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.utils import timezone

from reports.cycle_starts import cycle_starts_refresh
from reports.models import SnapshotDay, StatusSnapshot
from reports.scope import report_session_settings, table, tenant_zone
from tickets.models import Status, Ticket, TicketHistory


def snapshot_yesterday(*, tz: str) -> date:
    return timezone.now().astimezone(ZoneInfo(tz)).date() - timedelta(days=1)


@transaction.atomic
def snapshot_take(*, day: date | None = None) -> int:
    """Snapshot `day` (default: yesterday in the tenant's time zone) in the current
    tenant schema; returns the number of (project, status) rows."""
    tz = tenant_zone(getattr(connection, "tenant", None))
    day = day or snapshot_yesterday(tz=tz)
    day_end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=ZoneInfo(tz))
    snapshots = table(StatusSnapshot)
    with connection.cursor() as cursor:
        report_session_settings(cursor)
        cursor.execute(
            f"""
            WITH counted AS (
              SELECT project_id, status_id, sum(n) AS n, sum(p) AS p FROM (
                SELECT t.project_id, t.status_id, count(*) AS n,
                       coalesce(sum(t.story_points), 0) AS p
                FROM {table(Ticket)} t GROUP BY 1, 2
                UNION ALL
                SELECT t.project_id, x.s, -sum(x.delta), -sum(x.delta * coalesce(t.story_points, 0))
                FROM {table(TicketHistory)} h JOIN {table(Ticket)} t ON t.id = h.ticket_id
                CROSS JOIN LATERAL (VALUES (h.to_ref, 1), (h.from_ref, -1)) x(s, delta)
                WHERE h.field = 'status' AND h.created_at >= %s AND x.s IS NOT NULL
                GROUP BY 1, 2
              ) q
              WHERE status_id IN (SELECT id FROM {table(Status)})
              GROUP BY 1, 2 HAVING sum(n) > 0
            ),
            gone AS (
              DELETE FROM {snapshots} old WHERE old.day = %s AND NOT EXISTS (
                SELECT 1 FROM counted c
                WHERE c.project_id = old.project_id AND c.status_id = old.status_id)
            )
            INSERT INTO {snapshots} (day, project_id, status_id, tickets, points)
            SELECT %s, project_id, status_id, n, p FROM counted
            ON CONFLICT (day, project_id, status_id)
            DO UPDATE SET tickets = EXCLUDED.tickets, points = EXCLUDED.points
            """,  # noqa: S608
            [day_end, day, day],
        )
        written = cursor.rowcount
    SnapshotDay.objects.update_or_create(day=day, defaults={"taken_at": timezone.now()})
    # The daily job also keeps the cycle time starts (resolutions since the last run).
    cycle_starts_refresh()
    return written
