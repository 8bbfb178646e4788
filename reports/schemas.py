"""Request parameters and response shapes of the reports API."""

from datetime import date, datetime
from typing import Literal

from ninja import Field, Schema
from pydantic import ConfigDict

from saas.pagination import MAX_LIMIT


class ReportIn(Schema):
    """Parameters every report takes."""

    model_config = ConfigDict(populate_by_name=True)

    project: str | None = Field(None, max_length=200, description="Project key or id.")
    jql: str | None = Field(None, max_length=10_000, description="Narrow to a JQL query.")
    date_from: date | None = Field(None, alias="from", description="First local day.")
    date_to: date | None = Field(None, alias="to", description="Last local day.")
    format: Literal["json", "csv"] = Field("json", description="`csv` streams a CSV file.")


class VelocityIn(ReportIn):
    sprints: int = Field(7, ge=1, le=50, description="How many closed sprints (latest).")


class BurndownIn(ReportIn):
    sprint: str | None = Field(
        None, max_length=30, description="Sprint id; default the active (or last closed) one."
    )
    unit: Literal["points", "count", "hours"] = "points"


class DistributionIn(ReportIn):
    group_by: str = Field("status", max_length=200, description="A JQL field name or cf[id].")


class TimeTrackingIn(ReportIn):
    user: str | None = Field(None, max_length=254, description="Username, email, id or `me`.")
    offset: int = Field(0, ge=0, le=1_000_000_000)
    limit: int = Field(50, ge=1, le=MAX_LIMIT)


class CreatedResolvedIn(ReportIn):
    period: Literal["day", "week", "month"] = "day"


class CycleTimeIn(ReportIn):
    limit: int = Field(500, ge=1, le=5000, description="At most this many chart points.")


Number = int | float


class VelocitySprintOut(Schema):
    sprint_id: int
    name: str
    project: str
    start_at: datetime | None
    end_at: datetime | None
    completed_at: datetime | None
    committed_count: int
    committed_points: Number
    completed_count: int
    completed_points: Number
    added_count: int
    removed_count: int
    not_completed_count: int


class VelocityAverageOut(Schema):
    committed_points: Number
    completed_points: Number
    committed_count: Number
    completed_count: Number


class VelocityOut(Schema):
    sprints: list[VelocitySprintOut]
    average: VelocityAverageOut


class SprintRefOut(Schema):
    id: int
    name: str
    state: str
    start_at: datetime | None
    end_at: datetime | None
    completed_at: datetime | None


class BurndownDayOut(Schema):
    day: date
    remaining: Number | None = Field(..., description="At the end of the day; null ahead.")
    scope: Number | None
    ideal: Number
    added: Number
    removed: Number
    completed: Number = Field(..., description="Completed that day, less reopened.")


class BurndownEventOut(Schema):
    at: datetime
    day: date
    kind: Literal["added", "removed", "completed", "reopened"]
    key: str
    value: Number


class BurndownOut(Schema):
    sprint: SprintRefOut | None
    unit: str
    start_value: Number
    days: list[BurndownDayOut]
    events: list[BurndownEventOut]


class WorkloadRowOut(Schema):
    assignee_id: int | None
    username: str | None
    display_name: str | None
    open_count: int
    to_do_count: int
    in_progress_count: int
    points: Number
    unestimated_count: int
    remaining_estimate: int = Field(..., description="Seconds.")


class WorkloadTotalOut(Schema):
    open_count: int
    points: Number
    remaining_estimate: int


class WorkloadOut(Schema):
    rows: list[WorkloadRowOut]
    total: WorkloadTotalOut


class DistributionRowOut(Schema):
    value: str | None
    label: str
    count: int
    percent: float


class DistributionOut(Schema):
    field: str
    total: int
    rows: list[DistributionRowOut]


class TimeTicketOut(Schema):
    key: str
    summary: str
    original_estimate: int | None
    remaining_estimate: int | None
    logged: int


class TimeUserOut(Schema):
    user_id: int | None
    username: str | None
    logged: int
    worklogs: int
    tickets: int


class TimeTotalOut(Schema):
    tickets: int
    original_estimate: int
    logged: int
    remaining_estimate: int


class TimeTrackingOut(Schema):
    total: TimeTotalOut
    tickets: list[TimeTicketOut]
    offset: int
    limit: int
    users: list[TimeUserOut]


class StatusRefOut(Schema):
    id: int
    name: str
    category: str


class FlowDayOut(Schema):
    day: date
    counts: list[int] = Field(..., description="Per status, in the order of `statuses`.")


class CumulativeFlowOut(Schema):
    from_: date = Field(..., alias="from")
    to: date
    statuses: list[StatusRefOut]
    days: list[FlowDayOut]
    snapshot_days: int


class CreatedResolvedRowOut(Schema):
    period_start: date
    created: int
    resolved: int
    created_total: int
    resolved_total: int


class CreatedResolvedOut(Schema):
    from_: date = Field(..., alias="from")
    to: date
    period: str
    rows: list[CreatedResolvedRowOut]


class DurationStatsOut(Schema):
    count: int
    mean: float | None
    p50: float | None
    p85: float | None
    p95: float | None


class CyclePointOut(Schema):
    key: str
    created_at: datetime
    started_at: datetime | None
    resolved_at: datetime
    lead_hours: float
    cycle_hours: float | None


class CycleTimeOut(Schema):
    from_: date = Field(..., alias="from")
    to: date
    lead_time: DurationStatsOut
    cycle_time: DurationStatsOut
    points: list[CyclePointOut]
