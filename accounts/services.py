"""Writes on identities and memberships. One transaction each; audit and outbox inside."""

from collections.abc import Iterable

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from accounts.members.models import Group, Membership, Role
from accounts.models import User
from eventlog.record import change_record
from saas.errors import Conflict, Invalid
from saas.tenancy import current_schema
from tenants.models import Tenant


def username_from_email(email: str) -> str:
    """A free username derived from the local part of an email address."""
    base = "".join(ch for ch in email.split("@", 1)[0].lower() if ch.isalnum() or ch in "._-")
    base = base or "user"
    candidate, n = base, 1
    while User.objects.filter(username__iexact=candidate).exists():
        n += 1
        candidate = f"{base}{n}"
    return candidate


def identity_validate(
    *, email: str, password: str | None, username: str = "", display_name: str = ""
) -> None:
    """Raise 422 listing every problem with a new identity's email and password."""
    problems: list[dict[str, str]] = []
    try:
        validate_email(email)
    except ValidationError:
        problems.append({"field": "email", "message": "Enter a valid email address."})
    if password is not None:
        probe = User(email=email, username=username, display_name=display_name)
        try:
            validate_password(password, user=probe)
        except ValidationError as exc:
            problems.extend({"field": "password", "message": m} for m in exc.messages)
    if problems:
        raise Invalid("Invalid account details.", details=problems)


def identity_create(
    *,
    email: str,
    password: str | None,
    username: str = "",
    display_name: str = "",
    password_hash: str | None = None,
) -> User:
    """Create a global identity; 409 if the email or username is taken. A caller that
    already validated and hashed the password passes `password_hash` instead."""
    email = email.strip().lower()
    identity_validate(email=email, password=password, username=username, display_name=display_name)
    if User.objects.filter(email__iexact=email).exists():
        raise Conflict("An account with this email already exists.", code="email_taken")
    username = username or username_from_email(email)
    if User.objects.filter(username__iexact=username).exists():
        raise Conflict("This username is taken.", code="username_taken")
    first, _, last = display_name.strip().partition(" ")
    try:
        with transaction.atomic():
            user = User(
                email=email,
                username=username,
                display_name=display_name.strip(),
                first_name=first,
                last_name=last,
            )
            if password_hash is not None:
                user.password = password_hash
            else:
                user.set_password(password)
            user.save()
            return user
    except IntegrityError as exc:  # lost a race on the unique constraints
        raise Conflict("An account with this email or username already exists.") from exc


@transaction.atomic
def membership_create(
    *, user: User, role: str, actor: object = None, groups: Iterable[Group] = ()
) -> Membership:
    """Add `user` to the current tenant with `role`; 409 if already a member."""
    if role not in Role.values:
        raise Invalid(f"Unknown role {role!r}.", details={"role": role, "allowed": Role.values})
    try:
        with transaction.atomic():
            member = Membership.objects.create(user=user, role=role)
    except IntegrityError as exc:
        raise Conflict("This person is already a member of this workspace.") from exc
    member.user = user
    group_list = list(groups)
    if group_list:
        member.groups.set(group_list)
    Tenant.objects.filter(schema_name=current_schema()).update(member_count=F("member_count") + 1)
    change_record(
        "member.created",
        actor=actor,
        target_type="member",
        target_id=user.pk,
        changes={"role": [None, role], "groups": [None, [g.name for g in group_list]]},
        payload={"user_id": user.pk, "role": role},
    )
    return member


@transaction.atomic
def membership_deactivate(*, member: Membership, actor: object) -> Membership:
    """Deactivate a member and revoke every session, refresh token and API token at once."""
    from accounts.members.models import ApiToken, RefreshToken

    if not member.is_active:
        return member
    member_guard_last_admin(member=member, new_role=None)
    now = timezone.now()
    # Conditional update: of two concurrent deactivations only one counts (member_count).
    deactivated = Membership.objects.filter(pk=member.pk, is_active=True).update(
        is_active=False, deactivated_at=now, token_generation=F("token_generation") + 1
    )
    if not deactivated:
        member.refresh_from_db()
        return member
    RefreshToken.objects.filter(membership=member, revoked_at__isnull=True).update(revoked_at=now)
    ApiToken.objects.filter(membership=member, revoked_at__isnull=True).update(revoked_at=now)
    Tenant.objects.filter(schema_name=current_schema()).update(member_count=F("member_count") - 1)
    member.refresh_from_db()
    change_record(
        "member.deactivated",
        actor=actor,
        target_type="member",
        target_id=member.user_id,
        changes={"is_active": [True, False]},
        payload={"user_id": member.user_id},
    )
    return member


def member_guard_last_admin(*, member: Membership, new_role: str | None) -> None:
    """Refuse (409) to leave the workspace without an active admin."""
    if member.role != Role.ADMIN or new_role == Role.ADMIN:
        return
    member_admins_lock()
    others = Membership.objects.filter(role=Role.ADMIN, is_active=True).exclude(pk=member.pk)
    if not others.exists():
        raise Conflict("A workspace needs at least one active admin.", code="last_admin")


def member_admins_lock() -> None:
    """Serialize, per tenant and until commit, every change that may remove an admin.

    Two admins demoting or deactivating each other at once would each still see the
    other as an admin; with this lock the second one waits, then sees the first's
    change. Take it before locking any membership row (a fixed order: no deadlock).
    Re-entrant within a transaction.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{current_schema()}:admins"])
