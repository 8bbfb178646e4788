"""Velocity and burndown on the known history of tests/reports/conftest.py."""

import csv
import io


def test_velocity_counts_commitment_at_start_and_completion_at_close(admin_a, agile):
    # when
    response = admin_a.get("/api/v1/reports/velocity", project="CORE")
    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert [
        (
            s["name"],
            s["committed_count"],
            s["committed_points"],
            s["completed_count"],
            s["completed_points"],
            s["added_count"],
            s["removed_count"],
            s["not_completed_count"],
        )
        for s in body["sprints"]
    ] == [("Sprint 1", 4, 17, 3, 10, 1, 1, 1), ("Sprint 2", 2, 11, 1, 8, 0, 0, 1)]
    assert body["average"] == {
        "committed_points": 14,
        "completed_points": 9,
        "committed_count": 3,
        "completed_count": 2,
    }


def test_velocity_takes_the_last_n_sprints_and_a_jql_filter(admin_a, agile):
    # when
    last = admin_a.get("/api/v1/reports/velocity", project="CORE", sprints=1)
    leads = admin_a.get("/api/v1/reports/velocity", project="CORE", jql="assignee = lead_alpha")
    # then
    assert [s["name"] for s in last.json()["sprints"]] == ["Sprint 2"]
    assert [
        (s["name"], s["committed_points"], s["completed_points"]) for s in leads.json()["sprints"]
    ] == [("Sprint 1", 8, 8), ("Sprint 2", 0, 0)]


def test_velocity_date_range_keeps_sprints_completed_in_it(admin_a, agile):
    response = admin_a.get(
        "/api/v1/reports/velocity", project="CORE", **{"from": "2026-03-07", "to": "2026-03-31"}
    )
    assert [s["name"] for s in response.json()["sprints"]] == ["Sprint 2"]


