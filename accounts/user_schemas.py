"""Explicit request and response shapes of the users, groups and invitations API."""

from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import AfterValidator, StrictInt, StrictStr, StringConstraints

from accounts.members.models import Role
from saas.refs import MAX_DB_ID


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refuse it here rather than fail in the database.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


_NoNul = AfterValidator(_no_nul)

# Stripped strings of bounded length without NUL characters.
SearchText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), _NoNul]
Email = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=254), _NoNul
]
Username = Annotated[str, StringConstraints(strip_whitespace=True, max_length=150), _NoNul]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=255), _NoNul]
DisplayNameRequired = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255), _NoNul
]
GroupName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=150), _NoNul
]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000), _NoNul]

Id = Annotated[StrictInt, Field(ge=1, le=MAX_DB_ID)]
# A group is referred to by id (a JSON number) or by name (a JSON string).
GroupRefIn = (
    Id
    | Annotated[
        StrictStr, StringConstraints(strip_whitespace=True, min_length=1, max_length=150), _NoNul
    ]
)


class ErrorBody(Schema):
    code: str
    message: str
    details: Any = None


class ErrorOut(Schema):
    error: ErrorBody


def errors(*statuses: int) -> dict[int, type[ErrorOut]]:
    """OpenAPI entries for the error answers of an endpoint."""
    return dict.fromkeys(statuses, ErrorOut)


# Members -------------------------------------------------------------------------------


class GroupRefOut(Schema):
    id: int
    name: str


class PersonOut(Schema):
    """An identity, briefly (from a `User`)."""

    id: int
    username: str
    display_name: str

    @staticmethod
    def resolve_display_name(obj: Any) -> str:
        return obj.name


class MemberRefOut(Schema):
    """A member, briefly (from a `Membership`)."""

    id: int = Field(..., description="The person's identity id (the userId of paths).")
    username: str
    display_name: str
    is_active: bool

    @staticmethod
    def resolve_id(obj: Any) -> int:
        return obj.user_id

    @staticmethod
    def resolve_username(obj: Any) -> str:
        return obj.user.username

    @staticmethod
    def resolve_display_name(obj: Any) -> str:
        return obj.user.name


class MemberOut(MemberRefOut):
    email: str
    role: Role
    groups: list[GroupRefOut]

    @staticmethod
    def resolve_email(obj: Any) -> str:
        return obj.user.email

    @staticmethod
    def resolve_groups(obj: Any) -> list:
        return list(obj.groups.all())


class MemberFilters(Schema):
    q: SearchText = Field("", description="Part of a username, email or display name.")
    role: Role | None = None
    active: bool | None = Field(None, description="Only active (true) or deactivated (false).")
    group: SearchText | None = Field(None, description="A group id or name.")


class MemberCreateIn(Schema):
    username: Username = Field("", description="Derived from the email when empty.")
    email: Email
    display_name: DisplayName = ""
    password: str = Field(..., max_length=512)
    role: Role = Role.USER
    groups: list[GroupRefIn] = Field(default_factory=list, max_length=100)


class MemberUpdateIn(Schema):
    display_name: DisplayNameRequired | None = None
    role: Role | None = None
    groups: list[GroupRefIn] | None = Field(None, max_length=100)
    is_active: bool | None = None


# Groups --------------------------------------------------------------------------------


class GroupOut(Schema):
    id: int
    name: str
    description: str
    member_count: int


class GroupDetailOut(GroupOut):
    members: list[MemberRefOut]

    @staticmethod
    def resolve_members(obj: Any) -> list:
        return list(obj.members.all())


class GroupFilters(Schema):
    q: SearchText = Field("", description="Part of a group name.")


class GroupIn(Schema):
    name: GroupName
    description: Description = ""
    members: list[Id] = Field(default_factory=list, max_length=1000)


class GroupUpdateIn(Schema):
    name: GroupName | None = None
    description: Description | None = None


class GroupMembersIn(Schema):
    user_ids: list[Id] = Field(..., max_length=1000)


# Invitations ---------------------------------------------------------------------------

InvitationStatus = Literal["pending", "accepted", "revoked", "expired"]


class InvitationOut(Schema):
    id: int
    email: str
    display_name: str
    role: Role
    groups: list[GroupRefOut]
    status: InvitationStatus
    invited_by: PersonOut | None
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None

    @staticmethod
    def resolve_groups(obj: Any) -> list:
        return list(obj.groups.all())

    @staticmethod
    def resolve_invited_by(obj: Any) -> Any:
        return obj.invited_by.user if obj.invited_by else None


class InvitationFilters(Schema):
    status: InvitationStatus | None = None
    q: SearchText = Field("", description="Part of the invited email address.")


class InvitationIn(Schema):
    email: Email
    role: Role = Role.USER
    display_name: DisplayName = ""
    groups: list[GroupRefIn] = Field(default_factory=list, max_length=100)
