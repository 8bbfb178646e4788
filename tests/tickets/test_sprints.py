"""Sprints: planning, start, scope changes, completion and the scope log they write."""

from decimal import Decimal

import pytest
from django_tenants.utils import schema_context

from eventlog.models import OutboxEvent
from tickets.models import Sprint, SprintChange, SprintMembership, Status, Ticket, TicketHistory


def _sprint(api, name="Sprint 1", project="CORE", **extra):
    response = api.post(f"/api/v1/projects/{project}/sprints", {"name": name, **extra})
    assert response.status_code == 201, response.content
    return response.json()


def _log(world, sprint_id):
    with schema_context(world.schema):
        return list(
            SprintChange.objects.filter(sprint_id=sprint_id)
            .order_by("id")
            .values_list("ticket__key", "kind", "points", "estimate")
        )


def _memberships(world, key):
    """(sprint, still a member) per sprint the ticket was ever in."""
    with schema_context(world.schema):
        rows = SprintMembership.objects.filter(ticket__key=key).order_by("sprint_id")
        return [(m.sprint.name, m.removed_at is None) for m in rows.select_related("sprint")]


def _sprint_of(world, key):
    with schema_context(world.schema):
        return Ticket.objects.filter(key=key).values_list("sprint__name", flat=True).get()


def _events(world, kind):
    with schema_context(world.schema):
        return list(
            OutboxEvent.objects.filter(kind=kind).order_by("id").values_list("payload", flat=True)
        )


@pytest.fixture
def three(make_ticket):
    make_ticket(story_points=3, remaining_estimate="2h")
    make_ticket(story_points=5)
    make_ticket()


def test_admins_plan_sprints_in_order_and_others_cannot(world_a, project_a, admin_a, user_a):
    first = _sprint(admin_a, goal="Ship it")
    second = _sprint(admin_a, "Sprint 2")
    refused = user_a.post("/api/v1/projects/CORE/sprints", {"name": "Mine"})
    assert (first["state"], first["sequence"], first["goal"], first["ticket_count"]) == (
        "future",
        1,
        "Ship it",
        0,
    )
    assert second["sequence"] == 2
    assert refused.status_code == 403
    listed = admin_a.get("/api/v1/projects/CORE/sprints").json()
    assert [s["name"] for s in listed["items"]] == ["Sprint 1", "Sprint 2"]
    assert _events(world_a, "sprint.created") == [
        {"sprint_id": first["id"], "name": "Sprint 1", "project": "CORE", "ticket_ids": []},
        {"sprint_id": second["id"], "name": "Sprint 2", "project": "CORE", "ticket_ids": []},
    ]


