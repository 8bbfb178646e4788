"""Cumulative flow, created vs resolved and cycle time on the known fixture; daily
snapshots and the tenant's time zone."""

import csv
import io
from datetime import date

from django.db import connection
from django_tenants.utils import schema_context

from reports.models import SnapshotDay, StatusSnapshot
from reports.snapshots import snapshot_take
from tenants.models import Tenant

MARCH_1_TO_7 = {"from": "2026-03-01", "to": "2026-03-07"}
# [To Do, In Progress, Done] at the end of each day
CORE_FLOW = [
    ("2026-03-01", [4, 0, 0]),
    ("2026-03-02", [3, 1, 0]),
    ("2026-03-03", [4, 0, 1]),
    ("2026-03-04", [2, 1, 2]),
    ("2026-03-05", [1, 2, 2]),
    ("2026-03-06", [2, 1, 3]),
    ("2026-03-07", [2, 1, 3]),
]


def _flow(body):
    return [(d["day"], d["counts"]) for d in body["days"]]


def test_cumulative_flow_from_history(admin_a, agile):
    # when
    response = admin_a.get("/api/v1/reports/cumulative-flow", project="CORE", **MARCH_1_TO_7)
    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert [s["name"] for s in body["statuses"]] == ["To Do", "In Progress", "Done"]
    assert _flow(body) == CORE_FLOW
    assert body["snapshot_days"] == 0


def test_cumulative_flow_with_jql_and_as_csv(admin_a, agile):
    response = admin_a.get(
        "/api/v1/reports/cumulative-flow",
        jql="assignee = lead_alpha AND project = CORE",
        format="csv",
        **{"from": "2026-03-03", "to": "2026-03-05"},
    )
    assert list(csv.reader(io.StringIO(response.content.decode()))) == [
        ["day", "To Do", "In Progress", "Done"],
        ["2026-03-03", "1", "0", "1"],
        ["2026-03-04", "0", "0", "2"],
        ["2026-03-05", "0", "1", "1"],
    ]


def test_snapshot_of_a_day_is_exact_and_idempotent(world_a, agile, project_a):
    # when the day is snapshotted twice
    with schema_context(world_a.schema):
        snapshot_take(day=date(2026, 3, 4))
        snapshot_take(day=date(2026, 3, 4))
        rows = sorted(
            (s.status.name, s.tickets, int(s.points))
            for s in StatusSnapshot.objects.filter(day=date(2026, 3, 4), project=project_a)
        )
        days = list(SnapshotDay.objects.values_list("day", flat=True))
    connection.set_schema_to_public()
    # then
    assert rows == [("Done", 2, 8), ("In Progress", 1, 8), ("To Do", 2, 3)]
    assert days == [date(2026, 3, 4)]


def test_cumulative_flow_reads_snapshots_and_anchors_other_days_on_them(
    admin_a, user_a, world_a, agile
):
    # given snapshots of March 4 and 5
    with schema_context(world_a.schema):
        snapshot_take(day=date(2026, 3, 4))
        snapshot_take(day=date(2026, 3, 5))
    connection.set_schema_to_public()
    # when
    body = admin_a.get("/api/v1/reports/cumulative-flow", project="CORE", **MARCH_1_TO_7).json()
    everything = user_a.get("/api/v1/reports/cumulative-flow", **MARCH_1_TO_7).json()
    # then the same figures as from history alone, and no private project in them
    assert body["snapshot_days"] == 2
    assert _flow(body) == CORE_FLOW
    assert _flow(everything) == CORE_FLOW


def test_created_vs_resolved_per_week(admin_a, agile):
    body = admin_a.get(
        "/api/v1/reports/created-vs-resolved",
        project="CORE",
        period="week",
        **{"from": "2026-02-23", "to": "2026-03-22"},
    ).json()
    assert [
        (r["period_start"], r["created"], r["resolved"], r["created_total"], r["resolved_total"])
        for r in body["rows"]
    ] == [
        ("2026-02-23", 4, 0, 4, 0),
        ("2026-03-02", 2, 3, 6, 3),
        ("2026-03-09", 1, 1, 7, 4),
        ("2026-03-16", 1, 1, 8, 5),
    ]


