"""Assignee workload, issue distribution and time tracking on the known fixture."""

import csv
import io

from django.db import connection
from django_tenants.utils import schema_context

from tests.reports.conftest import at
from tickets.models import Ticket, Worklog


def _rows(response):
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_workload_counts_open_tickets_per_assignee_with_unassigned_apart(admin_a, agile):
    # when
    response = admin_a.get("/api/v1/reports/assignee-workload", project="CORE")
    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert [
        (
            r["username"],
            r["open_count"],
            r["to_do_count"],
            r["in_progress_count"],
            r["points"],
            r["remaining_estimate"],
        )
        for r in body["rows"]
    ] == [
        ("lead_alpha", 1, 1, 0, 5, 7200),
        ("user_alpha", 1, 0, 1, 3, 3600),
        (None, 1, 1, 0, 1, 0),
    ]
    assert body["total"] == {"open_count": 3, "points": 9, "remaining_estimate": 10800}


def test_workload_only_counts_tickets_the_caller_may_see(admin_a, user_a, agile):
    # given SECRET-1 (lead, 13 points) only the admin can see
    as_admin = admin_a.get("/api/v1/reports/assignee-workload").json()
    as_user = user_a.get("/api/v1/reports/assignee-workload").json()
    # then
    assert as_admin["rows"][0]["username"] == "lead_alpha"
    assert (as_admin["rows"][0]["open_count"], as_admin["rows"][0]["points"]) == (2, 18)
    lead_row = next(r for r in as_user["rows"] if r["username"] == "lead_alpha")
    assert (lead_row["open_count"], lead_row["points"]) == (1, 5)
    assert as_user["total"]["open_count"] == 3


def test_workload_as_csv_with_a_jql_filter(admin_a, agile):
    response = admin_a.get(
        "/api/v1/reports/assignee-workload",
        jql='project = CORE AND "Story Points" > 2',
        format="csv",
    )
    assert _rows(response) == [
        [
            "username",
            "display_name",
            "open_count",
            "to_do_count",
            "in_progress_count",
            "points",
            "unestimated_count",
            "remaining_estimate",
        ],
        ["lead_alpha", "Lead Alpha", "1", "1", "0", "5", "0", "7200"],
        ["user_alpha", "User Alpha", "1", "0", "1", "3", "0", "3600"],
    ]


def test_distribution_by_status(admin_a, agile):
    body = admin_a.get(
        "/api/v1/reports/issue-distribution", project="CORE", group_by="status"
    ).json()
    assert body["field"] == "status"
    assert body["total"] == 8
    assert [(r["label"], r["count"], r["percent"]) for r in body["rows"]] == [
        ("Done", 5, 62.5),
        ("To Do", 2, 25.0),
        ("In Progress", 1, 12.5),
    ]


def test_distribution_by_labels_counts_each_label(admin_a, agile):
    body = admin_a.get(
        "/api/v1/reports/issue-distribution", project="CORE", group_by="labels"
    ).json()
    assert [(r["value"], r["label"], r["count"]) for r in body["rows"]] == [
        (None, "None", 6),
        ("backend", "backend", 2),
        ("api", "api", 1),
    ]


def test_distribution_by_labels_counts_a_label_repeated_in_a_ticket_once(admin_a, world_a, agile):
    # given CORE-1 with "backend" twice and "ui", and CORE-2 without labels now
    with schema_context(world_a.schema):
        Ticket.objects.filter(key="CORE-1").update(labels=["backend", "ui", "backend"])
        Ticket.objects.filter(key="CORE-2").update(labels=[])
    connection.set_schema_to_public()
    # when
    body = admin_a.get(
        "/api/v1/reports/issue-distribution", project="CORE", group_by="labels"
    ).json()
    # then each ticket counts once per label, tickets without labels under "None"
    assert body["total"] == 8
    assert [(r["value"], r["label"], r["count"], r["percent"]) for r in body["rows"]] == [
        (None, "None", 7, 87.5),
        ("backend", "backend", 1, 12.5),
        ("ui", "ui", 1, 12.5),
    ]


