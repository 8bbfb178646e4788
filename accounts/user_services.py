"""Writes of tenant admins on members, groups and invitations.

Each function is one transaction that validates, changes, and records an audit entry
and an outbox event; emails leave only after commit.
"""

import re
from collections.abc import Sequence
from datetime import UTC
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.emails import email_send_after_commit
from accounts.members.models import Group, Invitation, Membership, Role
from accounts.models import User
from accounts.policy import ADMIN_USERS, member_can
from accounts.selectors import (
    GroupRef,
    group_ref_problems,
    groups_resolve,
    invitation_status_expr,
    members_by_user_ids,
)
from accounts.services import (
    identity_create,
    identity_validate,
    member_admins_lock,
    member_guard_last_admin,
    membership_create,
    membership_deactivate,
)
from accounts.tokens import secret_hash, secret_new
from eventlog.audit import field_changes
from eventlog.record import change_record
from saas.errors import Conflict, Forbidden, Invalid
from saas.tenancy import current_schema
from tenants.models import Tenant

USERNAME_RE = re.compile(r"^[\w.@+-]+\Z")


def _group_names(groups: Sequence[Group]) -> list[str]:
    return sorted((g.name for g in groups), key=str.lower)


# Members -------------------------------------------------------------------------------


@transaction.atomic
def member_create(
    *,
    actor: Membership,
    email: str,
    password: str,
    username: str = "",
    display_name: str = "",
    role: str = Role.USER,
    groups: Sequence[GroupRef] = (),
) -> Membership:
    """Create a new identity with a password and make it a member of this tenant.

    A person who already has an identity (in another tenant) is never given a password
    here: 409 `email_taken`, invite them instead. 422 lists every invalid field.
    """
    email = email.strip().lower()
    existing = User.objects.filter(email__iexact=email).first()
    if existing is not None:
        if Membership.objects.filter(user=existing).exists():
            raise Conflict(
                "This person is already a member of this workspace.",
                code="already_member",
                details={"user_id": existing.pk},
            )
        raise Conflict(
            "An account with this email already exists; invite this person instead.",
            code="email_taken",
            details={"email": email},
        )
    problems: list[dict] = []
    if username and not USERNAME_RE.match(username):
        problems.append(
            {
                "field": "username",
                "message": "Use letters, digits and the characters . @ + - _ only.",
            }
        )
    try:
        identity_validate(
            email=email, password=password, username=username, display_name=display_name
        )
    except Invalid as exc:
        problems.extend(exc.details or [])
    group_list, unknown = groups_resolve(refs=groups)
    problems.extend(group_ref_problems(unknown))
    if role not in Role.values:
        problems.append({"field": "role", "message": f"Unknown role {role!r}."})
    if problems:
        raise Invalid("Invalid account details.", details=problems)
    user = identity_create(
        email=email, password=password, username=username, display_name=display_name
    )
    return membership_create(user=user, role=role, actor=actor, groups=group_list)


def member_update_check_allowed(*, actor: Membership, member: Membership, fields: set[str]) -> None:
    """403 unless `actor` may change these fields of `member`.

    Role, groups and activation are for admins. The display name belongs to the global
    identity, shared by every workspace the person is in, so only its owner changes it.
    """
    is_self = actor.pk == member.pk
    is_admin = member_can(actor, ADMIN_USERS)
    if "display_name" in fields and not is_self:
        raise Forbidden(
            "Only the person themselves may change their display name.",
            details={"fields": ["display_name"]},
        )
    admin_fields = sorted(fields - {"display_name"})
    if admin_fields and not is_admin:
        raise Forbidden(
            f"You need the '{ADMIN_USERS}' permission to change {', '.join(admin_fields)}.",
            details={"permission": ADMIN_USERS, "fields": admin_fields},
        )


