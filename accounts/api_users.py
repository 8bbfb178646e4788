"""Members, groups and invitations of a workspace: `/users`, `/groups`, `/invitations`.

Thin routers: parse, authorize (accounts.policy), call one service, return a schema.
A `userId` in a path is the person's global identity id; identities that are not
members of this workspace answer 404.
"""

from collections.abc import Callable
from typing import Any

from django.http import HttpResponse
from ninja import Query, Router, Schema, Status
from ninja.pagination import paginate

from accounts.authentication import AuthedRequest
from accounts.members.models import Membership
from accounts.policy import ADMIN_USERS, READ_USERS, member_require
from accounts.selectors import (
    group_get_for_user,
    groups_list,
    invitation_get_for_user,
    invitations_list,
    member_get_for_user,
    member_groups,
    members_list,
)
from accounts.user_schemas import (
    GroupDetailOut,
    GroupFilters,
    GroupIn,
    GroupMembersIn,
    GroupOut,
    GroupRefOut,
    GroupUpdateIn,
    InvitationFilters,
    InvitationIn,
    InvitationOut,
    MemberCreateIn,
    MemberFilters,
    MemberOut,
    MemberUpdateIn,
    errors,
)
from accounts.user_services import (
    group_create,
    group_delete,
    group_members_add,
    group_members_remove,
    group_update,
    invitation_create,
    invitation_resend,
    invitation_revoke,
    member_create,
    member_deactivate,
    member_update,
)
from saas.idempotency import idempotent
from saas.pagination import Page

users_router = Router(tags=["users"])
groups_router = Router(tags=["groups"])
invitations_router = Router(tags=["invitations"])


def _caller(request: AuthedRequest) -> Membership:
    return request.member  # type: ignore[attr-defined]


def _idempotent(
    request: AuthedRequest, status: int, schema: type[Schema], write: Callable[[], Any]
) -> HttpResponse:
    """Run a non-idempotent write once per `Idempotency-Key`; a retry replays the answer."""

    def produce() -> tuple[int, Any, dict[str, str]]:
        return status, schema.from_orm(write()).model_dump(), {}

    return idempotent(request, produce)


# Users ---------------------------------------------------------------------------------


@users_router.get("", response=list[MemberOut])
@paginate(Page)
def users_list(request: AuthedRequest, filters: Query[MemberFilters]):
    """The workspace's members (active and deactivated unless `active` is given), sorted
    by display name. Filter by `q` (username, email or display name, case-insensitive),
    `role`, `active` and `group` (id or name)."""
    member_require(_caller(request), READ_USERS)
    return members_list(q=filters.q, role=filters.role, active=filters.active, group=filters.group)


@users_router.post("", response={201: MemberOut, **errors(403, 409, 422)})
def users_create(request: AuthedRequest, body: MemberCreateIn):
    """Create an account for a new person and make them a member (admins).

    A person who already has an account (in another workspace) answers 409
    `email_taken`: invite them instead. Invalid fields answer 422, each listed.
    Send `Idempotency-Key` to make retries safe."""
    actor = _caller(request)
    member_require(actor, ADMIN_USERS)

    def create() -> Membership:
        member = member_create(
            actor=actor,
            email=body.email,
            password=body.password,
            username=body.username,
            display_name=body.display_name,
            role=body.role,
            groups=body.groups,
        )
        return member_get_for_user(viewer=actor, user_id=member.user_id)

    return _idempotent(request, 201, MemberOut, create)


@users_router.get("/{userId}", response={200: MemberOut, **errors(404)})
def users_get(request: AuthedRequest, userId: int):
    """One member of the workspace, by identity id."""
    actor = _caller(request)
    member_require(actor, READ_USERS)
    return member_get_for_user(viewer=actor, user_id=userId)


