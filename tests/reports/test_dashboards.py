"""Dashboards: CRUD, sharing, who may change them, gadget data for the viewer, and the
signed-in member's home page."""

from django.db import connection
from django_tenants.utils import schema_context

from accounts.members.models import Group, Membership
from eventlog.models import OutboxEvent
from reports.models import Dashboard, Gadget
from tickets.models import Watcher


def _in_a(world, fn):
    with schema_context(world.schema):
        result = fn()
    connection.set_schema_to_public()
    return result


GADGETS = [
    {
        "type": "filter_results",
        "title": "Lead's work",
        "column": 0,
        "position": 0,
        "config": {"jql": "assignee = lead_alpha", "columns": ["key", "status"], "limit": 5},
    },
    {
        "type": "report",
        "title": "Velocity",
        "column": 1,
        "position": 0,
        "config": {"report": "velocity", "params": {"project": "CORE", "sprints": 3}},
    },
    {"type": "assigned_to_me", "column": 0, "position": 1, "config": {"limit": 5}},
]


def _create(api, **overrides):
    body = {"name": "Team board", "columns": 2, "gadgets": GADGETS, **overrides}
    return api.post("/api/v1/dashboards", body)


def test_create_a_dashboard_with_gadgets(lead_a, world_a, agile):
    # when
    response = _create(lead_a, description="Our week", is_public=True)
    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["name"], body["description"], body["columns"], body["is_public"]) == (
        "Team board",
        "Our week",
        2,
        True,
    )
    assert body["owner"]["username"] == "lead_alpha"
    assert [(g["type"], g["title"], g["column"], g["position"]) for g in body["gadgets"]] == [
        ("filter_results", "Lead's work", 0, 0),
        ("assigned_to_me", "", 0, 1),
        ("report", "Velocity", 1, 0),
    ]
    assert body["gadgets"][0]["config"] == {
        "jql": "assignee = lead_alpha",
        "columns": ["key", "status"],
        "limit": 5,
    }
    events = _in_a(
        world_a, lambda: list(OutboxEvent.objects.filter(kind="dashboard.created").values("kind"))
    )
    assert len(events) == 1


def test_invalid_gadgets_are_refused_and_nothing_is_created(lead_a, world_a, agile):
    bad_column = _create(lead_a, columns=1)
    bad_report = _create(
        lead_a, gadgets=[{"type": "report", "config": {"report": "nope", "params": {}}}]
    )
    bad_jql = _create(lead_a, gadgets=[{"type": "filter_results", "config": {"jql": "a = = b"}}])
    both = _create(
        lead_a,
        gadgets=[{"type": "filter_results", "config": {"jql": "", "filter_id": 1}}],
    )
    for response in (bad_column, bad_report, bad_jql, both):
        assert response.status_code == 422, response.content
    assert bad_column.json()["error"]["details"][0]["field"] == "gadgets.1.column"
    assert _in_a(world_a, lambda: (Dashboard.objects.count(), Gadget.objects.count())) == (0, 0)


def test_sharing_decides_who_sees_a_dashboard(lead_a, user_a, admin_a, world_a, agile):
    # given a private dashboard, one shared with a group of user_a's, one public
    private = _create(lead_a, name="Mine").json()["id"]

    def group() -> int:
        g = Group.objects.create(name="Friends")
        g.members.add(Membership.objects.get(user=world_a.user))
        return g.pk

    group_id = _in_a(world_a, group)
    shared = _create(lead_a, name="Friends only", shared_with_groups=[group_id]).json()["id"]
    public = _create(lead_a, name="Everyone", is_public=True).json()["id"]
    # when
    as_user = user_a.get("/api/v1/dashboards").json()
    as_admin = admin_a.get("/api/v1/dashboards").json()
    # then
    assert [d["name"] for d in as_user["items"]] == ["Everyone", "Friends only"]
    assert as_admin["total"] == 3
    assert user_a.get(f"/api/v1/dashboards/{private}").status_code == 404
    assert user_a.get(f"/api/v1/dashboards/{shared}").status_code == 200
    assert user_a.get(f"/api/v1/dashboards/{public}").json()["name"] == "Everyone"


def test_only_the_owner_or_an_admin_changes_a_dashboard(lead_a, user_a, admin_a, world_a, agile):
    # given a public dashboard of the lead
    created = _create(lead_a, is_public=True).json()
    path = f"/api/v1/dashboards/{created['id']}"
    # when
    update = user_a.put(path, {"name": "Hijacked", "gadgets": []})
    delete = user_a.delete(path)
    # then
    assert (update.status_code, update.json()["error"]["code"]) == (403, "dashboard_not_owner")
    assert delete.status_code == 403
    assert _in_a(
        world_a,
        lambda: (
            Dashboard.objects.get(pk=created["id"]).name,
            Gadget.objects.filter(dashboard_id=created["id"]).count(),
        ),
    ) == ("Team board", 3)
    # and an admin may
    assert admin_a.put(path, {"name": "Admin's now", "gadgets": []}).status_code == 200
    assert admin_a.delete(path).status_code == 204
    assert lead_a.get(path).status_code == 404


