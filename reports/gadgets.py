"""Gadgets: what each type's config holds (checked on write) and how one is rendered
for a viewer (always with the viewer's permissions, never the owner's)."""

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db.models import F, QuerySet
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from accounts.members.models import Membership
from reports import agile, breakdowns, flow, schemas
from reports.models import Gadget
from reports.scope import jql_tickets, report_scope
from saas.errors import ApiError, Invalid
from search.filter_selectors import filter_get_for_user
from tickets.models import Ticket, TicketHistory

# Columns a filter-results gadget may show: name -> values() lookup.
TICKET_COLUMNS = {
    "key": "key",
    "summary": "summary",
    "type": "issue_type__name",
    "status": "status__name",
    "priority": "priority__name",
    "assignee": "assignee__username",
    "reporter": "reporter__username",
    "created": "created_at",
    "updated": "updated_at",
    "due": "due_date",
    "story_points": "story_points",
}
DEFAULT_COLUMNS = ["key", "summary", "status", "priority", "assignee"]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FilterResultsConfig(_Config):
    filter_id: int | None = Field(None, ge=1)
    jql: str | None = Field(None, max_length=10_000)
    columns: list[str] = Field(default_factory=lambda: list(DEFAULT_COLUMNS), max_length=11)
    limit: int = Field(10, ge=1, le=50)

    @model_validator(mode="after")
    def _one_source(self) -> "FilterResultsConfig":
        if (self.filter_id is None) == (self.jql is None):
            raise ValueError("give either filter_id or jql")
        unknown = [c for c in self.columns if c not in TICKET_COLUMNS]
        if unknown:
            raise ValueError(f"unknown columns {unknown}; choose from {sorted(TICKET_COLUMNS)}")
        return self


class ListConfig(_Config):
    limit: int = Field(10, ge=1, le=50)
    project: str | None = Field(None, max_length=200)


# report name -> (parameters, run(scope, params) -> data, response schema)
REPORTS: dict[str, tuple[type[schemas.ReportIn], Callable[..., dict], type[Any]]] = {
    "velocity": (
        schemas.VelocityIn,
        lambda scope, p: agile.velocity_report(scope=scope, sprints=p.sprints),
        schemas.VelocityOut,
    ),
    "burndown": (
        schemas.BurndownIn,
        lambda scope, p: agile.burndown_report(scope=scope, sprint=p.sprint, unit=p.unit),
        schemas.BurndownOut,
    ),
    "assignee-workload": (
        schemas.ReportIn,
        lambda scope, p: breakdowns.workload_report(scope=scope),
        schemas.WorkloadOut,
    ),
    "issue-distribution": (
        schemas.DistributionIn,
        lambda scope, p: breakdowns.distribution_report(scope=scope, group_by=p.group_by),
        schemas.DistributionOut,
    ),
    "time-tracking": (
        schemas.TimeTrackingIn,
        lambda scope, p: breakdowns.time_tracking_report(
            scope=scope, user=p.user, offset=p.offset, limit=p.limit
        ),
        schemas.TimeTrackingOut,
    ),
    "cumulative-flow": (
        schemas.ReportIn,
        lambda scope, p: flow.cumulative_flow_report(scope=scope),
        schemas.CumulativeFlowOut,
    ),
    "created-vs-resolved": (
        schemas.CreatedResolvedIn,
        lambda scope, p: flow.created_vs_resolved_report(scope=scope, period=p.period),
        schemas.CreatedResolvedOut,
    ),
    "cycle-time": (
        schemas.CycleTimeIn,
        lambda scope, p: flow.cycle_time_report(scope=scope, limit=p.limit),
        schemas.CycleTimeOut,
    ),
}


class ReportConfig(_Config):
    report: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known(self) -> "ReportConfig":
        if self.report not in REPORTS:
            raise ValueError(f"unknown report; choose from {sorted(REPORTS)}")
        params_class = REPORTS[self.report][0]
        params_class.model_validate({**self.params, "format": "json"})
        return self


CONFIGS: dict[str, type[_Config]] = {
    Gadget.Type.FILTER_RESULTS: FilterResultsConfig,
    Gadget.Type.REPORT: ReportConfig,
    Gadget.Type.ASSIGNED_TO_ME: ListConfig,
    Gadget.Type.ACTIVITY: ListConfig,
}