@transaction.atomic
def member_update(
    *,
    member: Membership,
    actor: Membership,
    display_name: str | None = None,
    role: str | None = None,
    groups: Sequence[GroupRef] | None = None,
    is_active: bool | None = None,
) -> Membership:
    """Change a member's display name (their own only), role, groups or activation.

    A role change revokes the member's access tokens (they carry the role). Demoting or
    deactivating the last active admin is refused (409). Activation changes are recorded
    as `member.deactivated` / `member.reactivated`, the rest as `member.updated`.
    """
    requested = {
        name
        for name, value in (
            ("display_name", display_name),
            ("role", role),
            ("groups", groups),
            ("is_active", is_active),
        )
        if value is not None
    }
    member_update_check_allowed(actor=actor, member=member, fields=requested)
    problems: list[dict] = []
    if display_name is not None:
        display_name = display_name.strip()
        if not display_name:
            problems.append({"field": "display_name", "message": "Enter a display name."})
    if role is not None and role not in Role.values:
        problems.append({"field": "role", "message": f"Unknown role {role!r}."})
    new_groups: list[Group] | None = None
    if groups is not None:
        new_groups, unknown = groups_resolve(refs=groups)
        problems.extend(group_ref_problems(unknown))
    if problems:
        raise Invalid("Invalid member details.", details=problems)
    if role is not None or is_active is False:
        member_admins_lock()  # before any row lock, see member_admins_lock
    member = Membership.objects.select_for_update().select_related("user").get(pk=member.pk)
    user = member.user

    changes: dict[str, list] = {}
    if display_name is not None:
        changes |= field_changes(
            {"display_name": user.display_name}, {"display_name": display_name}
        )
    if role is not None and role != member.role:
        member_guard_last_admin(member=member, new_role=role)
        changes["role"] = [member.role, role]
    if new_groups is not None:
        current = list(member.groups.all())
        if {g.pk for g in current} != {g.pk for g in new_groups}:
            changes["groups"] = [_group_names(current), _group_names(new_groups)]

    if "display_name" in changes:
        user.display_name = display_name or ""
        user.save(update_fields=["display_name"])
    if "role" in changes:
        Membership.objects.filter(pk=member.pk).update(
            role=role, token_generation=F("token_generation") + 1
        )
        member.role = role  # type: ignore[assignment]
    if "groups" in changes and new_groups is not None:
        member.groups.set(new_groups)
    if changes:
        change_record(
            "member.updated",
            actor=actor,
            target_type="member",
            target_id=member.user_id,
            changes=changes,
            payload={"user_id": member.user_id, "fields": sorted(changes)},
        )
    if is_active is False:
        membership_deactivate(member=member, actor=actor)
    elif is_active is True:
        member_reactivate(member=member, actor=actor)
    member.refresh_from_db()
    return member


@transaction.atomic
def member_deactivate(*, member: Membership, actor: Membership) -> Membership:
    """Deactivate (soft-delete) a member: every session, refresh and API token stops
    working at once. Refused (409) for the last active admin; a no-op if inactive."""
    member_admins_lock()
    member = Membership.objects.select_for_update().select_related("user").get(pk=member.pk)
    return membership_deactivate(member=member, actor=actor)


@transaction.atomic
def member_reactivate(*, member: Membership, actor: Membership) -> Membership:
    """Let a deactivated member back in (with the role they had); a no-op if active.

    Their old tokens stay revoked: deactivation moved their token generation on.
    """
    reactivated = Membership.objects.filter(pk=member.pk, is_active=False).update(
        is_active=True, deactivated_at=None
    )
    member.refresh_from_db()
    if not reactivated:
        return member
    Tenant.objects.filter(schema_name=current_schema()).update(member_count=F("member_count") + 1)
    change_record(
        "member.reactivated",
        actor=actor,
        target_type="member",
        target_id=member.user_id,
        changes={"is_active": [False, True]},
        payload={"user_id": member.user_id},
    )
    return member


# Groups --------------------------------------------------------------------------------


def _group_name_taken(name: str) -> Conflict:
    return Conflict(
        f"A group named {name!r} already exists.",
        code="group_name_taken",
        details={"name": name},
    )


def _group_name_check_free(name: str, *, exclude_pk: int | None = None) -> None:
    others = Group.objects.filter(name__iexact=name)
    if exclude_pk is not None:
        others = others.exclude(pk=exclude_pk)
    if others.exists():
        raise _group_name_taken(name)


@transaction.atomic
def group_create(
    *,
    actor: Membership,
    name: str,
    description: str = "",
    member_ids: Sequence[int] = (),
) -> Group:
    """Create a group (names are unique case-insensitively: 409) with initial members
    (identity ids; 422 listing any that are not members of this tenant)."""
    name = name.strip()
    if not name:
        raise Invalid("Invalid group.", details=[{"field": "name", "message": "Enter a name."}])
    members = members_by_user_ids(user_ids=member_ids, field="members")
    _group_name_check_free(name)
    try:
        with transaction.atomic():
            group = Group.objects.create(name=name, description=description)
    except IntegrityError as exc:  # lost a race on the case-insensitive constraint
        raise _group_name_taken(name) from exc
    if members:
        group.members.add(*members)
    member_ids_sorted = sorted(m.user_id for m in members)
    change_record(
        "group.created",
        actor=actor,
        target_type="group",
        target_id=group.pk,
        changes={
            "name": [None, name],
            "description": [None, description],
            "members": [None, member_ids_sorted],
        },
        payload={"group_id": group.pk, "name": name, "member_ids": member_ids_sorted},
    )
    return group


