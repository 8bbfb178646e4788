"""Request and response shapes of the dashboards API."""

from datetime import datetime
from typing import Annotated, Any

from ninja import Field, Schema
from pydantic import AfterValidator, StrictInt, StringConstraints

from accounts.user_schemas import GroupRefOut
from reports.models import Gadget
from saas.refs import MAX_DB_ID
from tickets.schemas import ProjectRef, UserRef


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=255),
    AfterValidator(_no_nul),
]
Text = Annotated[str, StringConstraints(max_length=4000), AfterValidator(_no_nul)]
Title = Annotated[str, StringConstraints(max_length=255), AfterValidator(_no_nul)]
Id = Annotated[StrictInt, Field(ge=1, le=MAX_DB_ID)]


class GadgetIn(Schema):
    id: Id | None = Field(None, description="On update: the gadget to keep; omit for a new one.")
    type: Gadget.Type
    title: Title = ""
    column: int = Field(0, ge=0, le=3)
    position: int = Field(0, ge=0, le=100)
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="filter_results: {filter_id | jql, columns, limit}; report: {report, "
        "params}; assigned_to_me / activity: {limit, project}.",
    )


class DashboardIn(Schema):
    name: Name
    description: Text = ""
    columns: int = Field(2, ge=1, le=4, description="Layout: number of columns.")
    is_public: bool = Field(False, description="Visible to every member of the workspace.")
    shared_with_groups: list[Id] = Field(default_factory=list, max_length=100)
    shared_with_projects: list[Id] = Field(default_factory=list, max_length=100)
    gadgets: list[GadgetIn] = Field(default_factory=list, max_length=30)


class DashboardFilters(Schema):
    q: Annotated[str, StringConstraints(max_length=200), AfterValidator(_no_nul)] | None = None


class GadgetOut(Schema):
    id: int
    type: str
    title: str
    column: int
    position: int
    config: dict[str, Any]


class DashboardOut(Schema):
    id: int
    name: str
    description: str
    owner: UserRef
    columns: int
    is_public: bool
    shared_with_groups: list[GroupRefOut]
    shared_with_projects: list[ProjectRef]
    gadgets: list[GadgetOut]
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_shared_with_groups(obj: Any) -> list[Any]:
        return list(obj.shared_with_groups.all())

    @staticmethod
    def resolve_shared_with_projects(obj: Any) -> list[Any]:
        return list(obj.shared_with_projects.all())

    @staticmethod
    def resolve_gadgets(obj: Any) -> list[Any]:
        return list(obj.gadgets.all())


class GadgetDataOut(Schema):
    gadget: GadgetOut
    data: dict[str, Any]


class TicketRowOut(Schema):
    key: str
    summary: str
    status: str
    priority: str
    assignee: str | None
    updated: str | None = None


class TicketRowsOut(Schema):
    total: int
    items: list[TicketRowOut]


class SprintProgressOut(Schema):
    sprint_id: int
    name: str
    project: str
    end_at: datetime | None
    total_count: int
    done_count: int
    total_points: int | float
    done_points: int | float


class HomeOut(Schema):
    assigned_to_me: TicketRowsOut
    recently_updated: list[TicketRowOut]
    watched: TicketRowsOut
    sprints: list[SprintProgressOut]


class HomeIn(Schema):
    limit: int = Field(10, ge=1, le=50)
