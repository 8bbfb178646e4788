from datetime import date, datetime
from typing import Any

from ninja import Field, Schema
from pydantic import ConfigDict


class UserRef(Schema):
    id: int
    username: str
    display_name: str

    @staticmethod
    def resolve_display_name(obj: Any) -> str:
        return obj.name


class NamedRef(Schema):
    id: int
    name: str


class StatusRef(NamedRef):
    category: str


class ProjectRef(Schema):
    id: int
    key: str
    name: str


class TicketRef(Schema):
    id: int
    key: str
    summary: str


class TicketOut(Schema):
    id: int
    key: str
    project: ProjectRef
    summary: str
    title: str
    description: str
    type: NamedRef
    status: StatusRef
    priority: NamedRef
    resolution: NamedRef | None
    assignee: UserRef | None
    reporter: UserRef | None
    creator: UserRef | None
    labels: list[str]
    components: list[NamedRef]
    fix_versions: list[NamedRef]
    due_date: date | None
    story_points: float | None
    original_estimate: int | None
    remaining_estimate: int | None
    time_spent: int
    parent: TicketRef | None
    epic: TicketRef | None
    custom_fields: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    version: int

    @staticmethod
    def resolve_title(obj: Any) -> str:
        return obj.summary

    @staticmethod
    def resolve_type(obj: Any) -> Any:
        return obj.issue_type

    @staticmethod
    def resolve_components(obj: Any) -> list[Any]:
        return _listed(obj, "components")

    @staticmethod
    def resolve_fix_versions(obj: Any) -> list[Any]:
        return _listed(obj, "fix_versions")

    @staticmethod
    def resolve_custom_fields(obj: Any) -> dict[str, Any]:
        names = {str(cf.pk): cf.name for cf in _listed(obj.project, "custom_fields")}
        return {names[k]: v for k, v in (obj.custom_fields or {}).items() if k in names}


def _listed(obj: Any, relation: str) -> list[Any]:
    """A to-many relation's objects: the list `tickets.selectors.tickets_for_list`
    prefetched (`<relation>_listed`), or else read now."""
    listed = getattr(obj, f"{relation}_listed", None)
    return listed if listed is not None else list(getattr(obj, relation).all())


class LinkOut(Schema):
    id: int
    type: str
    direction: str
    description: str
    ticket: TicketRef


class TicketDetailOut(TicketOut):
    subtasks: list[TicketRef]
    links: list[LinkOut]
    watcher_count: int
    watching: bool

    @staticmethod
    def resolve_subtasks(obj: Any) -> list[Any]:
        return obj.subtasks_visible

    @staticmethod
    def resolve_links(obj: Any) -> list[Any]:
        return obj.links_visible


class TicketIn(Schema):
    """Fields of a ticket; on update only the fields sent are changed."""

    model_config = ConfigDict(extra="forbid")

    summary: str | None = Field(None, max_length=255)
    title: str | None = Field(None, max_length=255, description="Alias of summary.")
    description: str | None = None
    type: str | int | None = Field(None, description="Issue type name or id.")
    priority: str | int | None = None
    assignee: str | int | None = Field(None, description="User id, username or email.")
    reporter: str | int | None = None
    labels: list[str] | None = None
    components: list[str | int] | None = None
    fix_versions: list[str | int] | None = None
    due_date: date | None = None
    story_points: float | None = None
    original_estimate: int | str | None = Field(None, description="Seconds or '2d 4h'.")
    remaining_estimate: int | str | None = None
    resolution: str | int | None = None
    parent: str | int | None = Field(None, description="Parent ticket key (sub-tasks).")
    epic: str | int | None = Field(None, description="Epic ticket key.")
    custom_fields: dict[str, Any] | None = Field(None, description="By field name or id.")

    def changes(self) -> dict[str, Any]:
        data = self.model_dump(exclude_unset=True)
        if "title" in data:
            title = data.pop("title")
            data.setdefault("summary", title)
        return data


class StatusIn(Schema):
    status: str | int


class AssigneeIn(Schema):
    assignee: str | int | None = Field(..., description="User id, username, email or null.")


class PriorityIn(Schema):
    priority: str | int


class LinkIn(Schema):
    type: str = Field(..., description="blocks, relates, duplicates or clones.")
    ticket: str = Field(..., description="The other ticket's key or id.")
    direction: str = Field(
        "outward",
        pattern="^(outward|inward)$",
        description="inward reads the type from the other side.",
    )


class WatcherIn(Schema):
    user: str | int | None = Field(None, description="Defaults to yourself.")


class HistoryOut(Schema):
    id: int
    field: str
    from_value: str | None
    to_value: str | None
    actor: UserRef | None
    created_at: datetime


class TicketFilters(Schema):
    status: str | None = None
    type: str | None = None
    priority: str | None = None
    assignee: str | None = Field(None, description="User id, username, 'me' or 'unassigned'.")
    reporter: str | None = None
    label: str | None = None
    q: str | None = Field(None, description="Words in the summary.")
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    sort: str = Field(
        "-updated",
        description="key, created, updated, priority, due, status; prefix - for descending.",
    )


class TransitionOut(Schema):
    id: int
    name: str
    to: StatusRef
    fields: list[str] = Field(..., description="Fields (and 'comment') this transition needs.")


class TransitionIn(Schema):
    model_config = ConfigDict(extra="forbid")

    id: int = Field(..., ge=1, le=2**31 - 1)
    fields: dict[str, Any] = Field(
        default_factory=dict, description="Field changes made with the transition."
    )
    comment: str = Field("", max_length=32768)
