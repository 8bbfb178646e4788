"""Reports: velocity, burndown, workload, distribution, time tracking and flow.

Mounted at `/reports`. Every report takes `project` (key or id; 404 if you cannot see
it), `jql` (400 `jql_invalid`), `from`/`to` (local days of the workspace's time zone)
and `format=csv`, and only ever counts tickets the caller may see."""

from typing import Any

from ninja import Query, Router

from accounts.authentication import AuthedRequest
from reports import agile, breakdowns, flow
from reports.export import csv_response, sql_rows
from reports.schemas import (
    BurndownIn,
    BurndownOut,
    CreatedResolvedIn,
    CreatedResolvedOut,
    CumulativeFlowOut,
    CycleTimeIn,
    CycleTimeOut,
    DistributionIn,
    DistributionOut,
    ReportIn,
    TimeTrackingIn,
    TimeTrackingOut,
    VelocityIn,
    VelocityOut,
    WorkloadOut,
)
from reports.scope import ReportScope, report_scope

router = Router(tags=["reports"])


def _scope(request: AuthedRequest, params: ReportIn) -> ReportScope:
    return report_scope(
        member=request.member,
        project=params.project,
        jql=params.jql,
        date_from=params.date_from,
        date_to=params.date_to,
    )


def _table(name: str, rows: list[dict[str, Any]], columns: list[str]) -> Any:
    return csv_response(name=name, header=columns, rows=([row[c] for c in columns] for row in rows))


@router.get("/velocity", response=VelocityOut, by_alias=True)
def report_velocity(request: AuthedRequest, params: Query[VelocityIn]) -> Any:
    """Committed vs completed story points and tickets of the last `sprints` closed
    sprints (oldest first), from the sprint scope log, with averages."""
    report = agile.velocity_report(scope=_scope(request, params), sprints=params.sprints)
    if params.format == "csv":
        columns = [
            "sprint_id",
            "name",
            "project",
            "start_at",
            "completed_at",
            "committed_count",
            "committed_points",
            "completed_count",
            "completed_points",
            "added_count",
            "removed_count",
            "not_completed_count",
        ]
        return _table("velocity", report["sprints"], columns)
    return report


@router.get("/burndown", response=BurndownOut, by_alias=True)
def report_burndown(request: AuthedRequest, params: Query[BurndownIn]) -> Any:
    """Remaining work (`unit`: points, count or hours of remaining estimate) at the end
    of each day of a sprint, the ideal line, scope added/removed and completed per day,
    and the events behind them with ticket keys. Completion is a move into a Done
    status while in the sprint; a reopening undoes it."""
    report = agile.burndown_report(
        scope=_scope(request, params), sprint=params.sprint, unit=params.unit
    )
    if params.format == "csv":
        columns = ["day", "remaining", "scope", "ideal", "added", "removed", "completed"]
        return _table("burndown", report["days"], columns)
    return report


@router.get("/assignee-workload", response=WorkloadOut, by_alias=True)
def report_workload(request: AuthedRequest, params: Query[ReportIn]) -> Any:
    """Open tickets, story points and remaining estimate (seconds) per assignee, the
    unassigned as a row of their own; `from`/`to` narrow to tickets created then."""
    report = breakdowns.workload_report(scope=_scope(request, params))
    if params.format == "csv":
        columns = [
            "username",
            "display_name",
            "open_count",
            "to_do_count",
            "in_progress_count",
            "points",
            "unestimated_count",
            "remaining_estimate",
        ]
        return _table("assignee-workload", report["rows"], columns)
    return report


@router.get("/issue-distribution", response=DistributionOut, by_alias=True)
def report_distribution(request: AuthedRequest, params: Query[DistributionIn]) -> Any:
    """Ticket counts by a field: status, statusCategory, priority, issuetype,
    resolution, project, assignee, reporter, creator, labels, component, fixVersion,
    sprint, epic, or a select/multi select/user/text custom field (by name or
    `cf[id]`); 422 `field_not_groupable` otherwise."""
    report = breakdowns.distribution_report(scope=_scope(request, params), group_by=params.group_by)
    if params.format == "csv":
        return _table("issue-distribution", report["rows"], ["value", "label", "count", "percent"])
    return report


@router.get("/time-tracking", response=TimeTrackingOut, by_alias=True)
def report_time_tracking(request: AuthedRequest, params: Query[TimeTrackingIn]) -> Any:
    """Original estimate vs time logged vs remaining estimate (seconds) per ticket (a
    page by key; CSV has them all) and per user, from the worklogs."""
    scope = _scope(request, params)
    if params.format == "csv":
        sql, sql_params = breakdowns.time_tracking_rows_sql(scope=scope, user=params.user)
        columns = ["key", "summary", "original_estimate", "remaining_estimate", "logged"]
        return csv_response(name="time-tracking", header=columns, rows=sql_rows(sql, sql_params))
    return breakdowns.time_tracking_report(
        scope=scope, user=params.user, offset=params.offset, limit=params.limit
    )


@router.get("/cumulative-flow", response=CumulativeFlowOut, by_alias=True)
def report_cumulative_flow(request: AuthedRequest, params: Query[ReportIn]) -> Any:
    """Tickets per status at the end of each day of `from`..`to` (default: the last 30
    days), from the status history (and the daily snapshots when no JQL is given)."""
    report = flow.cumulative_flow_report(scope=_scope(request, params))
    if params.format == "csv":
        header = ["day", *(status["name"] for status in report["statuses"])]
        rows = ([day["day"], *day["counts"]] for day in report["days"])
        return csv_response(name="cumulative-flow", header=header, rows=rows)
    return report


@router.get("/created-vs-resolved", response=CreatedResolvedOut, by_alias=True)
def report_created_vs_resolved(request: AuthedRequest, params: Query[CreatedResolvedIn]) -> Any:
    """Tickets created and resolved per day, week or month, with running totals."""
    report = flow.created_vs_resolved_report(scope=_scope(request, params), period=params.period)
    if params.format == "csv":
        columns = ["period_start", "created", "resolved", "created_total", "resolved_total"]
        return _table("created-vs-resolved", report["rows"], columns)
    return report


@router.get("/cycle-time", response=CycleTimeOut, by_alias=True)
def report_cycle_time(request: AuthedRequest, params: Query[CycleTimeIn]) -> Any:
    """Control chart data of the tickets resolved in `from`..`to`: lead time (created →
    resolved) and cycle time (first In Progress → resolved) in hours per ticket, with
    count, mean, p50, p85 and p95."""
    report = flow.cycle_time_report(scope=_scope(request, params), limit=params.limit)
    if params.format == "csv":
        columns = ["key", "created_at", "started_at", "resolved_at", "lead_hours", "cycle_hours"]
        return _table("cycle-time", report["points"], columns)
    return report
