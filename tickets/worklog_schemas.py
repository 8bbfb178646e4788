"""Request and response schemas of worklogs."""

from datetime import datetime
from typing import Literal

from ninja import Field, Schema
from pydantic import ConfigDict

from tickets.schemas import UserRef

Duration = int | str
Adjust = Literal["auto", "leave", "new"]


class WorklogIn(Schema):
    """`time_spent` in seconds or as a Jira duration ("1h 30m", "2d": 8h days, 5d
    weeks). `adjust_estimate`: "auto" (default) lowers the remaining estimate by the
    time logged, never below 0; "leave" keeps it; "new" sets it to `new_estimate`."""

    model_config = ConfigDict(extra="forbid")

    time_spent: Duration
    started_at: datetime | None = None
    comment: str = Field("", max_length=100_000)
    adjust_estimate: Adjust = "auto"
    new_estimate: Duration | None = None


class WorklogPatch(Schema):
    model_config = ConfigDict(extra="forbid")

    time_spent: Duration | None = None
    started_at: datetime | None = None
    comment: str | None = Field(None, max_length=100_000)
    adjust_estimate: Adjust = "auto"
    new_estimate: Duration | None = None


class WorklogOut(Schema):
    id: int
    ticket: str
    author: UserRef | None
    time_spent: int
    time_spent_text: str
    started_at: datetime
    comment: str
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_ticket(obj) -> str:
        return obj.ticket.key

    @staticmethod
    def resolve_time_spent_text(obj) -> str:
        from tickets.fields import duration_format

        return duration_format(obj.time_spent) or "0m"
