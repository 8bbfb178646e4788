"""JQL on the Postgres backend: a known set of tickets with known history, and tables
of (query, expected keys in order) and (query, exact error)."""

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from django.urls import include, path
from django_tenants.utils import schema_context

from accounts.members.models import Group, Membership
from search.jql.ast import JqlError
from search.jql.compile_postgres import jql_compile_postgres
from search.jql.parser import jql_parse
from search.jql.views import ticket_view_record
from tenants.models import Tenant
from tests.tickets.conftest import private_project_a, project_a  # noqa: F401 (fixtures)
from tickets.models import (
    Comment,
    CustomField,
    Sprint,
    SprintMembership,
    Ticket,
    TicketHistory,
    TicketLink,
)
from tickets.services import ticket_create, ticket_update
from tickets.workflow_engine import ticket_move_to_status


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _member(world: Any, user: Any) -> Membership:
    return Membership.objects.select_related("user").get(user=user)


@pytest.fixture
def search_world(world_a, project_a, private_project_a):  # noqa: F811
    """CORE-1..5 in the open project CORE, SECRET-1 in a private project (lead only)."""
    with schema_context(world_a.schema):
        admin = _member(world_a, world_a.admin)
        lead = _member(world_a, world_a.lead)
        group = Group.objects.create(name="Developers")
        group.members.add(lead, _member(world_a, world_a.user))

        def create(created: str | None, project=project_a, **data: Any) -> Ticket:
            ticket = ticket_create(project=project, actor=admin, data=data)
            if created:
                when = _utc(created)
                TicketHistory.objects.filter(ticket=ticket).update(created_at=when)
                Ticket.objects.filter(pk=ticket.pk).update(created_at=when, updated_at=when)
                ticket.created_at = when
            return ticket

        def stamp(ticket: Ticket, field: str, to_value: str | None, when: str) -> None:
            rows = TicketHistory.objects.filter(ticket=ticket, field=field, to_value=to_value)
            rows.exclude(created_at=ticket.created_at).update(created_at=_utc(when))
            Ticket.objects.filter(pk=ticket.pk).update(updated_at=_utc(when))

        core1 = create(
            "2026-01-10T09:00",
            summary="Checkout fails on Safari",
            description="Payment page crashes when running checkout",
            type="Bug",
            priority="High",
            assignee="user_alpha",
            labels=["ui", "payments"],
            components=["api"],
            fix_versions=["1.0"],
            due_date="2026-02-10",
            story_points=3,
            custom_fields={"Severity": "S1", "Customer": "Globex corporation"},
        )
        core2 = create(
            "2026-01-20T12:00",
            summary="Add dark mode",
            description="Users want a darker theme at night",
            type="Story",
            priority="Medium",
            labels=["ui"],
            components=["ui"],
            story_points=8,
            custom_fields={"Severity": "S2"},
        )
        core3 = create(
            "2026-01-31T10:00",
            summary="Database migrations are slow",
            type="Task",
            priority="Low",
            assignee="lead_alpha",
            due_date="2026-01-31",
        )
        core4 = create(
            "2026-02-01T02:00",
            summary="Login button misaligned",
            description="The button overlaps the logo",
            type="Bug",
            priority="High",
            assignee=world_a.admin.pk,
            labels=["ui"],
            story_points=1,
        )
        create(
            None,
            summary="Recently filed report",
            description="Running reports daily",
            type="Task",
            priority="Lowest",
        )
        create(
            "2026-01-25T08:00",
            project=private_project_a,
            summary="Secret checkout plan",
            type="Bug",
            priority="High",
            assignee="user_alpha",
        )
        # CORE-1: To Do -> In Progress (01-12) -> Done (01-15), by the admin
        ticket_move_to_status(ticket=core1, actor=admin, status_ref="In Progress")
        stamp(core1, "status", "In Progress", "2026-01-12T10:00")
        ticket_move_to_status(ticket=core1, actor=admin, status_ref="Done")
        stamp(core1, "status", "Done", "2026-01-15T16:00")
        stamp(core1, "resolution", "Done", "2026-01-15T16:00")
        Ticket.objects.filter(pk=core1.pk).update(resolved_at=_utc("2026-01-15T16:00"))
        # CORE-2: assigned to the user by the lead (01-21), unassigned by the admin (01-22)
        ticket_update(ticket=core2, actor=lead, data={"assignee": "user_alpha"})
        stamp(core2, "assignee", "User Alpha", "2026-01-21T08:00")
        ticket_update(ticket=core2, actor=admin, data={"assignee": None})
        stamp(core2, "assignee", None, "2026-01-22T08:00")
        # CORE-3: started by the lead (02-02); a comment
        ticket_move_to_status(ticket=core3, actor=lead, status_ref="In Progress")
        stamp(core3, "status", "In Progress", "2026-02-02T09:00")
        Comment.objects.create(ticket=core3, author=world_a.lead, body="The indexes were rebuilt")
        # CORE-4: High -> Highest by the admin (02-03); CORE-1 blocks CORE-4
        ticket_update(ticket=core4, actor=admin, data={"priority": "Highest"})
        stamp(core4, "priority", "Highest", "2026-02-03T11:00")
        TicketLink.objects.create(source=core1, target=core4, type="blocks")
        severity_id = CustomField.objects.get(name="Severity").pk
        updated = dict(Ticket.objects.values_list("pk", "updated_at"))
        _set_history(admin, lead, stamp, core2, core3, core4)
        for pk, when in updated.items():  # the edits above leave `updated` as it was
            Ticket.objects.filter(pk=pk).update(updated_at=when)
        sprints = _sprints(project_a, private_project_a, core1, core2, core3, core4)
        secret = Ticket.objects.get(key="SECRET-1")
        for ticket, hours_ago in ((core3, 3), (secret, 2), (core1, 1)):
            ticket_view_record(
                schema=world_a.schema,
                user_id=world_a.user.pk,
                ticket_id=ticket.pk,
                at=time.time() - hours_ago * 3600,
            )
    connection.set_schema_to_public()
    return {"severity_id": severity_id, "sprints": sprints}


