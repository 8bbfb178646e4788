"""A project with a known history, written as explicit rows at known instants.

CORE (public) in March 2026, times UTC:
  Sprint 1 (Mar 2 09:00 - Mar 6 17:00, closed): committed CORE-1 (3 pts), CORE-2 (5),
    CORE-4 (8), CORE-5 (1); CORE-3 (2) added Mar 3 12:00; CORE-5 removed Mar 4 14:00.
    CORE-1 In Progress Mar 2 10:00, Done Mar 3 15:00. CORE-2 Done Mar 4 11:00, reopened
    (In Progress) Mar 5 09:00, Done Mar 6 10:00. CORE-3 Done Mar 5 16:00. CORE-4 In
    Progress Mar 4 10:00, not completed: moved on to Sprint 2.
  Sprint 2 (Mar 9 09:00 - Mar 13 17:00, closed): committed CORE-4 (8), CORE-6 (3);
    CORE-4 Done Mar 10 12:00; CORE-6 not completed.
  Sprint 3 (from Mar 16, active): CORE-6 (3, In Progress Mar 17 09:00), CORE-7 (2,
    created Mar 16 10:00, In Progress 12:00, Done Mar 17 10:00).
  CORE-8 (5 pts, To Do, created Mar 10 08:00) in the backlog.
  Worklogs: CORE-1 lead 1h (Mar 2) + user 30m (Mar 3); CORE-4 user 1h30 (Mar 10);
    CORE-6 lead 30m (Mar 17).
SECRET (private, lead only): SECRET-1 (13 pts, To Do, lead) in its own active sprint.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from tests.tickets.conftest import private_project_a, project_a  # noqa: F401
from tickets.models import (
    CustomField,
    IssueType,
    Priority,
    Project,
    Sprint,
    SprintChange,
    SprintMembership,
    Status,
    Ticket,
    TicketHistory,
    Worklog,
)


def at(day: int, hour: int, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=UTC)


@dataclass
class Agile:
    tickets: dict[str, Ticket] = field(default_factory=dict)
    sprints: dict[str, Sprint] = field(default_factory=dict)
    severity_id: int = 0


class _Writer:
    def __init__(self, world: Any) -> None:
        self.world = world
        self.status = {s.category: s for s in Status.objects.all()}
        self.task = IssueType.objects.get(name="Task")
        self.medium = Priority.objects.get(name="Medium")

    def ticket(
        self, project: Project, number: int, created: datetime, points: int, **extra: Any
    ) -> Ticket:
        ticket = Ticket.objects.create(
            project=project,
            number=number,
            key=f"{project.key}-{number}",
            summary=f"ticket {number}",
            issue_type=self.task,
            status=self.status["TO_DO"],
            priority=self.medium,
            story_points=Decimal(points),
            created_at=created,
            updated_at=created,
            **extra,
        )
        self.history(ticket, created, None, "TO_DO")
        return ticket

    def history(self, ticket: Ticket, when: datetime, old: str | None, new: str) -> None:
        TicketHistory.objects.create(
            ticket=ticket,
            field="status",
            from_value=self.status[old].name if old else None,
            to_value=self.status[new].name,
            from_ref=self.status[old].pk if old else None,
            to_ref=self.status[new].pk,
            created_at=when,
        )

    def move(self, ticket: Ticket, *steps: tuple[datetime, str]) -> None:
        current = "TO_DO"
        for when, new in steps:
            self.history(ticket, when, current, new)
            current = new
        resolved = steps[-1][0] if current == "DONE" else None
        Ticket.objects.filter(pk=ticket.pk).update(
            status=self.status[current], resolved_at=resolved
        )

    def change(self, sprint: Sprint, ticket: Ticket, kind: str, when: datetime, **kw: Any) -> None:
        SprintChange.objects.create(
            sprint=sprint, ticket=ticket, kind=kind, at=when, points=ticket.story_points, **kw
        )

    def worklog(self, ticket: Ticket, user: Any, seconds: int, when: datetime) -> None:
        Worklog.objects.create(ticket=ticket, author=user, time_spent=seconds, started_at=when)


@pytest.fixture
def agile(world_a, project_a, private_project_a) -> Agile:  # noqa: F811
    out = Agile()
    with schema_context(world_a.schema):
        w = _Writer(world_a)
        severity = CustomField.objects.get(name="Severity")
        out.severity_id = severity.pk
        lead, user, admin = world_a.lead, world_a.user, world_a.admin
        t = out.tickets
        feb25 = at(25, 10, month=2)
        t["1"] = w.ticket(
            project_a,
            1,
            feb25,
            3,
            assignee=lead,
            labels=["backend"],
            custom_fields={str(severity.pk): "S1"},
            original_estimate=7200,
            remaining_estimate=0,
            time_spent=5400,
        )
        t["2"] = w.ticket(
            project_a,
            2,
            feb25,
            5,
            assignee=lead,
            labels=["backend", "api"],
            custom_fields={str(severity.pk): "S1"},
        )
        t["3"] = w.ticket(project_a, 3, at(3, 12), 2, assignee=user)
        t["4"] = w.ticket(
            project_a,
            4,
            feb25,
            8,
            assignee=user,
            custom_fields={str(severity.pk): "S2"},
            original_estimate=14400,
            remaining_estimate=3600,
            time_spent=5400,
        )
        t["5"] = w.ticket(project_a, 5, feb25, 1)
        t["6"] = w.ticket(
            project_a, 6, at(6, 10), 3, assignee=user, remaining_estimate=3600, time_spent=1800
        )
        t["7"] = w.ticket(project_a, 7, at(16, 10), 2, assignee=admin)
        t["8"] = w.ticket(project_a, 8, at(10, 8), 5, assignee=lead, remaining_estimate=7200)
        Project.objects.filter(pk=project_a.pk).update(ticket_counter=8)

        w.move(t["1"], (at(2, 10), "IN_PROGRESS"), (at(3, 15), "DONE"))
        w.move(t["2"], (at(4, 11), "DONE"), (at(5, 9), "IN_PROGRESS"), (at(6, 10), "DONE"))
        w.move(t["3"], (at(5, 16), "DONE"))
        w.move(t["4"], (at(4, 10), "IN_PROGRESS"), (at(10, 12), "DONE"))
        w.move(t["6"], (at(17, 9), "IN_PROGRESS"))
        w.move(t["7"], (at(16, 12), "IN_PROGRESS"), (at(17, 10), "DONE"))

        s1 = Sprint.objects.create(
            project=project_a,
            name="Sprint 1",
            state="closed",
            sequence=1,
            start_at=at(2, 9),
            end_at=at(6, 17),
            completed_at=at(6, 17),
        )
        s2 = Sprint.objects.create(
            project=project_a,
            name="Sprint 2",
            state="closed",
            sequence=2,
            start_at=at(9, 9),
            end_at=at(13, 17),
            completed_at=at(13, 17),
        )
        s3 = Sprint.objects.create(
            project=project_a,
            name="Sprint 3",
            state="active",
            sequence=3,
            start_at=at(16, 9),
            end_at=at(20, 17),
        )
        out.sprints.update({"1": s1, "2": s2, "3": s3})
        for key in ("1", "2", "4", "5"):
            w.change(s1, t[key], "committed", at(2, 9), estimate=7200 if key == "1" else None)
        w.change(s1, t["3"], "added", at(3, 12))
        w.change(s1, t["5"], "removed", at(4, 14))
        for key in ("1", "2", "3"):
            w.change(s1, t[key], "completed", at(6, 17))
        w.change(s1, t["4"], "not_completed", at(6, 17))
        for key in ("4", "6"):
            w.change(s2, t[key], "committed", at(9, 9))
        w.change(s2, t["4"], "completed", at(13, 17))
        w.change(s2, t["6"], "not_completed", at(13, 17))
        for key in ("6", "7"):
            w.change(s3, t[key], "committed", at(16, 9))
        for sprint, keys in ((s1, "12345"), (s2, "46"), (s3, "67")):
            for key in keys:
                SprintMembership.objects.create(sprint=sprint, ticket=t[key], added_at=at(1, 9))
        Ticket.objects.filter(pk__in=[t["6"].pk, t["7"].pk]).update(sprint=s3)

        w.worklog(t["1"], lead, 3600, at(2, 11))
        w.worklog(t["1"], user, 1800, at(3, 11))
        w.worklog(t["4"], user, 5400, at(10, 9))
        w.worklog(t["6"], lead, 1800, at(17, 11))

        secret = w.ticket(private_project_a, 1, feb25, 13, assignee=lead)
        t["secret"] = secret
        s9 = Sprint.objects.create(
            project=private_project_a,
            name="Secret sprint",
            state="active",
            start_at=at(2, 9),
            end_at=at(6, 17),
        )
        out.sprints["secret"] = s9
        w.change(s9, secret, "committed", at(2, 9))
        Ticket.objects.filter(pk=secret.pk).update(sprint=s9)
        for ticket in t.values():
            ticket.refresh_from_db()
    connection.set_schema_to_public()
    return out