@transaction.atomic
def group_update(
    *,
    group: Group,
    actor: Membership,
    name: str | None = None,
    description: str | None = None,
) -> Group:
    """Rename a group or change its description; 409 if the new name is taken."""
    group = Group.objects.select_for_update().get(pk=group.pk)
    after: dict[str, str] = {}
    if name is not None:
        name = name.strip()
        if not name:
            raise Invalid("Invalid group.", details=[{"field": "name", "message": "Enter a name."}])
        after["name"] = name
    if description is not None:
        after["description"] = description
    changes = field_changes({"name": group.name, "description": group.description}, after)
    if not changes:
        return group
    if "name" in changes:
        _group_name_check_free(after["name"], exclude_pk=group.pk)
    for field, (_, new) in changes.items():
        setattr(group, field, new)
    try:
        with transaction.atomic():
            group.save(update_fields=list(changes))
    except IntegrityError as exc:
        raise _group_name_taken(after["name"]) from exc
    change_record(
        "group.updated",
        actor=actor,
        target_type="group",
        target_id=group.pk,
        changes=changes,
        payload={"group_id": group.pk, "fields": sorted(changes)},
    )
    return group


@transaction.atomic
def group_delete(*, group: Group, actor: Membership) -> None:
    """Delete a group; its members stay members of the tenant."""
    group = Group.objects.select_for_update().get(pk=group.pk)
    group_id, name = group.pk, group.name
    member_ids = sorted(group.members.values_list("user_id", flat=True))
    group.delete()
    change_record(
        "group.deleted",
        actor=actor,
        target_type="group",
        target_id=group_id,
        changes={"name": [name, None], "members": [member_ids, None]},
        payload={"group_id": group_id, "name": name},
    )


@transaction.atomic
def group_members_add(*, group: Group, actor: Membership, user_ids: Sequence[int]) -> Group:
    """Add members (identity ids) to a group. 422 listing every id that is not a member of
    this tenant, and then nobody is added; ids already in the group are skipped."""
    members = members_by_user_ids(user_ids=user_ids)
    group = Group.objects.select_for_update().get(pk=group.pk)  # serializes concurrent adds
    present = set(group.members.values_list("pk", flat=True))
    new = [m for m in members if m.pk not in present]
    if not new:
        return group
    group.members.add(*new)
    added = sorted(m.user_id for m in new)
    change_record(
        "group.members_added",
        actor=actor,
        target_type="group",
        target_id=group.pk,
        changes={"members_added": [None, added]},
        payload={"group_id": group.pk, "user_ids": added},
    )
    return group


@transaction.atomic
def group_members_remove(*, group: Group, actor: Membership, member: Membership) -> Group:
    """Take a member out of a group; a no-op if they are not in it."""
    group = Group.objects.select_for_update().get(pk=group.pk)
    through = Group.members.through.objects.filter(group=group, membership=member)
    deleted, _ = through.delete()
    if not deleted:
        return group
    change_record(
        "group.members_removed",
        actor=actor,
        target_type="group",
        target_id=group.pk,
        changes={"members_removed": [[member.user_id], None]},
        payload={"group_id": group.pk, "user_ids": [member.user_id]},
    )
    return group


# Invitations ---------------------------------------------------------------------------


def invitation_email_send(*, invitation: Invitation, raw_token: str, inviter: Membership) -> None:
    """Queue the invitation email (after commit) with the accept link carrying the token."""
    tenant = Tenant.objects.get(schema_name=current_schema())
    link = f"{tenant.url}/accept-invite?{urlencode({'token': raw_token})}"
    inviter_name = inviter.user.name
    greeting = f"Hello {invitation.display_name}," if invitation.display_name else "Hello,"
    expires = invitation.expires_at.astimezone(UTC)
    body = (
        f"{greeting}\n\n"
        f"{inviter_name} invited you to join {tenant.name}.\n\n"
        f"Accept the invitation: {link}\n\n"
        f"The link works once and expires on {expires:%Y-%m-%d %H:%M} UTC. "
        "If you were not expecting this invitation, ignore this email.\n"
    )
    # Names are free text: keep them from breaking the Subject header.
    subject = " ".join(f"{inviter_name} invited you to {tenant.name}".split())
    email_send_after_commit(to=invitation.email, subject=subject, body=body)


