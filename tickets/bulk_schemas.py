"""Request and response shapes of bulk changes, jobs and imports."""

from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import ConfigDict

MAX_BULK_TICKETS = 10_000


class _Op(Schema):
    model_config = ConfigDict(extra="forbid")


class SetFieldOp(_Op):
    type: Literal["set_field"]
    field: str = Field(..., description="Any field a ticket edit accepts, e.g. `priority`.")
    value: Any = Field(None, description="The new value, as a ticket edit takes it.")


class AssignOp(_Op):
    type: Literal["assign"]
    assignee: str | int | None = Field(..., description="User id, username, email or null.")


class TransitionOp(_Op):
    type: Literal["transition"]
    status: str | int = Field(..., description="Status name or id.")


class AddLabelOp(_Op):
    type: Literal["add_label"]
    label: str


class RemoveLabelOp(_Op):
    type: Literal["remove_label"]
    label: str


class DeleteOp(_Op):
    type: Literal["delete"]


BulkOperation = Annotated[
    SetFieldOp | AssignOp | TransitionOp | AddLabelOp | RemoveLabelOp | DeleteOp,
    Field(discriminator="type"),
]


class BulkIn(Schema):
    model_config = ConfigDict(extra="forbid")

    tickets: list[str | int] = Field(
        ...,
        min_length=1,
        max_length=MAX_BULK_TICKETS,
        description="Ticket keys or ids. Up to 100 are changed at once; more run as a job.",
    )
    operation: BulkOperation


class BulkItemError(Schema):
    code: str
    message: str
    details: Any = None


class BulkItemOut(Schema):
    ticket: str
    status: Literal["ok", "not_found", "forbidden", "invalid"]
    error: BulkItemError | None = None


class BulkOut(Schema):
    results: list[BulkItemOut]
    succeeded: int
    failed: int


class JobAcceptedOut(Schema):
    job_id: str
    status_url: str


class JobFailure(Schema):
    item: Any = None
    code: str
    message: str
    details: Any = None


class JobOut(Schema):
    id: str
    kind: str
    status: Literal["queued", "running", "succeeded", "failed", "partial"]
    total: int
    processed: int
    succeeded: int
    failed: int
    failures: list[JobFailure]
    error: str
    result: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ImportOut(Schema):
    status: Literal["succeeded"]
    counts: dict[str, int]


class BulkErrorBody(Schema):
    code: str
    message: str
    details: Any = None


class BulkErrorOut(Schema):
    error: BulkErrorBody


def errors(*statuses: int) -> dict[int, type[BulkErrorOut]]:
    """OpenAPI entries for the error answers of an endpoint."""
    return dict.fromkeys(statuses, BulkErrorOut)