def test_update_keeps_gadgets_sent_with_their_id_and_drops_the_rest(lead_a, world_a, agile):
    created = _create(lead_a).json()
    keep = created["gadgets"][2]  # the velocity report
    # when
    response = lead_a.put(
        f"/api/v1/dashboards/{created['id']}",
        {
            "name": "Renamed",
            "columns": 3,
            "gadgets": [
                {**keep, "column": 2, "config": {"report": "velocity", "params": {"sprints": 1}}},
                {"type": "activity", "column": 0, "config": {"limit": 3}},
            ],
        },
    )
    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["name"], body["columns"]) == ("Renamed", 3)
    assert [(g["type"], g["column"]) for g in body["gadgets"]] == [("activity", 0), ("report", 2)]
    assert body["gadgets"][1]["id"] == keep["id"]
    assert _in_a(world_a, lambda: Gadget.objects.count()) == 2


def test_gadget_data_is_rendered_with_the_viewers_permissions(lead_a, user_a, agile):
    # given the lead's public dashboard listing the lead's tickets (SECRET-1 among them)
    created = _create(lead_a, is_public=True).json()
    gadget = created["gadgets"][0]["id"]
    path = f"/api/v1/dashboards/{created['id']}/gadgets/{gadget}/data"
    # when
    as_lead = lead_a.get(path).json()
    as_user = user_a.get(path).json()
    # then
    assert as_lead["data"]["total"] == 4
    assert sorted(i["key"] for i in as_lead["data"]["items"]) == [
        "CORE-1",
        "CORE-2",
        "CORE-8",
        "SECRET-1",
    ]
    assert as_user["data"]["total"] == 3
    assert as_user["data"]["items"][0] == {"key": "CORE-8", "status": "To Do"}
    assert sorted(i["key"] for i in as_user["data"]["items"]) == ["CORE-1", "CORE-2", "CORE-8"]


def test_a_filter_gadget_naming_a_project_the_viewer_cannot_see(lead_a, user_a, agile):
    created = _create(
        lead_a,
        is_public=True,
        gadgets=[{"type": "filter_results", "config": {"jql": "project = SECRET"}}],
    ).json()
    path = f"/api/v1/dashboards/{created['id']}/gadgets/{created['gadgets'][0]['id']}/data"
    as_lead = lead_a.get(path).json()
    as_user = user_a.get(path)
    assert as_lead["data"]["items"] == [
        {
            "key": "SECRET-1",
            "summary": "ticket 1",
            "status": "To Do",
            "priority": "Medium",
            "assignee": "lead_alpha",
        }
    ]
    assert (as_user.status_code, as_user.json()["error"]["code"]) == (400, "jql_invalid")
    assert "SECRET-1" not in as_user.content.decode()


def test_report_and_assigned_gadgets(lead_a, user_a, agile):
    created = _create(lead_a, is_public=True).json()
    base = f"/api/v1/dashboards/{created['id']}/gadgets"
    velocity = user_a.get(f"{base}/{created['gadgets'][2]['id']}/data").json()
    assigned = user_a.get(f"{base}/{created['gadgets'][1]['id']}/data").json()
    assert [(s["name"], s["completed_points"]) for s in velocity["data"]["sprints"]] == [
        ("Sprint 1", 10),
        ("Sprint 2", 8),
    ]
    assert velocity["gadget"]["title"] == "Velocity"
    assert assigned["data"]["total"] == 1
    assert [i["key"] for i in assigned["data"]["items"]] == ["CORE-6"]


def test_a_report_gadget_on_a_project_the_viewer_cannot_see_is_404(lead_a, user_a, agile):
    created = _create(
        lead_a,
        is_public=True,
        gadgets=[
            {"type": "report", "config": {"report": "velocity", "params": {"project": "SECRET"}}}
        ],
    ).json()
    path = f"/api/v1/dashboards/{created['id']}/gadgets/{created['gadgets'][0]['id']}/data"
    assert lead_a.get(path).status_code == 200
    assert user_a.get(path).status_code == 404


def test_a_gadget_of_another_dashboard_is_404(lead_a, agile):
    one = _create(lead_a).json()
    other = _create(lead_a, name="Other").json()
    response = lead_a.get(
        f"/api/v1/dashboards/{one['id']}/gadgets/{other['gadgets'][0]['id']}/data"
    )
    assert (response.status_code, response.json()["error"]["code"]) == (404, "gadget_not_found")


def test_home_page_of_a_user(user_a, world_a, agile):
    # given user_a watches CORE-1 and SECRET-1 (which they cannot see)
    def watch() -> None:
        for key in ("1", "secret"):
            Watcher.objects.create(ticket=agile.tickets[key], user=world_a.user)

    _in_a(world_a, watch)
    # when
    body = user_a.get("/api/v1/web/dashboard", limit=3).json()
    # then
    assert body["assigned_to_me"]["total"] == 1
    assert [(t["key"], t["status"]) for t in body["assigned_to_me"]["items"]] == [
        ("CORE-6", "In Progress")
    ]
    assert [t["key"] for t in body["recently_updated"]] == ["CORE-7", "CORE-8", "CORE-6"]
    assert (body["watched"]["total"], [t["key"] for t in body["watched"]["items"]]) == (
        1,
        ["CORE-1"],
    )
    assert [
        (s["name"], s["total_count"], s["done_count"], s["total_points"], s["done_points"])
        for s in body["sprints"]
    ] == [("Sprint 3", 2, 1, 5, 2)]


def test_home_page_of_a_lead_shows_the_sprints_of_their_projects(lead_a, agile):
    body = lead_a.get("/api/v1/web/dashboard").json()
    assert [(s["project"], s["name"], s["total_points"]) for s in body["sprints"]] == [
        ("CORE", "Sprint 3", 5),
        ("SECRET", "Secret sprint", 13),
    ]
    assert [t["key"] for t in body["assigned_to_me"]["items"]] == ["CORE-8", "SECRET-1"]