@transaction.atomic
def invitation_create(
    *,
    actor: Membership,
    email: str,
    role: str = Role.USER,
    display_name: str = "",
    groups: Sequence[GroupRef] = (),
) -> Invitation:
    """Invite a person by email: store only the hash of a random token and email them the
    accept link. 409 if they are already a member, or if an invitation for the email is
    still open (resend that one instead); 422 lists every invalid field."""
    email = email.strip().lower()
    problems: list[dict] = []
    try:
        validate_email(email)
    except ValidationError:
        problems.append({"field": "email", "message": "Enter a valid email address."})
    if role not in Role.values:
        problems.append({"field": "role", "message": f"Unknown role {role!r}."})
    group_list, unknown = groups_resolve(refs=groups)
    problems.extend(group_ref_problems(unknown))
    if problems:
        raise Invalid("Invalid invitation.", details=problems)
    member = Membership.objects.filter(user__email__iexact=email).first()
    if member is not None:
        if member.is_active:
            raise Conflict(
                "This person is already a member of this workspace.",
                code="already_member",
                details={"user_id": member.user_id},
            )
        raise Conflict(
            "This person is a deactivated member of this workspace; reactivate them instead.",
            code="member_deactivated",
            details={"user_id": member.user_id},
        )
    _invitation_check_none_open(email)
    raw = secret_new()
    try:
        with transaction.atomic():
            invitation = Invitation.objects.create(
                email=email,
                display_name=display_name,
                role=role,
                token_hash=secret_hash(raw),
                invited_by=actor,
                expires_at=timezone.now() + settings.INVITATION_TTL,
            )
    except IntegrityError:  # a concurrent invitation for the same email won
        _invitation_check_none_open(email)
        raise
    if group_list:
        invitation.groups.set(group_list)
    change_record(
        "invitation.created",
        actor=actor,
        target_type="invitation",
        target_id=invitation.pk,
        changes={
            "email": [None, email],
            "role": [None, role],
            "groups": [None, _group_names(group_list)],
        },
        payload={"invitation_id": invitation.pk, "email": email, "role": role},
    )
    invitation_email_send(invitation=invitation, raw_token=raw, inviter=actor)
    return invitation


def _invitation_check_none_open(email: str) -> None:
    open_one = (
        Invitation.objects.filter(
            email__iexact=email, accepted_at__isnull=True, revoked_at__isnull=True
        )
        .annotate(status=invitation_status_expr())
        .values("pk", "status")
        .first()
    )
    if open_one is not None:
        raise Conflict(
            "An invitation for this email is already open; resend it instead.",
            code="invitation_open",
            details={"invitation_id": open_one["pk"], "status": open_one["status"]},
        )


def _invitation_locked(invitation: Invitation) -> Invitation:
    return (
        Invitation.objects.select_for_update()
        .annotate(status=invitation_status_expr())
        .get(pk=invitation.pk)
    )


@transaction.atomic
def invitation_resend(*, invitation: Invitation, actor: Membership) -> Invitation:
    """Email a pending or expired invitation again with a new token (the old link stops
    working) and a fresh expiry; 409 if it was accepted or revoked."""
    invitation = _invitation_locked(invitation)
    status = invitation.status  # type: ignore[attr-defined]
    if status in ("accepted", "revoked"):
        raise Conflict(
            f"This invitation was {status}; it cannot be resent.",
            code="invitation_closed",
            details={"status": status},
        )
    raw = secret_new()
    invitation.token_hash = secret_hash(raw)
    invitation.expires_at = timezone.now() + settings.INVITATION_TTL
    invitation.save(update_fields=["token_hash", "expires_at"])
    change_record(
        "invitation.resent",
        actor=actor,
        target_type="invitation",
        target_id=invitation.pk,
        changes={"status": [status, "pending"]},
        payload={"invitation_id": invitation.pk, "email": invitation.email},
    )
    invitation_email_send(invitation=invitation, raw_token=raw, inviter=actor)
    return invitation


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor: Membership) -> Invitation:
    """Revoke an invitation so its link stops working; 409 if it was already accepted,
    a no-op if already revoked."""
    invitation = _invitation_locked(invitation)
    status = invitation.status  # type: ignore[attr-defined]
    if status == "accepted":
        raise Conflict(
            "This invitation was accepted; deactivate the member instead.",
            code="invitation_closed",
            details={"status": status},
        )
    if status == "revoked":
        return invitation
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    change_record(
        "invitation.revoked",
        actor=actor,
        target_type="invitation",
        target_id=invitation.pk,
        changes={"status": [status, "revoked"]},
        payload={"invitation_id": invitation.pk, "email": invitation.email},
    )
    return invitation