def _set_history(admin, lead, stamp, core2, core3, core4) -> None:
    """Changes of the multi-valued fields, each recorded as the services write them.
    labels: CORE-2 [ui] -> [ui beta] (01-21) -> [ui] (01-23);
            CORE-3 [] -> [perf] (02-02) -> [] (02-04); all by the admin.
    component: CORE-4 [] -> [ui] (02-03 12:00) -> [] (02-03 13:00), by the admin.
    fixVersion: CORE-2 [] -> [1.0] (01-21, by the lead) -> [] (01-24, by the admin)."""
    steps = [
        (core2, admin, {"labels": ["ui", "beta"]}, "labels", "ui beta", "2026-01-21T09:00"),
        (core2, admin, {"labels": ["ui"]}, "labels", "ui", "2026-01-23T09:00"),
        (core3, admin, {"labels": ["perf"]}, "labels", "perf", "2026-02-02T10:00"),
        (core3, admin, {"labels": []}, "labels", None, "2026-02-04T10:00"),
        (core4, admin, {"components": ["ui"]}, "components", "ui", "2026-02-03T12:00"),
        (core4, admin, {"components": []}, "components", None, "2026-02-03T13:00"),
        (core2, lead, {"fix_versions": ["1.0"]}, "fix_versions", "1.0", "2026-01-21T10:00"),
        (core2, admin, {"fix_versions": []}, "fix_versions", None, "2026-01-24T10:00"),
    ]
    for ticket, actor, data, field, to_value, when in steps:
        ticket_update(ticket=Ticket.objects.get(pk=ticket.pk), actor=actor, data=data)
        stamp(ticket, field, to_value, when)


def _sprints(project, private_project, core1, core2, core3, core4) -> dict[str, int]:
    """CORE: Sprint 1 (closed), Sprint 2 (active), Sprint 3 (future); the private project
    has "Hidden sprint". CORE-1 was completed in Sprint 1; CORE-2 carried over from
    Sprint 1 to Sprint 2; CORE-3 is in Sprint 2; CORE-4 planned for Sprint 3; CORE-5 was
    added to Sprint 2 and removed from it (backlog)."""
    s1, s2, s3 = (
        Sprint.objects.create(
            project=project,
            name=name,
            state=state,
            sequence=n,
            start_at=_utc(start) if start else None,
            end_at=_utc(end) if end else None,
        )
        for n, (name, state, start, end) in enumerate(
            [
                ("Sprint 1", "closed", "2026-01-05T09:00", "2026-01-19T09:00"),
                ("Sprint 2", "active", "2026-01-19T09:00", "2026-02-02T09:00"),
                ("Sprint 3", "future", None, None),
            ],
            start=1,
        )
    )
    hidden = Sprint.objects.create(project=private_project, name="Hidden sprint", sequence=1)
    core5 = Ticket.objects.get(key="CORE-5")
    for sprint, ticket, removed in (
        (s1, core1, None),
        (s1, core2, None),
        (s2, core2, None),
        (s2, core3, None),
        (s3, core4, None),
        (s2, core5, "2026-01-25T09:00"),
    ):
        SprintMembership.objects.create(
            sprint=sprint, ticket=ticket, removed_at=_utc(removed) if removed else None
        )
    for sprint, tickets in ((s2, [core2, core3]), (s3, [core4])):
        Ticket.objects.filter(pk__in=[t.pk for t in tickets]).update(sprint=sprint)
    return {"Sprint 1": s1.pk, "Sprint 2": s2.pk, "Sprint 3": s3.pk, "Hidden": hidden.pk}


def _keys(world, user, jql: str) -> list[str]:
    with schema_context(world.schema):
        member = _member(world, user)
        tenant = Tenant.objects.get(schema_name=world.schema)
        tickets = jql_compile_postgres(jql_parse(jql), member=member, tenant=tenant)
        keys = list(tickets.values_list("key", flat=True))
    connection.set_schema_to_public()
    return keys


def _keys_of(pages: list[Any]) -> list[list[str]]:
    """The keys on each of these search pages."""
    return [[item["key"] for item in page.json()["items"]] for page in pages]


def _totals_of(pages: list[Any]) -> list[tuple[int, bool]]:
    """(total, total_exact) of each of these search pages."""
    return [(page.json()["total"], page.json()["total_exact"]) for page in pages]


def _planner_asked(monkeypatch: Any) -> list[str]:
    """The queries the search page asks the planner about from now on."""
    from search.engine import execute

    asked: list[str] = []
    real = execute._sorts_every_match
    monkeypatch.setattr(
        execute, "_sorts_every_match", lambda q: asked.append(str(q.query)) or real(q)
    )
    return asked


def _windows_walked(monkeypatch: Any, walk_class: Any) -> list[int]:
    """The window each read of `walk_class` (RankWalk, LinkWalk) asks for from now on."""
    walked: list[int] = []
    real = walk_class.first_ids
    monkeypatch.setattr(
        walk_class, "first_ids", lambda walk, count: walked.append(count) or real(walk, count)
    )
    return walked


def _error(world, user, jql: str) -> str:
    with pytest.raises(JqlError) as caught:
        _keys(world, user, jql)
    return caught.value.message


