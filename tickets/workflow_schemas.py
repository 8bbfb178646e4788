"""Request and response shapes of workflows, their versions and the workflow scheme.

The definition schemas bound the shape (types, sizes, no NUL characters) so that any
body reaching `tickets.workflow_definition.definition_compile` can be checked there;
the rules (an initial status, reachability, known fields and condition types) live
in the definition module, which lists every problem at once.
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import ConfigDict, StrictBool, StrictFloat, StrictInt, StrictStr

from saas.refs import MAX_DB_ID
from tickets.project_schemas import Id, Name, ShortText, _bounds, _Plain
from tickets.schemas import UserRef
from tickets.workflow_definition import definition_for_output

TemplateKey = Literal["basic", "software", "bug_tracking"]
# Status names are at most 60 characters (the catalogue's limit); empty names get to
# the definition check, which explains what is missing.
StatusName = Annotated[str, _bounds(0, 60), _Plain]
TransitionName = Annotated[str, _bounds(0, 100), _Plain]
Color = Annotated[str, Field(pattern=r"^#[0-9A-Fa-f]{6}$")]
Scalar = (
    StrictBool | StrictInt | StrictFloat | Annotated[StrictStr, _bounds(0, 1000), _Plain] | None
)
Word = Annotated[str, _bounds(0, 100), _Plain]
TransitionId = Annotated[StrictInt, Field(ge=1, le=2**31 - 1)]
Version = Annotated[StrictInt, Field(ge=1, le=2**31 - 1)]


# Definitions ---------------------------------------------------------------------------


class StatusDefinitionIn(Schema):
    model_config = ConfigDict(extra="forbid")

    id: Annotated[StrictInt, Field(ge=1, le=MAX_DB_ID)] | None = Field(
        None, description="Ignored: statuses are matched by name."
    )
    name: StatusName = Field(..., description="Found in the workspace's statuses, else created.")
    category: Annotated[str, _bounds(0, 32), _Plain] | None = Field(
        None, description="TO_DO, IN_PROGRESS or DONE; optional for existing statuses."
    )
    color: Color | None = None


class RuleIn(Schema):
    """A condition, validator or post-function: `type` and the keys that type takes
    (see the definition format); unknown types are reported by the definition check."""

    model_config = ConfigDict(extra="forbid")

    type: Word
    roles: list[Word] | None = Field(None, max_length=20)
    groups: list[Word] | None = Field(None, max_length=100)
    permission: Word | None = None
    fields: list[Word] | None = Field(None, max_length=100)
    field: Word | None = None
    value: Scalar | Annotated[list[Scalar], Field(max_length=100)] = None
    to: Word | None = None
    body: Annotated[str, _bounds(0, 32_000), _Plain] | None = None


Rules = Annotated[list[RuleIn], Field(max_length=50)]


class TransitionDefinitionIn(Schema):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: TransitionId | None = Field(None, description="Kept when given; else assigned.")
    name: TransitionName
    from_: list[StatusName] | Literal["any", "*"] | None = Field(
        None, alias="from", max_length=100, description="Statuses it leaves; null for any."
    )
    to: StatusName
    conditions: Rules = Field(default_factory=list)
    validators: Rules = Field(default_factory=list)
    post_functions: Rules = Field(default_factory=list)


class WorkflowDefinitionIn(Schema):
    """Statuses by name, the initial status, and transitions between them. The output
    form (`definition` of a workflow) is accepted as input."""

    model_config = ConfigDict(extra="forbid")

    initial: StatusName | None = None
    statuses: list[StatusDefinitionIn] = Field(default_factory=list, max_length=100)
    transitions: list[TransitionDefinitionIn] = Field(default_factory=list, max_length=1000)


class StatusDefinitionOut(Schema):
    id: int | None = Field(..., description="null in a template: not yet in the workspace.")
    name: str
    category: str
    color: str | None


class TransitionDefinitionOut(Schema):
    model_config = ConfigDict(populate_by_name=True)

    id: int
    name: str
    from_: list[str] | None = Field(..., alias="from", description="null: from any status.")
    to: str
    conditions: list[dict[str, Any]]
    validators: list[dict[str, Any]]
    post_functions: list[dict[str, Any]]


class WorkflowDefinitionOut(Schema):
    initial: str
    statuses: list[StatusDefinitionOut]
    transitions: list[TransitionDefinitionOut]


# Workflows -----------------------------------------------------------------------------


class WorkflowTemplateOut(Schema):
    key: TemplateKey
    name: str
    definition: WorkflowDefinitionOut


class WorkflowOut(Schema):
    id: int
    name: str
    description: str
    version: int = Field(..., description="The current version's number (the ETag).")
    definition: WorkflowDefinitionOut
    used_by: list[str] = Field(
        ..., description='Issue types using it through the scheme; "default" for the rest.'
    )
    created_at: datetime
    updated_at: datetime


class WorkflowAcceptedOut(WorkflowOut):
    """Saved; the tickets are moved off removed statuses by a job."""

    job_id: str
    status_url: str


class WorkflowIn(Schema):
    """A new workflow of the project: from a template or from a definition (one of them)."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    description: ShortText = ""
    template: TemplateKey | None = None
    definition: WorkflowDefinitionIn | None = None


class WorkflowUpdateIn(Schema):
    """Only the fields sent change. A new definition is saved as a new version."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: ShortText | None = None
    definition: WorkflowDefinitionIn | None = None
    status_mapping: dict[StatusName, StatusName] | None = Field(
        None,
        max_length=200,
        description="Old status name -> status of the new definition, for every status "
        "that tickets of this workflow hold and the new definition lacks.",
    )
    expected_version: Version | None = Field(
        None, description="The version you edited (or send If-Match); 412 when stale."
    )

    def changes(self) -> dict[str, Any]:
        data = self.model_dump(exclude_unset=True, by_alias=True)
        data.pop("expected_version", None)
        return data


class WorkflowVersionOut(Schema):
    number: int
    created_at: datetime
    created_by: UserRef | None
    definition: WorkflowDefinitionOut

    @staticmethod
    def resolve_definition(obj: Any) -> dict[str, Any]:
        return definition_for_output(obj.definition)


# Scheme --------------------------------------------------------------------------------


class WorkflowRefOut(Schema):
    id: int
    name: str


class WorkflowSchemeOut(Schema):
    default: WorkflowRefOut
    mappings: dict[str, WorkflowRefOut] = Field(
        ..., description="Issue type name -> workflow, for issue types not on the default."
    )


class WorkflowSchemeAcceptedOut(WorkflowSchemeOut):
    """Saved; the tickets are moved to statuses of their new workflows by a job."""

    job_id: str
    status_url: str


class WorkflowSchemeIn(Schema):
    """Keys not sent are left alone; a mapping to null puts the issue type back on the
    default workflow."""

    model_config = ConfigDict(extra="forbid")

    default: Id | None = Field(None, description="Workflow id of the project's default.")
    mappings: dict[Annotated[str, _bounds(1, 60), _Plain], Id | None] | None = Field(
        None, max_length=100, description="Issue type name -> workflow id, or null."
    )
    status_mapping: dict[StatusName, StatusName] | None = Field(
        None,
        max_length=200,
        description="Old status name -> status of the new workflow, for statuses that "
        "tickets changing workflow hold and their new workflow lacks.",
    )

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)