def test_distribution_by_a_custom_field_by_name_or_id(admin_a, agile):
    by_name = admin_a.get(
        "/api/v1/reports/issue-distribution", project="CORE", group_by="Severity"
    ).json()
    by_id = admin_a.get(
        "/api/v1/reports/issue-distribution",
        project="CORE",
        group_by=f"cf[{agile.severity_id}]",
    ).json()
    expected = [("None", 5), ("S1", 2), ("S2", 1)]
    assert [(r["label"], r["count"]) for r in by_name["rows"]] == expected
    assert by_id["rows"] == by_name["rows"]


def test_distribution_by_assignee_sprint_and_category(admin_a, agile):
    def labels(group_by):
        body = admin_a.get(
            "/api/v1/reports/issue-distribution", project="CORE", group_by=group_by
        ).json()
        return [(r["label"], r["count"]) for r in body["rows"]]

    assert labels("assignee")[:2] == [("Lead Alpha", 3), ("User Alpha", 3)]
    assert labels("sprint") == [("None", 6), ("Sprint 3", 2)]
    assert labels("statusCategory") == [("Done", 5), ("To Do", 2), ("In Progress", 1)]


def test_distribution_by_project_hides_private_projects(admin_a, user_a, agile):
    as_admin = admin_a.get("/api/v1/reports/issue-distribution", group_by="project").json()
    as_user = user_a.get("/api/v1/reports/issue-distribution", group_by="project").json()
    assert [(r["label"], r["count"]) for r in as_admin["rows"]] == [("CORE", 8), ("SECRET", 1)]
    assert [(r["label"], r["count"]) for r in as_user["rows"]] == [("CORE", 8)]


def test_distribution_by_a_field_that_cannot_be_grouped_is_422(admin_a, agile):
    summary = admin_a.get("/api/v1/reports/issue-distribution", group_by="summary")
    unknown = admin_a.get("/api/v1/reports/issue-distribution", group_by="nosuchfield")
    assert (summary.status_code, summary.json()["error"]["code"]) == (422, "field_not_groupable")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (422, "field_not_groupable")


def test_distribution_date_range_keeps_tickets_created_in_it(admin_a, agile):
    body = admin_a.get(
        "/api/v1/reports/issue-distribution",
        project="CORE",
        group_by="status",
        **{"from": "2026-03-01", "to": "2026-03-10"},
    ).json()
    # CORE-3 (Mar 3), CORE-6 (Mar 6), CORE-8 (Mar 10)
    assert [(r["label"], r["count"]) for r in body["rows"]] == [
        ("Done", 1),
        ("In Progress", 1),
        ("To Do", 1),
    ]


def test_time_tracking_per_ticket_and_per_user(admin_a, agile):
    # when
    body = admin_a.get("/api/v1/reports/time-tracking", project="CORE").json()
    # then
    assert body["total"] == {
        "tickets": 4,
        "original_estimate": 21600,
        "logged": 12600,
        "remaining_estimate": 14400,
    }
    assert [
        (t["key"], t["original_estimate"], t["logged"], t["remaining_estimate"])
        for t in body["tickets"]
    ] == [
        ("CORE-1", 7200, 5400, 0),
        ("CORE-4", 14400, 5400, 3600),
        ("CORE-6", None, 1800, 3600),
        ("CORE-8", None, 0, 7200),
    ]
    assert [(u["username"], u["logged"], u["worklogs"], u["tickets"]) for u in body["users"]] == [
        ("user_alpha", 7200, 2, 2),
        ("lead_alpha", 5400, 2, 2),
    ]