ALL = ["CORE-5", "CORE-4", "CORE-3", "CORE-2", "CORE-1"]  # default order: created DESC
C = lambda *numbers: [f"CORE-{n}" for n in numbers]  # noqa: E731

QUERIES = [
    ("", ALL),
    ("project = CORE", ALL),
    ("project = core", ALL),
    ('project = "Core platform"', ALL),
    ('project in projectsLeadByUser("lead@alpha.test")', ALL),
    # keys
    ("key = CORE-2", C(2)),
    ("issue in (CORE-1, core-3)", C(3, 1)),
    ("issuekey > CORE-3", C(5, 4)),
    ("key <= CORE-2 ORDER BY key", C(1, 2)),
    ('issue in linkedIssues("CORE-1")', C(4)),
    ('issue in linkedIssues("CORE-4")', C(1)),
    ('issue in updatedBy("lead@alpha.test")', C(3, 2)),
    # closed reference fields, case-insensitive
    ("type = Bug", C(4, 1)),
    ("issuetype in (story, TASK)", C(5, 3, 2)),
    ("type in standardIssueTypes()", ALL),
    ("type in subtaskIssueTypes()", []),
    ('status = "To Do"', C(5, 4, 2)),
    ('status = "in progress"', C(3)),
    ("status != Done", C(5, 4, 3, 2)),
    ('status not in ("To Do", Done)', C(3)),
    ("statusCategory = Done", C(1)),
    ('statusCategory != "To Do"', C(3, 1)),
    ("statusCategory = indeterminate", C(3)),
    ('statusCategory not in ("To Do", Done)', C(3)),
    ("NOT statusCategory != Done", C(1)),
    ("priority = High", C(1)),
    ("priority > Medium", C(4, 1)),
    ("priority <= low", C(5, 3)),
    ("priority in (Highest, Lowest)", C(5, 4)),
    ("resolution = Done", C(1)),
    ("resolution = Unresolved", C(5, 4, 3, 2)),
    ("resolution is EMPTY", C(5, 4, 3, 2)),
    ("resolution IS NOT EMPTY", C(1)),
    # users
    ("assignee = user_alpha", C(1)),
    ("assignee = currentUser()", C(1)),
    ('assignee = "LEAD@alpha.test"', C(3)),
    ("assignee is EMPTY", C(5, 2)),
    ("assignee = EMPTY", C(5, 2)),
    ("assignee IS NULL", C(5, 2)),
    ("assignee != user_alpha", C(4, 3)),
    ("assignee not in (user_alpha)", C(4, 3)),
    ("assignee in (EMPTY, lead_alpha)", C(5, 3, 2)),
    ('assignee in membersOf("developers")', C(3, 1)),
    ('reporter = "admin@alpha.test"', ALL),
    ("creator = currentUser()", []),
    ("watcher = currentUser()", C(2, 1)),
    ("watchers = lead_alpha", C(3)),
    # text: stemmed words, prefixes, phrases; text covers comments
    ("summary ~ checkout", C(1)),
    ('summary ~ "check*"', C(1)),
    ("summary ~ migration", C(3)),
    ("summary !~ checkout", C(5, 4, 3, 2)),
    ("description ~ crash", C(1)),
    ("description is EMPTY", C(3)),
    ('comment ~ "index"', C(3)),
    ('text ~ "index"', C(3)),
    ("text ~ run", C(5, 1)),
    ('text ~ "mode dark"', C(2)),
    ('text ~ "\\"dark mode\\""', C(2)),
    ('text ~ "\\"mode dark\\""', []),
    ('text ~ "dark safari"', []),
    ("text !~ run", C(4, 3, 2)),
    # label sets, components, versions
    ("labels = ui", C(4, 2, 1)),
    ("labels in (payments, nothing)", C(1)),
    ("labels != payments", C(4, 2)),
    ("labels not in (ui)", []),
    ("labels is EMPTY", C(5, 3)),
    ("component = api", C(1)),
    ("component in (API, ui)", C(2, 1)),
    ("component is empty", C(5, 4, 3)),
    ("component != api", C(2)),
    ('fixVersion = "1.0"', C(1)),
    ("fixVersion is EMPTY", C(5, 4, 3, 2)),
    # dates: date-only literals are whole days in the tenant's time zone (UTC here)
    ("created = 2026-01-31", C(3)),
    ('created = "2026/02/01"', C(4)),
    ("created > 2026-01-31", C(5, 4)),
    ("created >= 2026-01-31", C(5, 4, 3)),
    ("created < 2026-01-20", C(1)),
    ("created <= 2026-01-20", C(2, 1)),
    ('created >= "2026-01-31 12:00"', C(5, 4)),
    ('createdDate < "2026/01/31 10:00"', C(2, 1)),
    ("created > -1d", C(5)),
    ("created < -30d", C(4, 3, 2, 1)),
    ("created >= startOfDay()", C(5)),
    ("created < endOfDay(-1)", C(4, 3, 2, 1)),
    ("created >= startOfWeek()", C(5)),
    ("created <= endOfWeek()", ALL),
    ("created >= startOfYear()", ALL),
    ("created < startOfYear()", []),
    ('created >= startOfMonth("-9")', C(5, 4)),
    ('created >= startOfMonth("-10M")', ALL),
    ("created < now()", ALL),
    ("created > endOfMonth()", []),
    ("created >= startOfYear(-1) AND created < endOfYear(-1)", []),
    ('updated >= "2026/02/03"', C(5, 4)),
    ("due = 2026-01-31", C(3)),
    ("due < 2026-02-10", C(3)),
    ('duedate <= "2026/02/10"', C(3, 1)),
    ("due is EMPTY", C(5, 4, 2)),
    ("due > now()", []),
    ("resolved >= 2026-01-15", C(1)),
    ("resolutionDate is empty", C(5, 4, 3, 2)),
    # numbers
    ('"story points" > 2', C(2, 1)),
    ("storypoints = 1", C(4)),
    ('"Story Points" is empty', C(5, 3)),
    ('"story points" != 8', C(4, 1)),
    ('"story points" in (1, 8)', C(4, 2)),
    # hierarchy
    ("parent is EMPTY", ALL),
    ('"epic link" is empty', ALL),
    # custom fields by name
    ("Severity = s1", C(1)),
    ("severity in (S1, S2)", C(2, 1)),
    ("Severity != S1", C(2)),
    ("Severity is EMPTY", C(5, 4, 3)),
    ("Customer ~ globex", C(1)),
    ("Customer is not empty", C(1)),
    # history: WAS (held at some time) and CHANGED (creation is not a change)
    ('status WAS "To Do"', ALL),
    ('status WAS "In Progress"', C(3, 1)),
    ("status was done", C(1)),
    ('status WAS NOT "In Progress"', C(5, 4, 2)),
    ('status WAS IN ("In Progress", Done)', C(3, 1)),
    ('status WAS NOT IN ("In Progress", Done)', C(5, 4, 2)),
    ('status WAS "In Progress" BEFORE 2026-01-13', C(1)),
    ('status WAS "In Progress" AFTER 2026-01-20', C(3)),
    ('status WAS "In Progress" ON 2026-01-13', C(1)),
    ('status WAS "In Progress" DURING (2026-01-14, 2026-01-16)', C(1)),
    ('status WAS "In Progress" DURING ("2026-01-15 17:00", 2026-01-31)', []),
    ('status WAS "To Do" ON 2026-01-11', C(1)),
    ('status WAS "In Progress" BY lead_alpha', C(3)),
    ("assignee WAS user_alpha", C(2, 1)),
    ('assignee WAS currentUser() BY "lead@alpha.test"', C(2)),
    ("assignee WAS EMPTY", C(5, 2)),
    ("priority WAS High", C(4, 1)),
    ("priority CHANGED", C(4)),
    ("priority CHANGED FROM High TO Highest", C(4)),
    ("priority CHANGED TO Low", []),
    ("status CHANGED", C(3, 1)),
    ('status CHANGED FROM "To Do" TO "In Progress"', C(3, 1)),
    ("status CHANGED TO Done AFTER 2026-01-14", C(1)),
    ("status CHANGED TO Done BEFORE 2026-01-15", []),
    ("status CHANGED ON 2026-01-15", C(1)),
    ('status CHANGED BY "lead@alpha.test"', C(3)),
    ("status CHANGED DURING (2026-02-01, 2026-02-28)", C(3)),
    ("status CHANGED AFTER -1d", []),
    ("assignee CHANGED", C(2)),
    ("assignee CHANGED TO EMPTY", C(2)),
    ("resolution CHANGED", C(1)),
    ("type CHANGED", []),
    # logic
    ("type = Bug AND priority = Highest", C(4)),
    ('type = Bug OR status = "In Progress"', C(4, 3, 1)),
    ("type = Bug && priority = High || labels is empty", C(5, 3, 1)),
    ("type = Bug AND (priority = High OR labels is empty)", C(1)),
    ("NOT type = Bug", C(5, 3, 2)),
    ("!(type = Bug OR type = Task)", C(2)),
    ("NOT assignee = user_alpha", C(5, 4, 3, 2)),
    # ordering: priority by rank, status by its order, empty last, id breaks ties
    ("ORDER BY priority DESC", C(4, 1, 2, 3, 5)),
    ("project = CORE ORDER BY priority ASC", C(5, 3, 2, 1, 4)),
    ("ORDER BY status ASC, key DESC", C(5, 4, 2, 3, 1)),
    ("ORDER BY key", C(1, 2, 3, 4, 5)),
    ("ORDER BY created ASC", C(1, 2, 3, 4, 5)),
    ('ORDER BY "story points" DESC', C(2, 1, 4, 5, 3)),
    ("ORDER BY assignee ASC, key ASC", C(4, 3, 1, 2, 5)),
    ("ORDER BY severity DESC, key", C(2, 1, 3, 4, 5)),
    ("ORDER BY due ASC", C(3, 1, 2, 4, 5)),
    ("ORDER BY updated DESC", C(5, 4, 3, 2, 1)),
    # sprints: current and closed memberships; EMPTY is the backlog (no open sprint)
    ('sprint = "Sprint 1"', C(2, 1)),
    ('sprint = "sprint 2"', C(3, 2)),
    ('sprints in ("Sprint 1", "SPRINT 3")', C(4, 2, 1)),
    ("sprint in openSprints()", C(3, 2)),
    ("sprint in closedSprints()", C(2, 1)),
    ("sprint in futureSprints()", C(4)),
    ("sprint in (openSprints(), futureSprints())", C(4, 3, 2)),
    ("sprint = openSprints()", C(3, 2)),
    ("sprint is EMPTY", C(5, 1)),
    ("sprint is not EMPTY", C(4, 3, 2)),
    ('sprint != "Sprint 1"', C(4, 3)),
    ("sprint not in openSprints()", C(4)),
    ("sprint in closedSprints() AND sprint not in closedSprints()", []),
    ("sprint in closedSprints() AND statusCategory != Done", C(2)),
    ("sprint in (EMPTY, futureSprints())", C(5, 4, 1)),
    ("ORDER BY sprint ASC, key ASC", C(2, 3, 4, 1, 5)),
    ("ORDER BY sprint DESC", C(4, 3, 2, 5, 1)),
    # history of the multi-valued fields (see _set_history)
    ("labels WAS beta", C(2)),
    ("labels WAS ui", C(4, 2, 1)),
    ("labels WAS perf", C(3)),
    ("labels WAS IN (beta, perf)", C(3, 2)),
    ("labels WAS NOT beta", C(5, 4, 3, 1)),
    ("labels WAS NOT IN (beta, perf)", C(5, 4, 1)),
    ("labels WAS EMPTY", C(5, 3)),
    ("labels WAS beta ON 2026-01-22", C(2)),
    ("labels WAS beta ON 2026-01-24", []),
    ("labels WAS beta BEFORE 2026-01-21", []),
    ("labels WAS beta AFTER 2026-01-22", C(2)),
    ("labels WAS ui BEFORE 2026-01-15", C(1)),
    ("labels WAS perf BY lead_alpha", []),
    ('labels WAS perf BY "admin@alpha.test"', C(3)),
    ('labels WAS ui BY "admin@alpha.test"', C(4, 2, 1)),
    ("labels CHANGED", C(3, 2)),
    ("labels CHANGED TO beta", C(2)),
    ("labels CHANGED FROM beta", C(2)),
    ("labels CHANGED FROM ui", []),
    ("labels CHANGED TO EMPTY", C(3)),
    ("labels CHANGED FROM EMPTY", C(3)),
    ("labels CHANGED AFTER 2026-02-03", C(3)),
    ("labels CHANGED BY lead_alpha", []),
    ("component WAS ui", C(4, 2)),
    ("component WAS API", C(1)),
    ("component WAS IN (api, ui)", C(4, 2, 1)),
    ("component WAS NOT ui", C(5, 3, 1)),
    ("component WAS EMPTY", C(5, 4, 3)),
    ("component CHANGED", C(4)),
    ("component CHANGED TO ui", C(4)),
    ("component CHANGED FROM ui ON 2026-02-03", C(4)),
    ("component CHANGED FROM ui AFTER 2026-02-03", []),
    ('fixVersion WAS "1.0"', C(2, 1)),
    ('fixVersion WAS "1.0" BY lead_alpha', C(2)),
    ('fixVersion WAS "1.0" DURING (2026-01-22, 2026-01-23)', C(2, 1)),
    ('fixVersion WAS "1.0" AFTER 2026-01-25', C(1)),
    ('fixVersion WAS NOT IN ("1.0")', C(5, 4, 3)),
    ('fixVersion CHANGED FROM "1.0"', C(2)),
    ('fixVersion CHANGED TO "1.0" BY lead_alpha', C(2)),
    ('fixVersions CHANGED BY "admin@alpha.test"', C(2)),
    # ordered by a date while the matches are a list of ids (sorted, not walked)
    ('status WAS "To Do" ORDER BY updated DESC', C(5, 4, 3, 2, 1)),
    ('status WAS "To Do" ORDER BY created ASC', C(1, 2, 3, 4, 5)),
    ('status WAS IN ("In Progress", Done) ORDER BY updated ASC', C(1, 3)),
    ('fixVersion WAS "1.0" ORDER BY created ASC', C(1, 2)),
    ('fixVersion WAS "1.0" OR key = CORE-5 ORDER BY created ASC', C(1, 2, 5)),
    ('fixVersion = "1.0" AND type != Epic ORDER BY updated DESC', C(1)),
    # recently viewed (CORE-3, then SECRET-1 which the user may not see, then CORE-1)
    ("issue in issueHistory()", C(3, 1)),
    ("key in issueHistory() ORDER BY lastViewed DESC", C(1, 3)),
    ("key not in issueHistory()", C(5, 4, 2)),
    ("ORDER BY lastViewed DESC, key ASC", C(1, 3, 2, 4, 5)),
    ("lastViewed is EMPTY", C(5, 4, 2)),
    ("lastViewed > -90m", C(1)),
    ("lastViewed <= -90m", C(3)),
    ("lastViewed >= startOfDay(-1)", C(3, 1)),
]