def test_velocity_as_csv(admin_a, agile):
    response = admin_a.get("/api/v1/reports/velocity", project="CORE", format="csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:2] == ["sprint_id", "name"]
    assert [(r[1], r[5], r[6], r[7], r[8]) for r in rows[1:]] == [
        ("Sprint 1", "4", "17", "3", "10"),
        ("Sprint 2", "2", "11", "1", "8"),
    ]


def test_burndown_in_points_follows_scope_changes_and_reopenings(admin_a, agile):
    # when
    response = admin_a.get("/api/v1/reports/burndown", project="CORE", sprint=agile.sprints["1"].pk)
    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["sprint"]["name"] == "Sprint 1"
    assert body["start_value"] == 17
    assert [
        (d["day"], d["scope"], d["remaining"], d["ideal"], d["added"], d["removed"], d["completed"])
        for d in body["days"]
    ] == [
        ("2026-03-02", 17, 17, 13.6, 0, 0, 0),
        ("2026-03-03", 19, 16, 10.2, 2, 0, 3),
        ("2026-03-04", 18, 10, 6.8, 0, 1, 5),
        ("2026-03-05", 18, 13, 3.4, 0, 0, -3),
        ("2026-03-06", 18, 8, 0, 0, 0, 5),
    ]
    assert [(e["day"], e["kind"], e["key"], e["value"]) for e in body["events"]] == [
        ("2026-03-03", "added", "CORE-3", 2),
        ("2026-03-03", "completed", "CORE-1", 3),
        ("2026-03-04", "completed", "CORE-2", 5),
        ("2026-03-04", "removed", "CORE-5", 1),
        ("2026-03-05", "reopened", "CORE-2", 5),
        ("2026-03-05", "completed", "CORE-3", 2),
        ("2026-03-06", "completed", "CORE-2", 5),
    ]


def test_burndown_in_ticket_counts_and_hours(admin_a, agile):
    sprint = agile.sprints["1"].pk
    counts = admin_a.get("/api/v1/reports/burndown", sprint=sprint, unit="count").json()
    hours = admin_a.get("/api/v1/reports/burndown", sprint=sprint, unit="hours").json()
    assert counts["start_value"] == 4
    assert [d["remaining"] for d in counts["days"]] == [4, 4, 2, 2, 1]
    assert hours["start_value"] == 2
    assert [d["remaining"] for d in hours["days"]] == [2, 0, 0, 0, 0]


def test_burndown_defaults_to_the_active_sprint(admin_a, agile):
    body = admin_a.get("/api/v1/reports/burndown", project="CORE").json()
    assert body["sprint"]["name"] == "Sprint 3"
    assert body["start_value"] == 5
    assert [(d["day"], d["remaining"]) for d in body["days"]] == [
        ("2026-03-16", 5),
        ("2026-03-17", 3),
        ("2026-03-18", 3),
        ("2026-03-19", 3),
        ("2026-03-20", 3),
    ]


def test_burndown_as_csv(admin_a, agile):
    response = admin_a.get("/api/v1/reports/burndown", sprint=agile.sprints["1"].pk, format="csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["day", "remaining", "scope", "ideal", "added", "removed", "completed"]
    assert rows[3] == ["2026-03-04", "10", "18", "6.8", "0", "1", "5"]


def test_burndown_of_a_sprint_in_a_project_the_caller_cannot_see_is_404(user_a, agile):
    response = user_a.get("/api/v1/reports/burndown", sprint=agile.sprints["secret"].pk)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "sprint_not_found"


def test_velocity_of_a_project_the_caller_cannot_see_is_404(user_a, agile):
    response = user_a.get("/api/v1/reports/velocity", project="SECRET")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "project_not_found"


def test_burndown_without_any_sprint_is_empty(admin_a, world_a):
    body = admin_a.get("/api/v1/reports/burndown").json()
    assert body == {"sprint": None, "unit": "points", "start_value": 0, "days": [], "events": []}


def test_burndown_with_a_jql_filter_counts_only_the_matching_tickets(admin_a, agile):
    # when: Sprint 1 narrowed to the lead's tickets (CORE-1 3 pts, CORE-2 5 pts)
    body = admin_a.get(
        "/api/v1/reports/burndown", sprint=agile.sprints["1"].pk, jql="assignee = lead_alpha"
    ).json()
    # then: CORE-1 done Mar 3, CORE-2 done Mar 4, reopened Mar 5, done again Mar 6
    assert body["start_value"] == 8
    assert [
        (d["day"], d["scope"], d["remaining"], d["ideal"], d["added"], d["removed"], d["completed"])
        for d in body["days"]
    ] == [
        ("2026-03-02", 8, 8, 6.4, 0, 0, 0),
        ("2026-03-03", 8, 5, 4.8, 0, 0, 3),
        ("2026-03-04", 8, 0, 3.2, 0, 0, 5),
        ("2026-03-05", 8, 5, 1.6, 0, 0, -5),
        ("2026-03-06", 8, 0, 0, 0, 0, 5),
    ]
    assert [(e["day"], e["kind"], e["key"], e["value"]) for e in body["events"]] == [
        ("2026-03-03", "completed", "CORE-1", 3),
        ("2026-03-04", "completed", "CORE-2", 5),
        ("2026-03-05", "reopened", "CORE-2", 5),
        ("2026-03-06", "completed", "CORE-2", 5),
    ]


def test_burndown_for_a_member_matches_the_admins(admin_a, user_a, agile):
    # a plain member's scope goes through the visibility filter, with the same numbers
    sprint = agile.sprints["1"].pk
    as_admin = admin_a.get("/api/v1/reports/burndown", sprint=sprint).json()
    as_user = user_a.get("/api/v1/reports/burndown", sprint=sprint).json()
    assert as_user["start_value"] == 17
    assert [(d["scope"], d["remaining"]) for d in as_user["days"]] == [
        (17, 17),
        (19, 16),
        (18, 10),
        (18, 13),
        (18, 8),
    ]
    assert as_user == as_admin
