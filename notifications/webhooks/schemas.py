"""Request and response shapes of the webhooks API. The signing secret appears only in
the answers of create and rotate-secret."""

from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import ConfigDict, StringConstraints

from search.filter_schemas import FilterJql, _NoNul
from tickets.schemas import UserRef

Url = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), _NoNul
]
Description = Annotated[str, StringConstraints(max_length=255), _NoNul]
EventType = Annotated[str, StringConstraints(min_length=1, max_length=64), _NoNul]
Secret = Annotated[str, StringConstraints(min_length=16, max_length=200), _NoNul]
DeliveryStatus = Literal["pending", "succeeded", "failed", "abandoned"]


class WebhookIn(Schema):
    model_config = ConfigDict(extra="forbid")

    url: Url = Field(..., description="http(s) URL resolving to public addresses only.")
    description: Description = ""
    event_types: list[EventType] = Field(
        default_factory=lambda: ["*"],
        min_length=1,
        max_length=50,
        description='Event kinds (`ticket.created`), prefixes (`ticket.*`) or `"*"`.',
    )
    jql: FilterJql = Field("", description="Only events about tickets matching this query.")
    active: bool = True
    secret: Secret | None = Field(
        None, description="Your own signing secret; one is generated when omitted."
    )


class WebhookUpdateIn(Schema):
    """Omitted fields stay as they are; `active=true` re-enables a disabled webhook."""

    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    description: Description | None = None
    event_types: list[EventType] | None = Field(None, min_length=1, max_length=50)
    jql: FilterJql | None = None
    active: bool | None = None


class WebhookOut(Schema):
    id: int
    url: str
    description: str
    event_types: list[str]
    jql: str
    active: bool
    failing_since: datetime | None
    disabled_at: datetime | None
    disabled_reason: str
    created_by: UserRef | None
    secret_rotated_at: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookWithSecretOut(WebhookOut):
    secret: str = Field(..., description="The signing secret: shown only in this answer.")


class DeliveryFilters(Schema):
    status: DeliveryStatus | None = None
    event_type: EventType | None = None


class DeliveryOut(Schema):
    id: int
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    retry_until: datetime
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_latency_ms: int | None
    last_error: str
    last_response_excerpt: str
    delivered_at: datetime | None
    created_at: datetime

    @staticmethod
    def resolve_event_id(obj: Any) -> str:
        return str(obj.event_id)


class AttemptOut(Schema):
    number: int
    started_at: datetime
    finished_at: datetime | None = Field(..., description="Empty when the attempt was cut off.")
    status_code: int | None
    latency_ms: int | None
    error: str
    response_excerpt: str


class DeliveryDetailOut(DeliveryOut):
    payload: dict[str, Any] = Field(..., description="The JSON body sent.")
    attempt_log: list[AttemptOut]

    @staticmethod
    def resolve_attempt_log(obj: Any) -> list[Any]:
        return list(obj.attempt_log.all())