@pytest.mark.parametrize(("jql", "expected"), QUERIES, ids=[q for q, _ in QUERIES])
def test_jql_returns_the_expected_keys_in_order(world_a, search_world, jql, expected):
    # when / then
    assert _keys(world_a, world_a.user, jql) == expected


# The history and component/version conditions run two ways: their tickets' ids looked
# up first (always, on this small fixture), or as EXISTS (past the caps): same answers.
BY_EXISTS = [
    (jql, expected)
    for jql, expected in QUERIES
    if any(word in jql.lower() for word in (" was", "changed", "component", "fixversion"))
]


@pytest.mark.parametrize(("jql", "expected"), BY_EXISTS, ids=[q for q, _ in BY_EXISTS])
def test_history_and_set_conditions_past_the_inline_caps(
    world_a, search_world, jql, expected, monkeypatch
):
    # given caps of no ticket at all
    from search.jql import compile_postgres

    monkeypatch.setattr(compile_postgres, "HISTORY_INLINE_MAX", 0)
    monkeypatch.setattr(compile_postgres, "M2M_INLINE_MAX", 0)
    # when / then
    assert _keys(world_a, world_a.user, jql) == expected


ERRORS = [
    (
        "foo = bar",
        "Field 'foo' does not exist or you do not have permission to view it "
        "at line 1, character 1",
    ),
    (
        "priority ~ High",
        "The operator '~' is not supported by the 'priority' field at line 1, character 1",
    ),
    (
        "labels > x",
        "The operator '>' is not supported by the 'labels' field at line 1, character 1",
    ),
    (
        "status = Limbo",
        "The value 'Limbo' does not exist for the field 'status' at line 1, character 10",
    ),
    (
        "status in (Done, Limbo)",
        "The value 'Limbo' does not exist for the field 'status' at line 1, character 18",
    ),
    (
        "project = SECRET",
        "The value 'SECRET' does not exist for the field 'project' at line 1, character 11",
    ),
    (
        "component = nope",
        "The value 'nope' does not exist for the field 'component' at line 1, character 13",
    ),
    (
        "statusCategory = Later",
        "The value 'Later' does not exist for the field 'statusCategory' at line 1, character 18",
    ),
    (
        "assignee = nobody",
        "The value 'nobody' does not exist for the field 'assignee' at line 1, character 12",
    ),
    (
        "severity = S9",
        "The value 'S9' does not exist for the field 'Severity' at line 1, character 12",
    ),
    ("assignee = whoever()", "Unable to find JQL function 'whoever()' at line 1, character 12"),
    (
        "created > now(1)",
        "Function 'now' expects no arguments but received 1 at line 1, character 11",
    ),
    (
        "assignee in membersOf()",
        "Function 'membersOf' expects exactly 1 argument but received 0 at line 1, character 13",
    ),
    (
        'assignee in membersOf("ghosts")',
        "Function 'membersOf' cannot find the group 'ghosts' at line 1, character 13",
    ),
    (
        'created > startOfDay("soon")',
        "Function 'startOfDay' expects an offset such as "
        '"-1", "+2d" or "1M" but got \'soon\' at line 1, character 11',
    ),
    (
        "status = now()",
        "The function 'now()' is not supported by the 'status' field at line 1, character 10",
    ),
    (
        'sprint = "Sprint 9"',
        "The value 'Sprint 9' does not exist for the field 'sprint' at line 1, character 10",
    ),
    (
        'sprint = "Hidden sprint"',
        "The value 'Hidden sprint' does not exist for the field 'sprint' at line 1, character 10",
    ),
    (
        "type in openSprints()",
        "The function 'openSprints()' is not supported by the 'issuetype' field "
        "at line 1, character 9",
    ),
    (
        "sprint in currentUser()",
        "The function 'currentUser()' is not supported by the 'sprint' field "
        "at line 1, character 11",
    ),
    (
        "sprint in openSprints(1)",
        "Function 'openSprints' expects no arguments but received 1 at line 1, character 11",
    ),
    (
        'sprint > "Sprint 1"',
        "The operator '>' is not supported by the 'sprint' field at line 1, character 1",
    ),
    (
        'sprint WAS "Sprint 1"',
        "The operator 'WAS' is not supported by the 'sprint' field at line 1, character 1",
    ),
    (
        "labels WAS (a, b)",
        "The operator 'WAS' does not support lists at line 1, character 12",
    ),
    (
        "component WAS nope",
        "The value 'nope' does not exist for the field 'component' at line 1, character 15",
    ),
    (
        "labels WAS x FROM y",
        "The operator 'WAS' does not support the history predicate 'FROM' at line 1, character 14",
    ),
    (
        "key in issueHistory(1)",
        "Function 'issueHistory' expects no arguments but received 1 at line 1, character 8",
    ),
    (
        "lastViewed = -1d",
        "The operator '=' is not supported by the 'lastViewed' field at line 1, character 1",
    ),
    (
        'filter = "My bugs"',
        "The value 'My bugs' does not exist for the field 'filter' at line 1, character 10",
    ),
    (
        "created > tomorrow",
        "Date value 'tomorrow' is invalid. Valid formats include: "
        "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period "
        "format e.g. '-5d', '4w 2d' at line 1, character 11",
    ),
    ("created > 2026-02-30", "Date value '2026-02-30' is invalid at line 1, character 11"),
    (
        '"story points" > lots',
        "The value 'lots' is not a valid number for the field "
        "'Story Points' at line 1, character 18",
    ),
    ("ORDER BY text", "Field 'text' does not support sorting at line 1, character 10"),
    (
        "summary ~ '!!!'",
        "The text query '!!!' for the field 'summary' is not valid at line 1, character 11",
    ),
    (
        "cf[999999] = x",
        "Field 'cf[999999]' does not exist or you do not have permission "
        "to view it at line 1, character 1",
    ),
    (
        'issue in linkedIssues("NOPE-1")',
        "Issue 'NOPE-1' could not be found in function 'linkedIssues' at line 1, character 10",
    ),
]


