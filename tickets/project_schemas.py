"""Explicit request and response shapes of projects, their members and settings,
custom fields and the tenant catalogues.

Schemas bound shapes (types, lengths, no NUL characters, which PostgreSQL text and
jsonb refuse); the domain rules (key format, membership, uniqueness) live in
`tickets.project_services` so every caller gets them.
"""

from datetime import date, datetime
from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import AfterValidator, ConfigDict, StrictInt, StringConstraints

from saas.refs import MAX_DB_ID
from tickets.schemas import UserRef


def _plain(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    # "²".isdigit() is True but int("²") fails: refuse digit look-alikes early.
    if value.isdigit() and not value.isascii():
        raise ValueError("digits must be ASCII")
    return value


_Plain = AfterValidator(_plain)


def _bounds(min_length: int, max_length: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length)


# Stripped strings of bounded length without NUL characters.
KeyText = Annotated[str, _bounds(0, 50), _Plain]
Name = Annotated[str, _bounds(1, 100), _Plain]
ProjectName = Annotated[str, _bounds(1, 200), _Plain]
ShortText = Annotated[str, _bounds(0, 255), _Plain]
LongText = Annotated[str, _bounds(0, 32_000), _Plain]
SearchText = Annotated[str, _bounds(0, 200), _Plain]
Option = Annotated[str, _bounds(1, 100), _Plain]

Id = Annotated[StrictInt, Field(ge=1, le=MAX_DB_ID)]
# A user by id (a JSON number), or by username or email (a JSON string).
UserRefIn = Id | Annotated[str, _bounds(1, 254), _Plain]
# A catalogue entry (issue type, custom field) by id or by name.
CatalogRefIn = Id | Name
ProjectType = Literal["software", "business"]
ProjectRole = Literal["ADMIN", "DEVELOPER", "VIEWER"]
FieldType = Literal["text", "number", "date", "select", "multiselect", "user"]


class ErrorBody(Schema):
    code: str
    message: str
    details: Any = None


class ProjectErrorOut(Schema):
    error: ErrorBody


def errors(*statuses: int) -> dict[int, type[ProjectErrorOut]]:
    """OpenAPI entries for the error answers of an endpoint."""
    return dict.fromkeys(statuses, ProjectErrorOut)


# Projects ------------------------------------------------------------------------------


class ProjectOut(Schema):
    id: int
    key: str
    name: str
    description: str
    type: str
    lead: UserRef | None
    owner: UserRef | None
    is_private: bool
    is_archived: bool
    ticket_count: int
    created_at: datetime
    updated_at: datetime


class ProjectIn(Schema):
    """A new project. The key is uppercased; the lead defaults to you."""

    model_config = ConfigDict(extra="forbid")

    key: KeyText = Field(
        ..., description="2-10 letters A-Z and digits, starting with a letter (e.g. CORE)."
    )
    name: ProjectName
    description: LongText = ""
    type: ProjectType = "software"
    lead: UserRefIn | None = Field(None, description="User id, username or email.")
    is_private: bool = False
    workflow_template: Literal["basic", "software", "bug_tracking"] = Field(
        "software", description="The template of the project's default workflow."
    )


class ProjectUpdateIn(Schema):
    """Only the fields sent change. The key cannot change: sending another one is refused."""

    model_config = ConfigDict(extra="forbid")

    key: KeyText | None = None
    name: ProjectName | None = None
    description: LongText | None = None
    type: ProjectType | None = None
    lead: UserRefIn | None = Field(None, description="User id, username or email.")
    is_private: bool | None = None
    is_archived: bool | None = None

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class ProjectFilters(Schema):
    q: SearchText | None = Field(None, description="Words in the key or name.")
    archived: bool | None = Field(None, description="Only archived (true) or active (false).")
    type: ProjectType | None = None


# Members -------------------------------------------------------------------------------


class ProjectMemberOut(Schema):
    user: UserRef
    role: str
    added_at: datetime


class ProjectMemberIn(Schema):
    model_config = ConfigDict(extra="forbid")

    user: UserRefIn = Field(..., description="User id, username or email.")
    role: ProjectRole = "DEVELOPER"


class ProjectMemberRoleIn(Schema):
    model_config = ConfigDict(extra="forbid")

    role: ProjectRole


# Settings ------------------------------------------------------------------------------


class SettingsUserOut(Schema):
    """A person named in the settings (read from plain data, hence not `UserRef`)."""

    id: int
    username: str
    display_name: str


class ComponentOut(Schema):
    id: int
    name: str
    description: str
    lead: SettingsUserOut | None


class VersionOut(Schema):
    id: int
    name: str
    description: str
    release_date: date | None
    is_released: bool
    is_archived: bool


class ProjectSettingsOut(Schema):
    default_assignee: SettingsUserOut | None
    issue_types: list[str]
    components: list[ComponentOut]
    versions: list[VersionOut]
    custom_fields: list[str]


class ComponentIn(Schema):
    """Matched to an existing component by id, else by name; otherwise created."""

    model_config = ConfigDict(extra="forbid")

    id: Id | None = None
    name: Name
    description: ShortText = ""
    lead: UserRefIn | None = None


class VersionIn(Schema):
    """Matched to an existing version by id, else by name; otherwise created."""

    model_config = ConfigDict(extra="forbid")

    id: Id | None = None
    name: Name
    description: ShortText = ""
    release_date: date | None = None
    is_released: bool = False
    is_archived: bool = False


class ProjectSettingsIn(Schema):
    """Every key sent replaces that setting; keys not sent are left alone."""

    model_config = ConfigDict(extra="forbid")

    default_assignee: UserRefIn | None = Field(None, description="null clears it.")
    issue_types: list[CatalogRefIn] | None = Field(
        None, max_length=100, description="Issue types enabled, by name or id."
    )
    components: list[ComponentIn] | None = Field(None, max_length=500)
    versions: list[VersionIn] | None = Field(None, max_length=500)
    custom_fields: list[CatalogRefIn] | None = Field(
        None, max_length=500, description="Custom fields enabled, by name or id."
    )

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


# Custom fields -------------------------------------------------------------------------


class CustomFieldOut(Schema):
    id: int
    name: str
    type: str
    description: str
    options: list[str]
    created_at: datetime


class CustomFieldIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: Name
    type: FieldType
    description: ShortText = ""
    options: list[Option] = Field(
        default_factory=list, max_length=500, description="Select types only."
    )


class CustomFieldUpdateIn(Schema):
    """Rename, describe, or change the options (an option in use cannot be removed)."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    type: FieldType | None = Field(None, description="Cannot change; accepted if unchanged.")
    description: ShortText | None = None
    options: list[Option] | None = Field(None, max_length=500)

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


# Catalogues ----------------------------------------------------------------------------


class IssueTypeOut(Schema):
    id: int
    name: str
    description: str
    is_subtask: bool
    is_epic: bool


class PriorityOut(Schema):
    id: int
    name: str
    rank: int
    color: str
    is_default: bool


class StatusOut(Schema):
    id: int
    name: str
    category: str
    color: str


class ResolutionOut(Schema):
    id: int
    name: str
    description: str