def test_time_tracking_counts_a_users_tickets_once_with_all_their_worklogs(admin_a, world_a, agile):
    # given a second worklog of user_alpha on CORE-4 (30 min, March 11)
    with schema_context(world_a.schema):
        Worklog.objects.create(
            ticket=agile.tickets["4"], author=world_a.user, time_spent=1800, started_at=at(11, 9)
        )
    connection.set_schema_to_public()
    # when
    body = admin_a.get("/api/v1/reports/time-tracking", project="CORE").json()
    # then
    assert body["total"]["logged"] == 14400
    assert [(t["key"], t["logged"]) for t in body["tickets"]] == [
        ("CORE-1", 5400),
        ("CORE-4", 7200),
        ("CORE-6", 1800),
        ("CORE-8", 0),
    ]
    assert [(u["username"], u["logged"], u["worklogs"], u["tickets"]) for u in body["users"]] == [
        ("user_alpha", 9000, 3, 2),
        ("lead_alpha", 5400, 2, 2),
    ]


def test_time_tracking_of_one_user_and_a_date_range(admin_a, agile):
    lead = admin_a.get("/api/v1/reports/time-tracking", project="CORE", user="lead_alpha").json()
    march_9_on = admin_a.get(
        "/api/v1/reports/time-tracking", project="CORE", **{"from": "2026-03-09"}
    ).json()
    assert [(t["key"], t["logged"]) for t in lead["tickets"]] == [
        ("CORE-1", 3600),
        ("CORE-6", 1800),
    ]
    assert [(u["username"], u["logged"]) for u in lead["users"]] == [("lead_alpha", 5400)]
    assert [(t["key"], t["logged"]) for t in march_9_on["tickets"]] == [
        ("CORE-4", 5400),
        ("CORE-6", 1800),
    ]


def test_time_tracking_as_csv_and_unknown_user(admin_a, agile):
    response = admin_a.get("/api/v1/reports/time-tracking", project="CORE", format="csv")
    unknown = admin_a.get("/api/v1/reports/time-tracking", user="nobody_at_all")
    assert _rows(response) == [
        ["key", "summary", "original_estimate", "remaining_estimate", "logged"],
        ["CORE-1", "ticket 1", "7200", "0", "5400"],
        ["CORE-4", "ticket 4", "14400", "3600", "5400"],
        ["CORE-6", "ticket 6", "", "3600", "1800"],
        ["CORE-8", "ticket 8", "", "7200", "0"],
    ]
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (422, "user_not_found")


def test_reports_refuse_bad_jql_and_private_projects(user_a, agile):
    bad = user_a.get("/api/v1/reports/assignee-workload", jql="status = = x")
    hidden = user_a.get("/api/v1/reports/time-tracking", project="SECRET")
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "jql_invalid")
    assert (hidden.status_code, hidden.json()["error"]["code"]) == (404, "project_not_found")


def test_distribution_by_status_reads_the_latest_snapshot_when_there_is_one(
    admin_a, user_a, world_a, agile
):
    from datetime import date

    from django.db import connection
    from django_tenants.utils import schema_context

    from reports.snapshots import snapshot_take

    # given a snapshot of March 4 (To Do 2, In Progress 1, Done 2 in CORE, SECRET-1 To Do)
    with schema_context(world_a.schema):
        snapshot_take(day=date(2026, 3, 4))
    connection.set_schema_to_public()
    # when
    core = admin_a.get(
        "/api/v1/reports/issue-distribution", project="CORE", group_by="status"
    ).json()
    everything = user_a.get("/api/v1/reports/issue-distribution", group_by="status").json()
    # then the counts of today: the snapshot moved by the status changes since
    expected = [("Done", 5, 62.5), ("To Do", 2, 25.0), ("In Progress", 1, 12.5)]
    assert [(r["label"], r["count"], r["percent"]) for r in core["rows"]] == expected
    assert [(r["label"], r["count"], r["percent"]) for r in everything["rows"]] == expected
    assert (core["total"], everything["total"]) == (8, 8)