@pytest.mark.parametrize(("jql", "message"), ERRORS, ids=[q for q, _ in ERRORS])
def test_invalid_jql_is_an_error_with_its_position(world_a, search_world, jql, message):
    assert _error(world_a, world_a.user, jql) == message


def test_custom_field_by_id(world_a, search_world):
    jql = f"cf[{search_world['severity_id']}] = S2"
    assert _keys(world_a, world_a.user, jql) == ["CORE-2"]


def test_user_does_not_see_tickets_of_a_private_project(world_a, search_world):
    # when
    as_user = _keys(world_a, world_a.user, "summary ~ checkout")
    as_lead = _keys(world_a, world_a.lead, "summary ~ checkout")
    # then
    assert as_user == ["CORE-1"]
    assert as_lead == ["SECRET-1", "CORE-1"]
    assert _keys(world_a, world_a.lead, "project = secret") == ["SECRET-1"]


def test_order_by_key_is_project_key_then_number(world_a, search_world, project_a):  # noqa: F811
    # given CORE-6..CORE-11, so that numbers sort as numbers (CORE-10 after CORE-9)
    with schema_context(world_a.schema):
        admin = _member(world_a, world_a.admin)
        for n in range(6, 12):
            ticket_create(project=project_a, actor=admin, data={"summary": f"Number {n}"})
    connection.set_schema_to_public()
    core = [f"CORE-{n}" for n in range(11, 0, -1)]
    # when / then: across projects (the lead sees SECRET) by project key, then number;
    # within one project by number (the (project, number) index)
    assert _keys(world_a, world_a.lead, "ORDER BY key DESC") == ["SECRET-1", *core]
    assert _keys(world_a, world_a.lead, "ORDER BY key")[-3:] == ["CORE-10", "CORE-11", "SECRET-1"]
    assert _keys(world_a, world_a.lead, "project = CORE ORDER BY key DESC") == core
    assert _keys(world_a, world_a.lead, "project in (core) AND key >= CORE-9 ORDER BY key") == [
        "CORE-9",
        "CORE-10",
        "CORE-11",
    ]
    assert _keys(world_a, world_a.lead, "project in (CORE, SECRET) ORDER BY key DESC")[:2] == [
        "SECRET-1",
        "CORE-11",
    ]