def gadget_config_clean(
    *, type: str, config: dict[str, Any], actor: Membership, index: int
) -> dict[str, Any]:
    """The config of a gadget normalised, or 422 naming the gadget and the problem. A
    filter must be one the actor can see and JQL must compile for them."""
    where = f"gadgets.{index}.config"
    try:
        cleaned = CONFIGS[type].model_validate(config)
    except ValidationError as exc:
        details = [
            {"field": ".".join([where, *map(str, err["loc"])]), "message": err["msg"]}
            for err in exc.errors()
        ]
        raise Invalid("Invalid gadget configuration.", details=details) from exc
    if isinstance(cleaned, FilterResultsConfig):
        try:
            if cleaned.filter_id is not None:
                filter_get_for_user(member=actor, filter_id=cleaned.filter_id)
            else:
                jql_tickets(member=actor, jql=cleaned.jql)
        except ApiError as exc:
            raise Invalid(
                "Invalid gadget configuration.",
                code="gadget_invalid",
                details=[{"field": where, "message": exc.message}],
            ) from exc
    return cleaned.model_dump(exclude_none=True)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def ticket_rows(tickets: QuerySet[Ticket], columns: list[str], limit: int) -> list[dict]:
    lookups = [TICKET_COLUMNS[c] for c in columns]
    return [
        {c: _plain(row[lookup]) for c, lookup in zip(columns, lookups, strict=True)}
        for row in tickets.values(*lookups)[:limit]
    ]


def assigned_to_me(*, member: Membership, limit: int, project: str | None = None) -> dict:
    """Open tickets assigned to the member, most urgent then most recently updated."""
    scope = report_scope(member=member, project=project)
    tickets = scope.tickets.filter(assignee_id=member.user_id).exclude(status__category="DONE")
    ordered = tickets.order_by(F("priority__rank").desc(nulls_last=True), "-updated_at", "-id")
    return {"total": tickets.count(), "items": ticket_rows(ordered, DEFAULT_COLUMNS, limit)}


def activity(*, member: Membership, limit: int, project: str | None = None) -> dict:
    """The latest field changes on tickets the member can see."""
    scope = report_scope(member=member, project=project)
    changes = (
        TicketHistory.objects.filter(ticket__in=scope.tickets.order_by().values("pk"))
        .order_by("-created_at", "-id")
        .values(
            "id",
            "ticket__key",
            "field",
            "from_value",
            "to_value",
            "actor__username",
            "created_at",
        )[:limit]
    )
    return {
        "items": [
            {
                "id": row["id"],
                "key": row["ticket__key"],
                "field": row["field"],
                "from": row["from_value"],
                "to": row["to_value"],
                "actor": row["actor__username"],
                "at": row["created_at"].isoformat(),
            }
            for row in changes
        ]
    }


def gadget_render(*, gadget: Gadget, viewer: Membership) -> dict[str, Any]:
    """The data of one gadget as `viewer` may see it (404 for a filter or project they
    cannot see, 400 for JQL that no longer compiles for them)."""
    config = gadget.config
    if gadget.type == Gadget.Type.FILTER_RESULTS:
        if config.get("filter_id"):
            saved = filter_get_for_user(member=viewer, filter_id=config["filter_id"])
            jql = saved.jql
        else:
            jql = config.get("jql", "")
        tickets = jql_tickets(member=viewer, jql=jql)
        columns = config.get("columns") or DEFAULT_COLUMNS
        return {
            "total": tickets.count(),
            "columns": columns,
            "items": ticket_rows(tickets, columns, config.get("limit", 10)),
        }
    if gadget.type == Gadget.Type.REPORT:
        params_class, run, out_class = REPORTS[config["report"]]
        params = params_class.model_validate({**config.get("params", {}), "format": "json"})
        scope = report_scope(
            member=viewer,
            project=params.project,
            jql=params.jql,
            date_from=params.date_from,
            date_to=params.date_to,
        )
        data = run(scope, params)
        return out_class.model_validate(data).model_dump(mode="json", by_alias=True)
    if gadget.type == Gadget.Type.ASSIGNED_TO_ME:
        return assigned_to_me(
            member=viewer, limit=config.get("limit", 10), project=config.get("project")
        )
    return activity(member=viewer, limit=config.get("limit", 10), project=config.get("project"))