@users_router.put("/{userId}", response={200: MemberOut, **errors(403, 404, 409, 422)})
def users_update(request: AuthedRequest, userId: int, body: MemberUpdateIn):
    """Change a member. Admins change `role`, `groups` (ids or names, replacing the set)
    and `is_active` (false deactivates, true reactivates); everyone changes only their
    own `display_name`. Omitted fields stay as they are. A role change signs the member
    out of existing access tokens. The last active admin cannot be demoted or
    deactivated (409 `last_admin`)."""
    actor = _caller(request)
    member_require(actor, READ_USERS)
    member = member_get_for_user(viewer=actor, user_id=userId)
    member_update(
        member=member,
        actor=actor,
        display_name=body.display_name,
        role=body.role,
        groups=body.groups,
        is_active=body.is_active,
    )
    return member_get_for_user(viewer=actor, user_id=userId)


@users_router.delete("/{userId}", response={204: None, **errors(403, 404, 409)})
def users_deactivate(request: AuthedRequest, userId: int):
    """Deactivate a member (admins). Nothing is deleted; their sessions and tokens stop
    working at once, and they can be reactivated with `PUT {"is_active": true}`."""
    actor = _caller(request)
    member_require(actor, ADMIN_USERS)
    member = member_get_for_user(viewer=actor, user_id=userId)
    member_deactivate(member=member, actor=actor)
    return Status(204, None)


@users_router.get("/{userId}/groups", response=list[GroupRefOut])
@paginate(Page)
def users_groups(request: AuthedRequest, userId: int):
    """The groups a member belongs to, by name."""
    actor = _caller(request)
    member_require(actor, READ_USERS)
    return member_groups(member=member_get_for_user(viewer=actor, user_id=userId))


# Groups --------------------------------------------------------------------------------


@groups_router.get("", response=list[GroupOut])
@paginate(Page)
def groups_index(request: AuthedRequest, filters: Query[GroupFilters]):
    """The workspace's groups with their member counts, by name; `q` filters by name."""
    member_require(_caller(request), READ_USERS)
    return groups_list(q=filters.q)


@groups_router.post("", response={201: GroupDetailOut, **errors(403, 409, 422)})
def groups_create(request: AuthedRequest, body: GroupIn):
    """Create a group (admins). Names are unique regardless of case (409
    `group_name_taken`); `members` are identity ids of members of this workspace.
    Send `Idempotency-Key` to make retries safe."""
    actor = _caller(request)
    member_require(actor, ADMIN_USERS)

    def create() -> Any:
        group = group_create(
            actor=actor, name=body.name, description=body.description, member_ids=body.members
        )
        return group_get_for_user(viewer=actor, group_id=group.pk)

    return _idempotent(request, 201, GroupDetailOut, create)


@groups_router.get("/{groupId}", response={200: GroupDetailOut, **errors(404)})
def groups_get(request: AuthedRequest, groupId: int):
    """One group with its members."""
    actor = _caller(request)
    member_require(actor, READ_USERS)
    return group_get_for_user(viewer=actor, group_id=groupId)


@groups_router.put("/{groupId}", response={200: GroupDetailOut, **errors(403, 404, 409, 422)})
def groups_update(request: AuthedRequest, groupId: int, body: GroupUpdateIn):
    """Rename a group or change its description (admins); omitted fields stay."""
    actor = _caller(request)
    member_require(actor, ADMIN_USERS)
    group = group_get_for_user(viewer=actor, group_id=groupId)
    group_update(group=group, actor=actor, name=body.name, description=body.description)
    return group_get_for_user(viewer=actor, group_id=groupId)


@groups_router.delete("/{groupId}", response={204: None, **errors(403, 404)})
def groups_delete(request: AuthedRequest, groupId: int):
    """Delete a group (admins); its members stay in the workspace."""
    actor = _caller(request)
    member_require(actor, ADMIN_USERS)
    group_delete(group=group_get_for_user(viewer=actor, group_id=groupId), actor=actor)
    return Status(204, None)