def test_days_follow_the_tenant_time_zone(admin_a, world_a, agile):
    # given a workspace in Tokyo: CORE-1 resolved Mar 3 15:00 UTC = Mar 4 00:00 there
    Tenant.objects.filter(pk=world_a.tenant.pk).update(time_zone="Asia/Tokyo")
    # when
    body = admin_a.get(
        "/api/v1/reports/created-vs-resolved",
        project="CORE",
        **{"from": "2026-03-03", "to": "2026-03-04"},
    ).json()
    # then
    assert [(r["period_start"], r["created"], r["resolved"]) for r in body["rows"]] == [
        ("2026-03-03", 1, 0),
        ("2026-03-04", 0, 1),
    ]


def test_cycle_time_with_percentiles(admin_a, agile):
    # when
    body = admin_a.get(
        "/api/v1/reports/cycle-time", project="CORE", **{"from": "2026-03-01", "to": "2026-03-31"}
    ).json()
    # then
    assert body["lead_time"] == {
        "count": 5,
        "mean": 151.0,
        "p50": 149.0,
        "p85": 255.2,
        "p95": 294.4,
    }
    assert body["cycle_time"] == {
        "count": 4,
        "mean": 55.5,
        "p50": 27.0,
        "p85": 93.35,
        "p95": 128.45,
    }
    assert [(p["key"], p["lead_hours"], p["cycle_hours"]) for p in body["points"]] == [
        ("CORE-1", 149.0, 29.0),
        ("CORE-3", 52.0, None),
        ("CORE-2", 216.0, 25.0),
        ("CORE-4", 314.0, 146.0),
        ("CORE-7", 24.0, 22.0),
    ]


def test_cycle_time_csv_and_bad_range(admin_a, agile):
    csv_response = admin_a.get(
        "/api/v1/reports/cycle-time",
        project="CORE",
        format="csv",
        **{"from": "2026-03-17", "to": "2026-03-17"},
    )
    backwards = admin_a.get(
        "/api/v1/reports/cycle-time", **{"from": "2026-03-17", "to": "2026-03-01"}
    )
    rows = list(csv.reader(io.StringIO(csv_response.content.decode())))
    assert rows[0] == [
        "key",
        "created_at",
        "started_at",
        "resolved_at",
        "lead_hours",
        "cycle_hours",
    ]
    assert [(r[0], r[4], r[5]) for r in rows[1:]] == [("CORE-7", "24.0", "22.0")]
    assert (backwards.status_code, backwards.json()["error"]["code"]) == (422, "date_range_invalid")


def test_flow_reports_of_a_private_project_are_404_for_outsiders(user_a, agile):
    for path in ("cumulative-flow", "created-vs-resolved", "cycle-time"):
        response = user_a.get(f"/api/v1/reports/{path}", project="SECRET")
        assert response.status_code == 404, path


def test_beat_snapshots_yesterday_of_every_tenant_once(world_a, world_b, agile, project_a):
    from reports.snapshots import snapshot_yesterday
    from reports.tasks import reports_snapshot, reports_snapshot_all

    # when beat fans out (tasks run eagerly in tests), then a tenant is asked again
    fanned_out = reports_snapshot_all()
    again = reports_snapshot(world_a.schema)
    # then yesterday holds CORE's current counts, taken once
    with schema_context(world_a.schema):
        yesterday = snapshot_yesterday(tz="UTC")
        rows = sorted(
            (s.status.name, s.tickets, int(s.points))
            for s in StatusSnapshot.objects.filter(day=yesterday, project=project_a)
        )
        days = list(SnapshotDay.objects.values_list("day", flat=True))
    connection.set_schema_to_public()
    assert fanned_out >= 2
    assert again == 0
    assert rows == [("Done", 5, 20), ("In Progress", 1, 3), ("To Do", 2, 6)]
    assert days == [yesterday]