def test_a_sprint_must_end_after_it_starts(world_a, project_a, admin_a):
    response = admin_a.post(
        "/api/v1/projects/CORE/sprints",
        {"name": "Backwards", "start": "2026-03-10T00:00:00Z", "end": "2026-03-01T00:00:00Z"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"] == [
        {"field": "end", "message": "end must be after start."}
    ]
    with schema_context(world_a.schema):
        assert not Sprint.objects.exists()


def test_planning_tickets_into_a_future_sprint_logs_added_and_history(
    world_a, project_a, admin_a, three
):
    sprint = _sprint(admin_a)
    response = admin_a.post(
        f"/api/v1/sprints/{sprint['id']}/tickets", {"add": ["CORE-1", "CORE-2"]}
    )
    assert response.status_code == 200, response.content
    assert response.json()["ticket_count"] == 2
    assert _log(world_a, sprint["id"]) == [
        ("CORE-1", "added", Decimal("3.00"), 7200),
        ("CORE-2", "added", Decimal("5.00"), None),
    ]
    assert _sprint_of(world_a, "CORE-1") == "Sprint 1"
    with schema_context(world_a.schema):
        history = TicketHistory.objects.get(ticket__key="CORE-1", field="sprint")
        assert (history.from_value, history.to_value, history.from_ref, history.to_ref) == (
            None,
            "Sprint 1",
            None,
            sprint["id"],
        )
        assert Ticket.objects.get(key="CORE-1").version == 2
    assert [(e["key"], e["fields"]) for e in _events(world_a, "ticket.updated")] == [
        ("CORE-1", ["sprint"]),
        ("CORE-2", ["sprint"]),
    ]


def test_starting_commits_every_ticket_and_a_second_active_sprint_is_refused(
    world_a, project_a, admin_a, three
):
    first, second = _sprint(admin_a), _sprint(admin_a, "Sprint 2")
    admin_a.post(f"/api/v1/sprints/{first['id']}/tickets", {"add": ["CORE-1", "CORE-2"]})
    # when
    started = admin_a.post(
        f"/api/v1/sprints/{first['id']}/start",
        {"goal": "Login", "start": "2026-03-02T09:00:00Z", "end": "2026-03-16T09:00:00Z"},
    )
    again = admin_a.post(f"/api/v1/sprints/{second['id']}/start", {})
    # then
    assert started.status_code == 200, started.content
    body = started.json()
    assert (body["state"], body["goal"], body["start_at"], body["end_at"]) == (
        "active",
        "Login",
        "2026-03-02T09:00:00Z",
        "2026-03-16T09:00:00Z",
    )
    assert _log(world_a, first["id"])[2:] == [
        ("CORE-1", "committed", Decimal("3.00"), 7200),
        ("CORE-2", "committed", Decimal("5.00"), None),
    ]
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "sprint_already_active"
    assert admin_a.get(f"/api/v1/sprints/{second['id']}").json()["state"] == "future"
    with schema_context(world_a.schema):
        ids = sorted(
            Ticket.objects.filter(key__in=["CORE-1", "CORE-2"]).values_list("pk", flat=True)
        )
    assert _events(world_a, "sprint.started") == [
        {"sprint_id": first["id"], "name": "Sprint 1", "project": "CORE", "ticket_ids": ids}
    ]


def test_only_project_admins_start_and_complete(world_a, project_a, admin_a, user_a, three):
    sprint = _sprint(admin_a)
    assert user_a.post(f"/api/v1/sprints/{sprint['id']}/start", {}).status_code == 403
    assert admin_a.post(f"/api/v1/sprints/{sprint['id']}/start", {}).status_code == 200
    assert user_a.post(f"/api/v1/sprints/{sprint['id']}/complete", {}).status_code == 403
    assert admin_a.get(f"/api/v1/sprints/{sprint['id']}").json()["state"] == "active"
    assert _events(world_a, "sprint.completed") == []


def test_scope_changes_while_active_are_logged(world_a, project_a, admin_a, user_a, three):
    sprint = _sprint(admin_a)
    url = f"/api/v1/sprints/{sprint['id']}/tickets"
    admin_a.post(url, {"add": ["CORE-1"]})
    admin_a.post(f"/api/v1/sprints/{sprint['id']}/start", {})
    # developers plan: add one, remove one
    response = user_a.post(url, {"add": ["CORE-3"], "remove": ["CORE-1"]})
    assert response.status_code == 200, response.content
    assert [(k, kind) for k, kind, _, _ in _log(world_a, sprint["id"])] == [
        ("CORE-1", "added"),
        ("CORE-1", "committed"),
        ("CORE-3", "added"),
        ("CORE-1", "removed"),
    ]
    assert _memberships(world_a, "CORE-1") == [("Sprint 1", False)]
    assert _sprint_of(world_a, "CORE-1") is None
    assert _sprint_of(world_a, "CORE-3") == "Sprint 1"


def test_bad_scope_changes_are_refused_and_change_nothing(
    world_a, project_a, admin_a, three, private_project_a, make_ticket
):
    make_ticket(project=private_project_a)
    sprint = _sprint(admin_a)
    url = f"/api/v1/sprints/{sprint['id']}/tickets"
    response = admin_a.post(url, {"add": ["CORE-1", "SECRET-1", "CORE-99"], "remove": ["CORE-2"]})
    assert response.status_code == 422
    assert response.json()["error"]["details"] == [
        {"field": "add.2", "message": "Ticket CORE-99 does not exist or you cannot see it."}
    ]
    response = admin_a.post(url, {"add": ["SECRET-1"], "remove": ["CORE-2"]})
    assert response.status_code == 422
    assert response.json()["error"]["details"] == [
        {"field": "add", "message": "SECRET-1 is in project SECRET, not CORE."},
        {"field": "remove", "message": "CORE-2 is not in Sprint 1."},
    ]
    assert _log(world_a, sprint["id"]) == []
    assert _sprint_of(world_a, "SECRET-1") is None


def test_completing_records_outcomes_and_carries_open_tickets_to_the_next_sprint(
    world_a, project_a, admin_a, three
):
    first, second = _sprint(admin_a), _sprint(admin_a, "Sprint 2")
    admin_a.post(f"/api/v1/sprints/{first['id']}/tickets", {"add": ["CORE-1", "CORE-2"]})
    admin_a.post(f"/api/v1/sprints/{first['id']}/start", {})
    with schema_context(world_a.schema):
        Ticket.objects.filter(key="CORE-1").update(status=Status.objects.get(name="Done"))
    # when
    response = admin_a.post(
        f"/api/v1/sprints/{first['id']}/complete", {"move_open_to": second["id"]}
    )
    # then
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "closed"
    assert response.json()["completed_at"] is not None
    assert _log(world_a, first["id"])[4:] == [
        ("CORE-1", "completed", Decimal("3.00"), 7200),
        ("CORE-2", "not_completed", Decimal("5.00"), None),
    ]
    assert _log(world_a, second["id"]) == [("CORE-2", "added", Decimal("5.00"), None)]
    assert _memberships(world_a, "CORE-2") == [("Sprint 1", True), ("Sprint 2", True)]
    assert _memberships(world_a, "CORE-1") == [("Sprint 1", True)]
    assert _sprint_of(world_a, "CORE-1") is None
    assert _sprint_of(world_a, "CORE-2") == "Sprint 2"
    with schema_context(world_a.schema):
        moved = TicketHistory.objects.filter(ticket__key="CORE-2", field="sprint").last()
        assert (moved.from_value, moved.to_value) == ("Sprint 1", "Sprint 2")
        ids = sorted(
            Ticket.objects.filter(key__in=["CORE-1", "CORE-2"]).values_list("pk", flat=True)
        )
    assert _events(world_a, "sprint.completed") == [
        {"sprint_id": first["id"], "name": "Sprint 1", "project": "CORE", "ticket_ids": ids}
    ]
    # the next sprint can start now, and commits the carried ticket
    assert admin_a.post(f"/api/v1/sprints/{second['id']}/start", {}).status_code == 200
    assert _log(world_a, second["id"])[1:] == [("CORE-2", "committed", Decimal("5.00"), None)]


def test_completing_to_the_backlog_and_with_a_bad_target(world_a, project_a, admin_a, three):
    sprint = _sprint(admin_a)
    admin_a.post(f"/api/v1/sprints/{sprint['id']}/tickets", {"add": ["CORE-1"]})
    admin_a.post(f"/api/v1/sprints/{sprint['id']}/start", {})
    url = f"/api/v1/sprints/{sprint['id']}/complete"
    bad = admin_a.post(url, {"move_open_to": sprint["id"]})
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["field"] == "move_open_to"
    assert admin_a.get(f"/api/v1/sprints/{sprint['id']}").json()["state"] == "active"
    assert admin_a.post(url, {"move_open_to": "backlog"}).status_code == 200
    assert _sprint_of(world_a, "CORE-1") is None
    assert admin_a.post(url, {}).status_code == 409  # closed already
    closed_add = admin_a.post(f"/api/v1/sprints/{sprint['id']}/tickets", {"add": ["CORE-2"]})
    assert closed_add.status_code == 409


def test_moving_a_ticket_between_future_sprints(world_a, project_a, admin_a, three):
    first, second = _sprint(admin_a), _sprint(admin_a, "Sprint 2")
    admin_a.post(f"/api/v1/sprints/{first['id']}/tickets", {"add": ["CORE-1"]})
    admin_a.post(f"/api/v1/sprints/{second['id']}/tickets", {"add": ["CORE-1"]})
    assert _log(world_a, first["id"]) == [
        ("CORE-1", "added", Decimal("3.00"), 7200),
        ("CORE-1", "removed", Decimal("3.00"), 7200),
    ]
    assert _log(world_a, second["id"]) == [("CORE-1", "added", Decimal("3.00"), 7200)]
    assert _memberships(world_a, "CORE-1") == [("Sprint 1", False), ("Sprint 2", True)]
    assert _sprint_of(world_a, "CORE-1") == "Sprint 2"


def test_deleting_a_future_sprint_returns_its_tickets_to_the_backlog(
    world_a, project_a, admin_a, user_a, three
):
    first, second = _sprint(admin_a), _sprint(admin_a, "Sprint 2")
    admin_a.post(f"/api/v1/sprints/{second['id']}/tickets", {"add": ["CORE-2"]})
    admin_a.post(f"/api/v1/sprints/{first['id']}/start", {})
    assert user_a.delete(f"/api/v1/sprints/{second['id']}").status_code == 403
    assert admin_a.delete(f"/api/v1/sprints/{first['id']}").status_code == 409
    assert admin_a.delete(f"/api/v1/sprints/{second['id']}").status_code == 204
    assert _sprint_of(world_a, "CORE-2") is None
    with schema_context(world_a.schema):
        assert list(Sprint.objects.values_list("name", flat=True)) == ["Sprint 1"]
        history = TicketHistory.objects.filter(ticket__key="CORE-2", field="sprint").last()
        assert (history.from_value, history.to_value) == ("Sprint 2", None)


def test_renaming_and_redating_a_sprint(world_a, project_a, admin_a, user_a):
    sprint = _sprint(admin_a)
    url = f"/api/v1/sprints/{sprint['id']}"
    assert user_a.put(url, {"name": "Mine"}).status_code == 403
    response = admin_a.put(
        url, {"name": "Renamed", "start": "2026-04-01T00:00:00Z", "end": "2026-04-15T00:00:00Z"}
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["start_at"], body["end_at"], body["version"]) == (
        "Renamed",
        "2026-04-01T00:00:00Z",
        "2026-04-15T00:00:00Z",
        2,
    )
    assert admin_a.put(url, {"end": "2026-03-01T00:00:00Z"}).status_code == 422
    assert admin_a.get(url).json()["end_at"] == "2026-04-15T00:00:00Z"


def test_sprints_of_a_private_project_are_invisible(world_a, private_project_a, lead_a, user_a):
    sprint = _sprint(lead_a, project="SECRET")
    assert user_a.get(f"/api/v1/sprints/{sprint['id']}").status_code == 404
    assert user_a.post(f"/api/v1/sprints/{sprint['id']}/start", {}).status_code == 404
    assert user_a.get("/api/v1/projects/SECRET/sprints").status_code == 404
    assert lead_a.get(f"/api/v1/sprints/{sprint['id']}").json()["state"] == "future"
