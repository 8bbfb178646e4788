"""Search API schemas."""

from datetime import date

from ninja import Field, Schema

from saas.pagination import MAX_LIMIT
from tickets.schemas import TicketOut


class SearchPage(Schema):
    total: int = Field(
        description="Matches, exact up to 1,000 or to the end of the page (see `total_exact`;"
        " `GET /search/count` counts further)."
    )
    total_exact: bool = Field(
        True, description="False when the result is larger than `total`: counting stopped there."
    )
    offset: int
    limit: int
    items: list[TicketOut]


class SearchCount(Schema):
    total: int = Field(description="Matches, exact up to 100,000 (see `total_exact`).")
    total_exact: bool = Field(
        description="False when the result is larger than `total`: counting stopped there."
    )


class CountIn(Schema):
    jql: str = Field("", max_length=10_000, description="A JQL query; empty counts everything.")


class AdvancedSearchIn(Schema):
    jql: str = Field("", max_length=10_000, description="A JQL query; empty finds everything.")
    offset: int = Field(0, ge=0, le=1_000_000_000, description="Items to skip.")
    limit: int = Field(50, ge=1, le=MAX_LIMIT, description=f"Page size, at most {MAX_LIMIT}.")


class SimpleSearchIn(Schema):
    q: str | None = Field(
        None,
        max_length=1000,
        description="Words in summary, description or comments (stemmed; `word*` for a prefix).",
    )
    project: str | None = Field(None, max_length=200, description="Project key, name or id.")
    status: str | None = Field(None, max_length=500, description="Status names, comma-separated.")
    assignee: str | None = Field(
        None, max_length=500, description="Username, email or id; `me` or `unassigned`."
    )
    priority: str | None = Field(None, max_length=500, description="Priorities, comma-separated.")
    created_after: date | None = Field(None, description="Created on or after this day.")
    created_before: date | None = Field(None, description="Created before this day.")
    offset: int = Field(0, ge=0, le=1_000_000_000)
    limit: int = Field(50, ge=1, le=MAX_LIMIT)
