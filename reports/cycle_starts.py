"""Cycle time starts kept per resolved ticket (reports.models.CycleStart), so the cycle
time report reads them by resolution time instead of searching the status history of
each ticket resolved in its range (79,000 index probes for 30 days of the 2,000,000-ticket
bench tenant).

A start is the first move into an In Progress status at or before the resolution. It
cannot change while the ticket stays resolved at the same instant: status history is
append-only and written at the time of the change, so later rows come after the
resolution. The rows are written for resolutions older than SETTLE (a transaction that
resolves a ticket commits its history rows with it, long before that), refreshed when
a ticket was resolved again (its `resolved_at` differs; only tickets updated since the
previous run are looked at), and all recomputed when the set of In Progress statuses
changed (CycleStartBasis). The report falls back to the history for any ticket without
a matching row, so the rows only ever make it faster, never different."""

from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from reports.models import CycleStart, CycleStartBasis
from reports.scope import report_session_settings, table
from tickets.models import Status, Ticket, TicketHistory

SETTLE = timedelta(minutes=5)
# Tickets updated this long before the previous run are looked at again (transactions
# that were still open then).
CHANGED_MARGIN = timedelta(hours=1)


def in_progress_status_ids() -> list[int]:
    """The ids of the In Progress category's statuses, ascending."""
    return sorted(
        Status.objects.filter(category=Status.Category.IN_PROGRESS).values_list("pk", flat=True)
    )


@transaction.atomic
def cycle_starts_refresh() -> int:
    """Write the missing or outdated cycle starts of the current tenant schema; returns
    the number of rows written. Idempotent: a second run writes nothing."""
    statuses = in_progress_status_ids()
    basis = CycleStartBasis.objects.select_for_update().order_by("pk").first()
    changed_sql, changed_params = "", []
    if basis is None or basis.in_progress != statuses:
        CycleStart.objects.all().delete()
        CycleStartBasis.objects.all().delete()
        basis = CycleStartBasis.objects.create(in_progress=statuses)
    else:
        # Since the last run, only tickets written since can have been resolved (again):
        # every change of `resolved_at` sets `updated_at` (an index). A ticket missed
        # (an import keeping old times) is read from the history by the report.
        changed_sql = "AND t.updated_at >= %s"
        changed_params = [basis.refreshed_at - CHANGED_MARGIN]
    started = timezone.now()
    until = started - SETTLE
    with connection.cursor() as cursor:
        report_session_settings(cursor)
        cursor.execute(
            f"""
            INSERT INTO {table(CycleStart)} (ticket_id, resolved_at, started_at)
            SELECT t.id, t.resolved_at, (
                SELECT min(h.created_at) FROM {table(TicketHistory)} h
                WHERE h.ticket_id = t.id AND h.field = 'status' AND h.to_ref = ANY(%s)
                  AND h.created_at <= t.resolved_at
              )
            FROM {table(Ticket)} t
            WHERE t.resolved_at < %s {changed_sql} AND NOT EXISTS (
              SELECT 1 FROM {table(CycleStart)} c
              WHERE c.ticket_id = t.id AND c.resolved_at = t.resolved_at)
            -- in resolution order, so a range of resolutions is a range of the heap
            ORDER BY t.resolved_at
            ON CONFLICT (ticket_id) DO UPDATE
            SET resolved_at = EXCLUDED.resolved_at, started_at = EXCLUDED.started_at
            """,  # noqa: S608
            [statuses, until, *changed_params],
        )
        written = cursor.rowcount
    CycleStartBasis.objects.filter(pk=basis.pk).update(refreshed_at=started)
    return written


def cycle_start_join_sql(*, ticket: str) -> str:
    """`LEFT JOIN` of the cycle start row of `ticket` (a table alias having `id` and
    `resolved_at`) as `c`, when it holds for the ticket's current resolution and the
    current In Progress statuses. Parameters, in order: the range's start and end (on
    `resolved_at`, so the rows are read by their index) and the In Progress ids."""
    return f"""LEFT JOIN {table(CycleStart)} c ON c.ticket_id = {ticket}.id
          AND c.resolved_at = {ticket}.resolved_at
          AND c.resolved_at >= %s AND c.resolved_at < %s
          AND %s::bigint[] = (SELECT b.in_progress FROM {table(CycleStartBasis)} b
                              ORDER BY b.id LIMIT 1)"""  # noqa: S608