def test_dates_follow_the_tenant_time_zone(world_a, search_world):
    # given a tenant in New York: CORE-4 (02:00 UTC Feb 1) was created on Jan 31 there
    Tenant.objects.filter(pk=world_a.tenant.pk).update(time_zone="America/New_York")
    # then
    assert _keys(world_a, world_a.user, "created = 2026-01-31") == ["CORE-4", "CORE-3"]
    assert _keys(world_a, world_a.user, "created > 2026-01-31") == ["CORE-5"]


# -- the API -------------------------------------------------------------------------------


def _mounted_urlconf() -> str | None:
    """The tests run against the real API once saas/api.py mounts the router; until then
    against a NinjaAPI of their own with the same error handling and authentication."""
    from search.api import router

    if getattr(router, "api", None) is not None:
        return None
    return __name__


def _build_urlpatterns() -> list[Any]:
    from ninja import NinjaAPI

    from accounts.authentication import member_auth
    from saas.api import install_error_handlers
    from search.api import router

    if getattr(router, "api", None) is not None:
        return []
    api = NinjaAPI(urls_namespace="search_test_api", auth=member_auth, docs_url=None)
    install_error_handlers(api)
    api.add_router("/search", router)
    return [path("api/v1/", include(api.urls[:2], namespace=api.urls[2]))]


