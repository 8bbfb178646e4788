"""TicketHistory.until (tickets/migrations/0007): the database keeps, on every history
row, when the next change of the same field replaced its value."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from accounts.members.models import Membership
from tests.tickets.conftest import project_a  # noqa: F401 (fixture)
from tickets.history import history_until_refresh
from tickets.models import TicketHistory
from tickets.services import ticket_create
from tickets.workflow_engine import ticket_move_to_status


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _periods(ticket, field: str) -> list[tuple[str | None, datetime, datetime | None]]:
    rows = TicketHistory.objects.filter(ticket=ticket, field=field).order_by("created_at", "id")
    return [(row.to_value, row.created_at, row.until) for row in rows]


@pytest.fixture
def admin(world_a):
    with schema_context(world_a.schema):
        yield Membership.objects.select_related("user").get(user=world_a.admin)
    connection.set_schema_to_public()


def _stamp(ticket, field: str, to_value: str, when: str) -> None:
    TicketHistory.objects.filter(ticket=ticket, field=field, to_value=to_value).update(
        created_at=_utc(when)
    )


def test_each_value_ends_when_the_next_change_of_its_field_is_written(
    world_a,
    project_a,  # noqa: F811
    admin,
):
    # given a ticket created, then moved twice (each write stamped at a known time)
    ticket = ticket_create(project=project_a, actor=admin, data={"summary": "Periods"})
    _stamp(ticket, "status", "To Do", "2026-01-10T09:00")
    ticket_move_to_status(ticket=ticket, actor=admin, status_ref="In Progress")
    _stamp(ticket, "status", "In Progress", "2026-01-12T10:00")
    ticket_move_to_status(ticket=ticket, actor=admin, status_ref="Done")
    _stamp(ticket, "status", "Done", "2026-01-15T16:00")
    # then each status row ends when the next one starts; the last is still held, and
    # other fields are periods of their own
    assert _periods(ticket, "status") == [
        ("To Do", _utc("2026-01-10T09:00"), _utc("2026-01-12T10:00")),
        ("In Progress", _utc("2026-01-12T10:00"), _utc("2026-01-15T16:00")),
        ("Done", _utc("2026-01-15T16:00"), None),
    ]
    assert [until for _, _, until in _periods(ticket, "priority")] == [None]


def test_a_row_written_between_two_others_splits_their_period(
    world_a,
    project_a,  # noqa: F811
    admin,
):
    # given To Do (01-10) then Done (01-20)
    ticket = ticket_create(project=project_a, actor=admin, data={"summary": "Late write"})
    _stamp(ticket, "status", "To Do", "2026-01-10T09:00")
    ticket_move_to_status(ticket=ticket, actor=admin, status_ref="In Progress")
    _stamp(ticket, "status", "In Progress", "2026-01-20T09:00")
    # when a row dated between them is inserted afterwards (as an import may)
    TicketHistory.objects.create(
        ticket=ticket,
        field="status",
        from_value="To Do",
        to_value="In Review",
        created_at=_utc("2026-01-15T09:00"),
    )
    # then
    assert _periods(ticket, "status") == [
        ("To Do", _utc("2026-01-10T09:00"), _utc("2026-01-15T09:00")),
        ("In Review", _utc("2026-01-15T09:00"), _utc("2026-01-20T09:00")),
        ("In Progress", _utc("2026-01-20T09:00"), None),
    ]


def test_refresh_rebuilds_periods_written_with_triggers_off(world_a, project_a, admin):  # noqa: F811
    # given two status rows written as COPY with triggers off would leave them
    ticket = ticket_create(project=project_a, actor=admin, data={"summary": "Copied"})
    _stamp(ticket, "status", "To Do", "2026-02-01T09:00")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "INSERT INTO tickets_tickethistory (ticket_id, field, to_value, created_at)"
            " VALUES (%s, 'status', 'Done', %s)",
            [ticket.pk, _utc("2026-02-03T09:00")],
        )
        cursor.execute("SET LOCAL session_replication_role = origin")
    stale = _periods(ticket, "status")
    # when
    history_until_refresh([ticket.pk])
    # then
    assert [until for _, _, until in stale] == [None, None]
    assert _periods(ticket, "status") == [
        ("To Do", _utc("2026-02-01T09:00"), _utc("2026-02-03T09:00")),
        ("Done", _utc("2026-02-03T09:00"), None),
    ]
