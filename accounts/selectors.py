"""Reads on the members, groups and invitations of the current tenant.

Access functions (`*_get_for_user`) answer 404 for anything the viewer may not see:
an identity that is not a member of this tenant does not exist here.
"""

from collections.abc import Iterable, Sequence

from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Concat, Lower, Now, NullIf, Trim

from accounts.members.models import Group, Invitation, Membership
from saas.errors import Invalid, NotFound
from saas.refs import db_id_valid, is_digits

GroupRef = int | str


def member_name_key() -> Lower:
    """Sort key mirroring `User.name`: display name, else first + last, else username."""
    full_name = Trim(Concat("user__first_name", Value(" "), "user__last_name"))
    return Lower(
        Coalesce(
            NullIf("user__display_name", Value("")),
            NullIf(full_name, Value("")),
            "user__username",
            output_field=CharField(),
        )
    )


def _groups_by_name() -> QuerySet[Group]:
    return Group.objects.order_by(Lower("name"), "pk")


def _members() -> QuerySet[Membership]:
    return Membership.objects.select_related("user").prefetch_related(
        Prefetch("groups", queryset=_groups_by_name())
    )


def _group_ref_q(ref: GroupRef) -> Q:
    """A group reference is an id (integer) or a name (string, case-insensitive);
    a string of digits may be either."""
    if isinstance(ref, int):
        return Q(pk=ref) if db_id_valid(ref) else Q(pk__in=[])
    name = ref.strip()
    q = Q(name__iexact=name)
    if is_digits(name) and db_id_valid(int(name)):
        q |= Q(pk=int(name))
    return q


# Members -------------------------------------------------------------------------------


def members_list(
    *,
    q: str = "",
    role: str | None = None,
    active: bool | None = None,
    group: str | None = None,
) -> QuerySet[Membership]:
    """The tenant's members with their identities and groups (three queries whatever the
    page size), sorted by display name."""
    members = _members()
    q = q.strip()
    if q:
        members = members.filter(
            Q(user__username__icontains=q)
            | Q(user__email__icontains=q)
            | Q(user__display_name__icontains=q)
        )
    if role:
        members = members.filter(role=role)
    if active is not None:
        members = members.filter(is_active=active)
    if group is not None and group.strip():
        in_group = Group.members.through.objects.filter(
            membership_id=OuterRef("pk"), group__in=Group.objects.filter(_group_ref_q(group))
        )
        members = members.filter(Exists(in_group))
    return members.order_by(member_name_key(), Lower("user__username"), "pk")


def member_get_for_user(*, viewer: Membership, user_id: int) -> Membership:
    """The membership of identity `user_id` in this tenant, or 404.

    Every member may see the directory (READ_USERS is checked by the caller); an identity
    that only belongs to other tenants is answered exactly like one that does not exist.
    """
    if not db_id_valid(user_id):
        raise NotFound("No such user in this workspace.")
    member = _members().filter(user_id=user_id).first()
    if member is None:
        raise NotFound("No such user in this workspace.")
    return member


def member_groups(*, member: Membership) -> QuerySet[Group]:
    return _groups_by_name().filter(members=member)


def members_by_user_ids(*, user_ids: Sequence[int], field: str = "user_ids") -> list[Membership]:
    """Memberships for identity ids, in the given order without repeats; 422 listing every
    id that is not a member of this tenant."""
    wanted = list(dict.fromkeys(user_ids))
    found = {
        m.user_id: m
        for m in Membership.objects.select_related("user").filter(
            user_id__in=[i for i in wanted if db_id_valid(i)]
        )
    }
    missing = [i for i in wanted if i not in found]
    if missing:
        raise Invalid(
            "Some users are not members of this workspace.",
            details=[
                {"field": field, "message": "Not a member of this workspace.", "value": i}
                for i in missing
            ],
        )
    return [found[i] for i in wanted]


# Groups --------------------------------------------------------------------------------


def groups_resolve(*, refs: Iterable[GroupRef]) -> tuple[list[Group], list[GroupRef]]:
    """Groups for references (ids or names) in the given order without repeats, and the
    references that match no group. One query."""
    refs = list(refs)
    if not refs:
        return [], []
    condition = Q(pk__in=[])
    for ref in refs:
        condition |= _group_ref_q(ref)
    candidates = list(Group.objects.filter(condition))
    by_id = {g.pk: g for g in candidates}
    by_name = {g.name.lower(): g for g in candidates}
    groups: dict[int, Group] = {}
    unknown: list[GroupRef] = []
    for ref in refs:
        if isinstance(ref, int):
            match = by_id.get(ref)
        else:
            name = ref.strip()
            match = by_name.get(name.lower())
            if match is None and name.isascii() and name.isdigit():
                match = by_id.get(int(name))
        if match is None:
            unknown.append(ref)
        else:
            groups.setdefault(match.pk, match)
    return list(groups.values()), unknown


def group_ref_problems(unknown: Sequence[GroupRef], *, field: str = "groups") -> list[dict]:
    return [{"field": field, "message": f"Unknown group {ref!r}.", "value": ref} for ref in unknown]


def groups_list(*, q: str = "") -> QuerySet[Group]:
    """Groups with their member counts (two queries whatever the page size), by name."""
    groups = Group.objects.annotate(member_count=Count("members"))
    q = q.strip()
    if q:
        groups = groups.filter(name__icontains=q)
    return groups.order_by(Lower("name"), "pk")


def group_get_for_user(*, viewer: Membership, group_id: int) -> Group:
    """A group of this tenant with its member count and members (by name), or 404."""
    if not db_id_valid(group_id):
        raise NotFound("No such group.")
    members = Membership.objects.select_related("user").order_by(member_name_key(), "pk")
    group = (
        Group.objects.annotate(member_count=Count("members"))
        .prefetch_related(Prefetch("members", queryset=members))
        .filter(pk=group_id)
        .first()
    )
    if group is None:
        raise NotFound("No such group.")
    return group


# Invitations ---------------------------------------------------------------------------


def invitation_status_expr() -> Case:
    """The one definition of an invitation's status, evaluated by the database."""
    return Case(
        When(accepted_at__isnull=False, then=Value("accepted")),
        When(revoked_at__isnull=False, then=Value("revoked")),
        When(expires_at__lte=Now(), then=Value("expired")),
        default=Value("pending"),
        output_field=CharField(),
    )


def _invitations() -> QuerySet[Invitation]:
    return Invitation.objects.select_related("invited_by__user").prefetch_related(
        Prefetch("groups", queryset=_groups_by_name())
    )


def invitations_list(*, status: str | None = None, q: str = "") -> QuerySet[Invitation]:
    """Invitations, newest first, each with its status and groups (three queries)."""
    invitations = _invitations().annotate(status=invitation_status_expr())
    if status:
        invitations = invitations.filter(status=status)
    q = q.strip()
    if q:
        invitations = invitations.filter(email__icontains=q)
    return invitations.order_by(F("created_at").desc(), F("pk").desc())


def invitation_get_for_user(*, viewer: Membership, invitation_id: int) -> Invitation:
    """An invitation of this tenant with its status, or 404 (admins only: the caller
    checks ADMIN_USERS)."""
    if not db_id_valid(invitation_id):
        raise NotFound("No such invitation.")
    invitation = (
        _invitations().annotate(status=invitation_status_expr()).filter(pk=invitation_id).first()
    )
    if invitation is None:
        raise NotFound("No such invitation.")
    return invitation