urlpatterns = _build_urlpatterns()


@pytest.fixture
def search_api(settings):
    urlconf = _mounted_urlconf()
    if urlconf:
        settings.ROOT_URLCONF = urlconf


def test_advanced_search_answers_a_page_of_tickets(user_a, world_a, search_world, search_api):
    # when
    response = user_a.get(
        "/api/v1/search/advanced", jql="labels = ui ORDER BY key", offset=1, limit=1
    )
    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["total"], body["offset"], body["limit"]) == (3, 1, 1)
    assert [item["key"] for item in body["items"]] == ["CORE-2"]
    item = body["items"][0]
    assert item["status"]["name"] == "To Do"
    assert item["type"]["name"] == "Story"
    assert item["components"] == [{"id": item["components"][0]["id"], "name": "ui"}]
    assert item["custom_fields"] == {"Severity": "S2"}


def test_advanced_search_query_count_is_pinned(
    user_a, world_a, search_world, search_api, django_assert_num_queries
):
    # the projects the user may see, one lookup of the status named, the plan of the
    # page, its ids with the count (all three matches are on it), the page's rows and
    # the three prefetches, with the joins' order fixed around them (savepoint, set,
    # reset, release: in a request without a test's transaction, set and commit); the
    # rest is authentication and tenant routing
    with django_assert_num_queries(16):
        response = user_a.get("/api/v1/search/advanced", jql='status = "To Do" ORDER BY key')
    assert response.status_code == 200
    assert [item["key"] for item in response.json()["items"]] == ["CORE-2", "CORE-4", "CORE-5"]


@pytest.mark.parametrize("plan", ["sort", "walk"])
def test_advanced_search_pages_and_totals_are_the_same_whether_the_plan_sorts_or_walks(
    user_a, search_world, search_api, monkeypatch, plan
):
    # given a count cap below the number of matches, and a planner that either sorts
    # the matches (as for these few tickets) or, as on a big table, walks the key index
    from search.engine import execute

    monkeypatch.setattr(execute, "COUNT_CAP", 2)
    if plan == "walk":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_sort = off")
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("SET LOCAL enable_bitmapscan = off")
    sorts: list[bool] = []
    real = execute._sorts_every_match
    monkeypatch.setattr(execute, "_sorts_every_match", lambda q: sorts.append(real(q)) or sorts[-1])
    jql = 'status = "To Do" ORDER BY key DESC'
    # when
    pages = [
        user_a.get("/api/v1/search/advanced", jql=jql, limit=1),
        user_a.get("/api/v1/search/advanced", jql=jql, offset=1, limit=1),
        user_a.get("/api/v1/search/advanced", jql=jql, offset=2, limit=5),
        user_a.get("/api/v1/search/advanced", jql=jql, limit=3),
    ]
    # then the plan was the one asked for, and the answers do not depend on it
    assert sorts == [plan == "sort"] * 4
    assert _keys_of(pages) == [
        ["CORE-5"],
        ["CORE-4"],
        ["CORE-2"],
        ["CORE-5", "CORE-4", "CORE-2"],
    ]
    assert _totals_of(pages) == [
        (2, False),
        (2, False),
        (3, True),
        (3, True),
    ]


SORTS_EVERY_MATCH = [
    # an index can hold the order: the planner is asked whether it walks it
    ("", False),
    ("ORDER BY key DESC", False),
    ("project = CORE ORDER BY key", False),
    ("ORDER BY updated DESC, priority DESC", False),
    ("component = ui ORDER BY key", False),
    # no index holds it (a catalogue's rank through a join, a custom field's value, a
    # date of tickets given as ids, which the compiler keeps off the date's index)
    ("ORDER BY priority DESC, updated DESC", True),
    ("ORDER BY status ASC, key DESC", True),
    ("ORDER BY project", True),
    ("ORDER BY Severity", True),
    ("component in (api, ui) ORDER BY updated DESC", True),
    ("component = ui OR labels = ui ORDER BY updated DESC", False),
]


