"""Request and response schemas of boards, ranking, backlog and sprints."""

from datetime import datetime
from typing import Any, Literal

from ninja import Field, Schema
from pydantic import ConfigDict

from tickets.schemas import NamedRef, ProjectRef, UserRef


class ColumnIn(Schema):
    model_config = ConfigDict(extra="forbid")

    id: int | None = Field(None, description="Send an existing column's id to keep it.")
    name: str = Field(..., max_length=100)
    statuses: list[str | int] = Field(default_factory=list, description="Names or ids.")
    wip_min: int | None = Field(None, ge=0, le=100_000)
    wip_max: int | None = Field(None, ge=0, le=100_000)


class BoardIn(Schema):
    """A board over a project (`project`: id or key) or a saved filter (`filter`: id);
    `columns` default to one per status category of the project's workflows."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=255)
    kind: Literal["kanban", "scrum"]
    project: str | int | None = None
    filter: int | None = None
    sub_jql: str = Field("", max_length=10_000)
    swimlanes: Literal["none", "assignee", "epic", "priority"] = "none"
    columns: list[ColumnIn] | None = Field(None, max_length=50)


class BoardPatch(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=255)
    sub_jql: str | None = Field(None, max_length=10_000)
    swimlanes: Literal["none", "assignee", "epic", "priority"] | None = None
    columns: list[ColumnIn] | None = Field(None, max_length=50)


class ColumnOut(Schema):
    id: int
    name: str
    position: int
    statuses: list[int]
    wip_min: int | None
    wip_max: int | None

    @staticmethod
    def resolve_statuses(obj: Any) -> list[int]:
        return list(obj["statuses"] if isinstance(obj, dict) else obj.status_ids)


class BoardOut(Schema):
    id: int
    name: str
    kind: str
    project: ProjectRef | None
    filter: int | None
    sub_jql: str
    swimlanes: str
    columns: list[ColumnOut]
    version: int

    @staticmethod
    def resolve_filter(obj: Any) -> int | None:
        return obj.saved_filter_id

    @staticmethod
    def resolve_columns(obj: Any) -> list[Any]:
        return list(obj.columns.all())


class BoardListOut(Schema):
    id: int
    name: str
    kind: str
    project: ProjectRef | None
    filter: int | None

    @staticmethod
    def resolve_filter(obj: Any) -> int | None:
        return obj.saved_filter_id


class CardOut(Schema):
    id: int
    key: str
    summary: str
    type: NamedRef
    status: NamedRef
    priority: NamedRef
    assignee: UserRef | None
    epic: str | None
    story_points: float | None
    rank: str
    lane: int | None = Field(None, description="The card's swimlane key on a board view.")

    @staticmethod
    def resolve_type(obj: Any) -> Any:
        return obj.issue_type

    @staticmethod
    def resolve_lane(obj: Any) -> int | None:
        return getattr(obj, "lane", None)

    @staticmethod
    def resolve_epic(obj: Any) -> str | None:
        return obj.epic.key if obj.epic_id else None


class CardPage(Schema):
    column: int
    total: int
    offset: int
    limit: int
    wip: str | None = Field(None, description='"over", "under", "ok", or null without limits.')
    next: str | None = Field(None, description="Key of the last card when more follow.")
    items: list[CardOut]


class ColumnViewOut(ColumnOut):
    total: int
    wip: str | None
    cards: CardPage


class LaneOut(Schema):
    key: int | None
    name: str
    total: int
    counts: dict[str, int] = Field(..., description="Cards of the lane per column id.")


class SprintRef(Schema):
    id: int
    name: str
    state: str
    goal: str
    start_at: datetime | None
    end_at: datetime | None


class BoardViewOut(Schema):
    board: BoardListOut
    sprint: SprintRef | None
    swimlanes: str
    columns: list[ColumnViewOut]
    lanes: list[LaneOut]
    unmapped: int = Field(..., description="Cards whose status no column shows.")


class RankIn(Schema):
    """Exactly one of `before` and `after` (422 otherwise)."""

    model_config = ConfigDict(extra="forbid")

    ticket: str | int
    before: str | int | None = None
    after: str | int | None = None


class MoveIn(Schema):
    model_config = ConfigDict(extra="forbid")

    ticket: str | int
    column: int
    status: str | int | None = Field(
        None, description="Which of the column's statuses, when several can be reached."
    )
    before: str | int | None = None
    after: str | int | None = None


class SprintIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=255)
    goal: str = Field("", max_length=10_000)
    start: datetime | None = None
    end: datetime | None = None
    board: int | None = None


class SprintPatch(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=255)
    goal: str | None = Field(None, max_length=10_000)
    start: datetime | None = None
    end: datetime | None = None


class SprintStartIn(Schema):
    model_config = ConfigDict(extra="forbid")

    goal: str | None = Field(None, max_length=10_000)
    start: datetime | None = None
    end: datetime | None = None


class SprintCompleteIn(Schema):
    model_config = ConfigDict(extra="forbid")

    move_open_to: str | int = Field("backlog", description='"backlog" or a future sprint id.')


class SprintTicketsIn(Schema):
    model_config = ConfigDict(extra="forbid")

    add: list[str | int] = Field(default_factory=list, max_length=1000)
    remove: list[str | int] = Field(default_factory=list, max_length=1000)


class SprintOut(Schema):
    id: int
    name: str
    goal: str
    state: str
    project: ProjectRef
    board: int | None
    sequence: int
    start_at: datetime | None
    end_at: datetime | None
    completed_at: datetime | None
    ticket_count: int
    version: int

    @staticmethod
    def resolve_board(obj: Any) -> int | None:
        return obj.board_id

    @staticmethod
    def resolve_ticket_count(obj: Any) -> int:
        return getattr(obj, "ticket_count", 0)


class BacklogSprintOut(Schema):
    sprint: SprintRef
    total: int
    items: list[CardOut]


class BacklogOut(Schema):
    sprints: list[BacklogSprintOut]
    total: int
    offset: int
    limit: int
    items: list[CardOut]