@groups_router.post("/{groupId}/members", response={200: GroupDetailOut, **errors(403, 404, 422)})
def groups_members_add(request: AuthedRequest, groupId: int, body: GroupMembersIn):
    """Add members to a group (admins). If any id is not a member of this workspace the
    answer is 422 listing them, and nobody is added."""
    actor = _caller(request)
    member_require(actor, ADMIN_USERS)
    group = group_get_for_user(viewer=actor, group_id=groupId)
    group_members_add(group=group, actor=actor, user_ids=body.user_ids)
    return group_get_for_user(viewer=actor, group_id=groupId)


@groups_router.delete("/{groupId}/members/{userId}", response={204: None, **errors(403, 404)})
def groups_members_remove(request: AuthedRequest, groupId: int, userId: int):
    """Take a member out of a group (admins); 204 also if they were not in it."""
    actor = _caller(request)
    member_require(actor, ADMIN_USERS)
    group = group_get_for_user(viewer=actor, group_id=groupId)
    member = member_get_for_user(viewer=actor, user_id=userId)
    group_members_remove(group=group, actor=actor, member=member)
    return Status(204, None)


# Invitations ---------------------------------------------------------------------------


@invitations_router.get("", response=list[InvitationOut])
@paginate(Page)
def invitations_index(request: AuthedRequest, filters: Query[InvitationFilters]):
    """Invitations, newest first (admins); filter by `status` (pending, accepted,
    revoked, expired) or part of the email (`q`)."""
    member_require(_caller(request), ADMIN_USERS)
    return invitations_list(status=filters.status, q=filters.q)


@invitations_router.post("", response={201: InvitationOut, **errors(403, 409, 422)})
def invitations_create(request: AuthedRequest, body: InvitationIn):
    """Invite a person by email (admins). They receive a link to
    `<workspace>/accept-invite?token=...`, valid for INVITATION_TTL. 409 if they are
    already a member or an invitation for the email is open (`invitation_open`:
    resend that one). Send `Idempotency-Key` to make retries safe."""
    actor = _caller(request)
    member_require(actor, ADMIN_USERS)

    def create() -> Any:
        invitation = invitation_create(
            actor=actor,
            email=body.email,
            role=body.role,
            display_name=body.display_name,
            groups=body.groups,
        )
        return invitation_get_for_user(viewer=actor, invitation_id=invitation.pk)

    return _idempotent(request, 201, InvitationOut, create)


@invitations_router.get("/{invitationId}", response={200: InvitationOut, **errors(403, 404)})
def invitations_get(request: AuthedRequest, invitationId: int):
    """One invitation with its status (admins)."""
    actor = _caller(request)
    member_require(actor, ADMIN_USERS)
    return invitation_get_for_user(viewer=actor, invitation_id=invitationId)


@invitations_router.post(
    "/{invitationId}/resend", response={200: InvitationOut, **errors(403, 404, 409)}
)
def invitations_resend(request: AuthedRequest, invitationId: int):
    """Email a pending or expired invitation again (admins): a new link replaces the old
    one and the expiry starts over. 409 if it was accepted or revoked. Send
    `Idempotency-Key` so that a retry does not send a second email."""
    actor = _caller(request)
    member_require(actor, ADMIN_USERS)
    invitation = invitation_get_for_user(viewer=actor, invitation_id=invitationId)

    def resend() -> Any:
        invitation_resend(invitation=invitation, actor=actor)
        return invitation_get_for_user(viewer=actor, invitation_id=invitationId)

    return _idempotent(request, 200, InvitationOut, resend)


@invitations_router.delete("/{invitationId}", response={204: None, **errors(403, 404, 409)})
def invitations_revoke(request: AuthedRequest, invitationId: int):
    """Revoke an invitation (admins): its link stops working. 409 if already accepted."""
    actor = _caller(request)
    member_require(actor, ADMIN_USERS)
    invitation = invitation_get_for_user(viewer=actor, invitation_id=invitationId)
    invitation_revoke(invitation=invitation, actor=actor)
    return Status(204, None)