@pytest.mark.parametrize(
    ("jql", "expected"), SORTS_EVERY_MATCH, ids=[q for q, _ in SORTS_EVERY_MATCH]
)
def test_compiler_tells_when_the_plan_must_sort_every_match(world_a, search_world, jql, expected):
    from search.jql.compile_postgres import jql_compile

    with schema_context(world_a.schema):
        member = _member(world_a, world_a.user)
        tenant = Tenant.objects.get(schema_name=world_a.schema)
        compiled = jql_compile(jql_parse(jql), member=member, tenant=tenant)
    connection.set_schema_to_public()
    assert compiled.sorts_every_match is expected


def test_advanced_search_does_not_ask_the_planner_when_no_index_holds_the_order(
    user_a, search_world, search_api, monkeypatch
):
    # given a count cap below the number of matches, and the planner's answer recorded
    from search.engine import execute

    monkeypatch.setattr(execute, "COUNT_CAP", 2)
    asked = _planner_asked(monkeypatch)
    jql = "ORDER BY priority DESC"
    # when
    pages = [
        user_a.get("/api/v1/search/advanced", jql=jql, limit=2),
        user_a.get("/api/v1/search/advanced", jql=jql, offset=2, limit=5),
    ]
    # then the page and the count came from one sorted read, in the same order as the
    # table's (CORE-4, 1, 2, 3, 5), and the planner was never asked
    assert asked == []
    assert _keys_of(pages) == [
        ["CORE-4", "CORE-1"],
        ["CORE-2", "CORE-3", "CORE-5"],
    ]
    assert _totals_of(pages) == [
        (2, False),
        (5, True),
    ]


def test_advanced_search_total_stops_counting_at_the_cap(
    user_a, search_world, search_api, monkeypatch
):
    # given a count cap below the number of matches
    from search.engine import execute

    monkeypatch.setattr(execute, "COUNT_CAP", 2)
    jql = 'status = "To Do" ORDER BY key'
    # when
    capped = user_a.get("/api/v1/search/advanced", jql=jql, limit=1)
    deep = user_a.get("/api/v1/search/advanced", jql=jql, offset=1, limit=2)
    whole = user_a.get("/api/v1/search/advanced", jql=jql, limit=3)
    monkeypatch.setattr(execute, "COUNT_CAP", 3)
    exact = user_a.get("/api/v1/search/advanced", jql=jql, limit=1)
    # then the pages are whole; the total is exact when every match was read (below
    # the cap, or up to the end of the page asked for), else where counting stopped
    pages = [capped, deep, whole, exact]
    assert _keys_of(pages) == [
        ["CORE-2"],
        ["CORE-4", "CORE-5"],
        ["CORE-2", "CORE-4", "CORE-5"],
        ["CORE-2"],
    ]
    assert _totals_of(pages) == [
        (2, False),
        (3, True),
        (3, True),
        (3, True),
    ]


def test_advanced_search_rejects_malformed_jql(user_a, search_world, search_api):
    response = user_a.get("/api/v1/search/advanced", jql="status = Limbo")
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "jql_invalid",
            "message": "The value 'Limbo' does not exist for the field 'status' "
            "at line 1, character 10",
            "details": {"line": 1, "column": 10},
        }
    }


def test_advanced_search_rejects_a_syntax_error(user_a, search_world, search_api):
    response = user_a.get("/api/v1/search/advanced", jql="status = ")
    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "jql_invalid"
    assert body["details"] == {"line": 1, "column": 10}


def test_simple_search_compiles_to_the_same_engine(user_a, search_world, search_api):
    # when
    response = user_a.get(
        "/api/v1/search/tickets",
        q="checkout",
        project="core",
        status="Done,To Do",
        assignee="me",
        priority="high",
        created_after="2026-01-10",
        created_before="2026-01-11",
    )
    # then
    assert response.status_code == 200, response.content
    assert [item["key"] for item in response.json()["items"]] == ["CORE-1"]
    unassigned = user_a.get("/api/v1/search/tickets", assignee="unassigned")
    assert [item["key"] for item in unassigned.json()["items"]] == ["CORE-5", "CORE-2"]
    bad = user_a.get("/api/v1/search/tickets", status="Limbo")
    assert bad.status_code == 400
    assert bad.json()["error"]["message"] == (
        "The value 'Limbo' does not exist for the field 'status'"
    )


def test_count_answers_how_many_the_caller_may_see(
    user_a, lead_a, search_world, search_api, monkeypatch
):
    from search.engine import execute

    # when
    as_user = user_a.get("/api/v1/search/count", jql="summary ~ checkout")
    as_lead = lead_a.get("/api/v1/search/count", jql="summary ~ checkout")
    everything = lead_a.get("/api/v1/search/count")
    monkeypatch.setattr(execute, "COUNT_MAX", 5)
    capped = lead_a.get("/api/v1/search/count")
    invalid = user_a.get("/api/v1/search/count", jql="status = ")
    # then the private project's ticket counts for its member only, and counting stops
    # at the cap
    assert [r.json() for r in (as_user, as_lead, everything, capped)] == [
        {"total": 1, "total_exact": True},
        {"total": 2, "total_exact": True},
        {"total": 6, "total_exact": True},
        {"total": 5, "total_exact": False},
    ]
    assert invalid.status_code == 400
    assert invalid.json()["error"]["details"] == {"line": 1, "column": 10}
