"""Cycle time starts kept by the daily job (reports.cycle_starts): the rows it writes,
and that the cycle time report reads a row only while it holds for the ticket's current
resolution and the current In Progress statuses (the history otherwise)."""

from datetime import date

from django.db import connection
from django.utils.timezone import now
from django_tenants.utils import schema_context

from reports.cycle_starts import cycle_starts_refresh, in_progress_status_ids
from reports.models import CycleStart, CycleStartBasis
from reports.snapshots import snapshot_take
from tests.reports.conftest import at
from tickets.models import Status, Ticket

MARCH = {"from": "2026-03-01", "to": "2026-03-31"}
# (key, lead hours, cycle hours) of CORE's tickets resolved in March, from the history
CORE_POINTS = [
    ("CORE-1", 149.0, 29.0),
    ("CORE-3", 52.0, None),
    ("CORE-2", 216.0, 25.0),
    ("CORE-4", 314.0, 146.0),
    ("CORE-7", 24.0, 22.0),
]


def _points(api):
    body = api.get("/api/v1/reports/cycle-time", project="CORE", **MARCH).json()
    return [(p["key"], p["lead_hours"], p["cycle_hours"]) for p in body["points"]], body


def _starts(world):
    with schema_context(world.schema):
        keys = dict(Ticket.objects.values_list("pk", "key"))
        rows = sorted(
            (keys[c.ticket_id], c.resolved_at, c.started_at) for c in CycleStart.objects.all()
        )
        basis = list(CycleStartBasis.objects.values_list("in_progress", flat=True))
        in_progress = in_progress_status_ids()
    connection.set_schema_to_public()
    return rows, basis, in_progress


def _keep_starts(world):
    """The job's first run on this tenant (the tenant schema outlives a test: rows or a
    basis that other tests committed are dropped first, inside this test)."""
    with schema_context(world.schema):
        CycleStart.objects.all().delete()
        CycleStartBasis.objects.all().delete()
        written = cycle_starts_refresh()
    connection.set_schema_to_public()
    return written


def _plant(world, key, started_at):
    """Overwrite the kept start of `key` (to see which source the report reads)."""
    with schema_context(world.schema):
        pk = Ticket.objects.get(key=key).pk
        assert CycleStart.objects.filter(ticket_id=pk).update(started_at=started_at) == 1
    connection.set_schema_to_public()


def test_the_daily_job_keeps_the_start_of_every_resolved_ticket_once(world_a, agile):
    # given a tenant whose starts were never kept
    with schema_context(world_a.schema):
        CycleStart.objects.all().delete()
        CycleStartBasis.objects.all().delete()
        # when the day is snapshotted, then the job runs again
        snapshot_take(day=date(2026, 3, 31))
        again = cycle_starts_refresh()
    connection.set_schema_to_public()
    # then each resolved ticket has its first move into progress before its resolution
    rows, basis, in_progress = _starts(world_a)
    assert rows == [
        ("CORE-1", at(3, 15), at(2, 10)),
        ("CORE-2", at(6, 10), at(5, 9)),  # reopened: the move before the last resolution
        ("CORE-3", at(5, 16), None),  # never in progress
        ("CORE-4", at(10, 12), at(4, 10)),
        ("CORE-7", at(17, 10), at(16, 12)),
    ]
    assert basis == [in_progress]
    assert again == 0


def test_cycle_time_reads_the_kept_starts_with_the_same_figures(admin_a, world_a, agile):
    # given the kept starts
    assert _keep_starts(world_a) == 5
    # when
    points, body = _points(admin_a)
    # then the figures are those computed from the history
    assert points == CORE_POINTS
    assert body["cycle_time"] == {
        "count": 4,
        "mean": 55.5,
        "p50": 27.0,
        "p85": 93.35,
        "p95": 128.45,
    }
    # and a kept start is what the report reads (CORE-1's moved one hour later)
    _plant(world_a, "CORE-1", at(2, 11))
    assert _points(admin_a)[0][0] == ("CORE-1", 149.0, 28.0)


def test_a_ticket_resolved_again_is_read_from_the_history_until_the_job_runs(
    admin_a, world_a, agile
):
    # given kept starts, CORE-1's altered (so a read of it would show)
    assert _keep_starts(world_a) == 5
    _plant(world_a, "CORE-1", at(2, 11))
    # when CORE-1 is reopened and resolved again on March 4 at 15:00
    with schema_context(world_a.schema):
        status = {s.category: s for s in Status.objects.all()}
        ticket = agile.tickets["1"]
        for when, old, new in (
            (at(4, 9), "DONE", "IN_PROGRESS"),
            (at(4, 15), "IN_PROGRESS", "DONE"),
        ):
            ticket.history.create(
                field="status",
                from_value=status[old].name,
                to_value=status[new].name,
                from_ref=status[old].pk,
                to_ref=status[new].pk,
                created_at=when,
            )
        Ticket.objects.filter(pk=ticket.pk).update(resolved_at=at(4, 15), updated_at=now())
    connection.set_schema_to_public()
    # then its outdated row is not read: the start comes from the history (Mar 2 10:00)
    before_job = _points(admin_a)[0]
    with schema_context(world_a.schema):
        written = cycle_starts_refresh()
    connection.set_schema_to_public()
    rows, _, _ = _starts(world_a)
    after_job = _points(admin_a)[0]
    assert before_job[0] == ("CORE-1", 173.0, 53.0)
    assert written == 1
    assert rows[0] == ("CORE-1", at(4, 15), at(2, 10))
    assert after_job == before_job


def test_kept_starts_are_not_read_once_the_in_progress_statuses_change(admin_a, world_a, agile):
    # given kept starts, CORE-1's altered
    assert _keep_starts(world_a) == 5
    _plant(world_a, "CORE-1", at(2, 11))
    # when a status joins the In Progress category
    with schema_context(world_a.schema):
        testing = Status.objects.create(name="Testing", category=Status.Category.IN_PROGRESS)
    connection.set_schema_to_public()
    # then the report reads the history (CORE-1: 29 h again) until the job recomputes all
    changed = _points(admin_a)[0]
    with schema_context(world_a.schema):
        written = cycle_starts_refresh()
    connection.set_schema_to_public()
    rows, basis, in_progress = _starts(world_a)
    assert changed == CORE_POINTS
    assert written == 5
    assert basis == [in_progress]
    assert testing.pk in in_progress
    assert rows[0] == ("CORE-1", at(3, 15), at(2, 10))
