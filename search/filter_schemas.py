"""Request and response shapes of the saved filters API."""

from datetime import datetime
from typing import Annotated, Any

from ninja import Field, Schema
from pydantic import AfterValidator, StrictInt, StringConstraints

from accounts.user_schemas import GroupRefOut
from saas.refs import MAX_DB_ID
from tickets.schemas import ProjectRef, UserRef


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refuse it here rather than fail in the database.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


_NoNul = AfterValidator(_no_nul)
FilterName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255), _NoNul
]
FilterDescription = Annotated[str, StringConstraints(max_length=4000), _NoNul]
FilterJql = Annotated[str, StringConstraints(max_length=10_000), _NoNul]
Id = Annotated[StrictInt, Field(ge=1, le=MAX_DB_ID)]


class FilterIn(Schema):
    name: FilterName = Field(..., description="Unique among your filters, ignoring case.")
    description: FilterDescription = ""
    jql: FilterJql = Field(..., description="A JQL query; checked as you would run it.")
    shared_with_groups: list[Id] = Field(default_factory=list, max_length=100)
    shared_with_projects: list[Id] = Field(default_factory=list, max_length=100)
    is_public: bool = Field(False, description="Visible to every member of the workspace.")


class FilterUpdateIn(Schema):
    """Omitted fields stay as they are; lists replace the sharing."""

    name: FilterName | None = None
    description: FilterDescription | None = None
    jql: FilterJql | None = None
    shared_with_groups: list[Id] | None = Field(None, max_length=100)
    shared_with_projects: list[Id] | None = Field(None, max_length=100)
    is_public: bool | None = None


class FilterFilters(Schema):
    favourite: bool | None = Field(None, description="Only the filters you starred (or not).")
    q: Annotated[str, StringConstraints(max_length=200), _NoNul] | None = Field(
        None, description="Part of the name."
    )


class FilterOut(Schema):
    id: int
    name: str
    description: str
    jql: str
    owner: UserRef
    is_public: bool
    shared_with_groups: list[GroupRefOut]
    shared_with_projects: list[ProjectRef]
    is_favourite: bool
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_shared_with_groups(obj: Any) -> list[Any]:
        return list(obj.shared_with_groups.all())

    @staticmethod
    def resolve_shared_with_projects(obj: Any) -> list[Any]:
        return list(obj.shared_with_projects.all())
