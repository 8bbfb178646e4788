"""Signing in and the credentials it hands out: password login with throttling, the
second step of an MFA login, logout, accepting an invitation, password reset, and
personal API tokens.

Login failures are throttled in Redis per account (the identity's email: identities are
global) and per client address (per workspace), and logged rather than audited row by
row, so a password-guessing run cannot amplify into database writes.
"""

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from accounts.auth_tokens import TokenPair, token_pair_issue
from accounts.authentication import API_TOKEN_PREFIX, access_token_denylist_key
from accounts.emails import email_send_after_commit
from accounts.members.models import ApiToken, Invitation, Membership, RefreshToken
from accounts.mfa import (
    MFA_ENROLL_TOKEN,
    MFA_TOKEN,
    mfa_code_verify,
    mfa_enabled,
    mfa_required_by_policy,
    mfa_token_mint,
    mfa_token_read,
    mfa_token_spend,
    totp_activate,
    totp_verify_pending,
)
from accounts.models import PasswordResetToken, User
from accounts.services import identity_create, identity_validate, membership_create
from accounts.tokens import jwt_read, secret_hash, secret_new
from eventlog.audit import audit_record
from eventlog.outbox import outbox_emit
from eventlog.record import change_record
from saas.context import request_context
from saas.errors import BadRequest, Conflict, Invalid, NotFound, RateLimited, Unauthorized
from saas.ratelimit import ratelimit_blocked_for, ratelimit_clear, ratelimit_hit
from saas.redis import redis_client
from saas.tenancy import current_schema
from tenants.models import Tenant

logger = logging.getLogger("accounts.auth")

INVALID_CREDENTIALS = "Invalid email or password."
PASSWORD_RESET_MAX_PER_EMAIL = 3  # per hour; beyond it requests are accepted but send nothing
PASSWORD_RESET_MAX_PER_IP = 20  # per hour and workspace; beyond it 429
API_TOKEN_PREFIX_BYTES = 6  # 12 hex characters


# --- login ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginOutcome:
    """A login ends in a token pair, or in a token for the step still missing."""

    pair: TokenPair | None = None
    mfa_token: str | None = None
    enrolment_token: str | None = None

    def as_response(self) -> dict[str, Any]:
        if self.pair is not None:
            return self.pair.as_response()
        if self.mfa_token is not None:
            return {"mfa_required": True, "mfa_token": self.mfa_token}
        return {"mfa_enrollment_required": True, "mfa_token": self.enrolment_token}


def _login_failure_keys(*, email: str) -> list[tuple[str, int]]:
    return [
        (f"login:fail:account:{email}", settings.LOGIN_MAX_FAILURES_PER_ACCOUNT),
        (
            f"t:{current_schema()}:login:fail:ip:{request_context().ip}",
            settings.LOGIN_MAX_FAILURES_PER_IP,
        ),
    ]


def login_throttle_check(*, email: str) -> None:
    """429 with Retry-After while the account or the client address is locked out."""
    for key, limit in _login_failure_keys(email=email):
        wait = ratelimit_blocked_for(key=key, limit=limit)
        if wait:
            logger.warning(
                "login refused while throttled",
                extra={"schema": current_schema(), "ip": request_context().ip},
            )
            raise RateLimited(
                "Too many failed sign-in attempts; try again later.", retry_after=wait
            )


def login_failure_count(*, email: str, reason: str, user_id: int | None = None) -> None:
    """Count a failed password check against the account and the client address."""
    logger.warning(
        "login failed",
        extra={
            "reason": reason,
            "user_id": user_id,
            "schema": current_schema(),
            "ip": request_context().ip,
        },
    )
    for key, limit in _login_failure_keys(email=email):
        ratelimit_hit(
            key=key,
            limit=limit,
            window_seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS,
            message="Too many failed sign-in attempts; try again later.",
        )


def _email_normal(email: str) -> str:
    return email.strip().lower()


def session_login(
    *, email: str, password: str, tenant: Tenant, user_agent: str = ""
) -> LoginOutcome:
    """Check a member's email and password. Anyone who is not an active member of this
    workspace with an active identity gets the same 401 (no user enumeration)."""
    email = _email_normal(email)
    login_throttle_check(email=email)
    user = User.objects.filter(email=email).first()  # stored lowercased
    if user is None:
        User().set_password(password)  # spend the hashing time a real check would
        login_failure_count(email=email, reason="unknown_email")
        raise Unauthorized(INVALID_CREDENTIALS, code="invalid_credentials")
    if not user.check_password(password):
        login_failure_count(email=email, reason="wrong_password", user_id=user.pk)
        raise Unauthorized(INVALID_CREDENTIALS, code="invalid_credentials")
    member = Membership.objects.select_related("user").filter(user=user).first()
    if member is None or not member.is_active or not user.is_active:
        login_failure_count(email=email, reason="not_an_active_member", user_id=user.pk)
        raise Unauthorized(INVALID_CREDENTIALS, code="invalid_credentials")
    ratelimit_clear(key=_login_failure_keys(email=email)[0][0])
    return login_next_step(member=member, tenant=tenant, method="password", user_agent=user_agent)


def login_next_step(
    *, member: Membership, tenant: Tenant, method: str, user_agent: str = ""
) -> LoginOutcome:
    """After a correct password: ask for a code, demand enrolment, or start the session."""
    if mfa_enabled(user=member.user):
        return LoginOutcome(mfa_token=mfa_token_mint(member=member, typ=MFA_TOKEN))
    if mfa_required_by_policy(member=member, tenant=tenant):
        return LoginOutcome(enrolment_token=mfa_token_mint(member=member, typ=MFA_ENROLL_TOKEN))
    return LoginOutcome(pair=session_start(member=member, method=method, user_agent=user_agent))


@transaction.atomic
def session_start(*, member: Membership, method: str, user_agent: str = "") -> TokenPair:
    """Issue the token pair of a new login, recorded in the audit log."""
    pair = token_pair_issue(member=member, user_agent=user_agent)
    User.objects.filter(pk=member.user_id).update(last_login=timezone.now())
    change_record(
        "auth.login",
        actor=member,
        target_type="member",
        target_id=member.user_id,
        changes={"method": [None, method]},
        payload={"user_id": member.user_id, "method": method},
    )
    return pair


def session_mfa_complete(*, mfa_token: str, code: str, user_agent: str = "") -> TokenPair:
    """Second step of a login: the `mfa` token from the first step and a code."""
    member, claims = mfa_token_read(token=mfa_token, typ=MFA_TOKEN)
    factor = mfa_code_verify(user=member.user, code=code)
    mfa_token_spend(claims=claims)
    return session_start(member=member, method=f"password+{factor}", user_agent=user_agent)


def session_mfa_enrol_complete(
    *, member: Membership, claims: dict[str, Any], code: str, user_agent: str = ""
) -> tuple[list[str], TokenPair]:
    """Confirm the authenticator set up with an `mfa_enroll` token, and start the session
    the workspace's policy held back. Answers the backup codes and the token pair."""
    totp_verify_pending(member=member, code=code)
    mfa_token_spend(claims=claims)
    with transaction.atomic():
        codes = totp_activate(member=member)
        pair = session_start(member=member, method="password+totp_enrolment", user_agent=user_agent)
    return codes, pair


# --- logout --------------------------------------------------------------------------


def access_token_revoke(*, token: str) -> None:
    """Deny-list an access JWT in Redis until it would have expired anyway."""
    claims = jwt_read(token, typ="access", tid=current_schema())
    ttl = max(1, int(claims["exp"]) - int(time.time()) + 1)
    redis_client().set(access_token_denylist_key(claims["jti"]), "1", ex=ttl)


def session_logout(*, member: Membership, access_token: str | None, refresh: str | None) -> None:
    """End one login: revoke the refresh token's family (if it is the member's) and the
    access token presented (if a JWT)."""
    with transaction.atomic():
        revoked = 0
        if refresh:
            family = (
                RefreshToken.objects.filter(membership=member, token_hash=secret_hash(refresh))
                .values_list("family", flat=True)
                .first()
            )
            if family is not None:
                revoked = RefreshToken.objects.filter(
                    membership=member, family=family, revoked_at__isnull=True
                ).update(revoked_at=timezone.now())
        change_record(
            "auth.logout",
            actor=member,
            target_type="member",
            target_id=member.user_id,
            changes={"refresh_tokens_revoked": [None, revoked]},
            payload={"user_id": member.user_id},
        )
    if access_token and not access_token.startswith(API_TOKEN_PREFIX):
        access_token_revoke(token=access_token)


def _sessions_revoke_all(*, member: Membership) -> int:
    """Bump the token generation (every access token dies) and revoke refresh tokens."""
    Membership.objects.filter(pk=member.pk).update(token_generation=F("token_generation") + 1)
    return RefreshToken.objects.filter(membership=member, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


@transaction.atomic
def session_logout_all(*, member: Membership) -> None:
    """End every login of the member in this workspace (API tokens are left alone)."""
    revoked = _sessions_revoke_all(member=member)
    change_record(
        "auth.logout_all",
        actor=member,
        target_type="member",
        target_id=member.user_id,
        changes={"refresh_tokens_revoked": [None, revoked]},
        payload={"user_id": member.user_id},
    )


def member_profile(*, member: Membership, tenant: Tenant) -> dict[str, Any]:
    """Who the caller is in this workspace."""
    user = member.user
    return {
        "id": user.pk,
        "email": user.email,
        "username": user.username,
        "display_name": user.name,
        "role": member.role,
        "groups": list(member.groups.order_by("name").values("id", "name")),
        "mfa_enabled": mfa_enabled(user=user),
        "tenant": {"subdomain": tenant.subdomain, "name": tenant.name},
    }


# --- invitations ---------------------------------------------------------------------


def invitation_accept(
    *,
    raw_token: str,
    password: str,
    tenant: Tenant,
    username: str = "",
    display_name: str = "",
    user_agent: str = "",
) -> LoginOutcome:
    """Join the workspace with an invitation. A person new to the platform gets an identity
    with `password`; someone who already has one (in another workspace) proves it with its
    password, which is left unchanged. Then the membership is created with the invitation's
    role and groups, and the login proceeds as after a correct password."""
    now = timezone.now()
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update().filter(token_hash=secret_hash(raw_token)).first()
        )
        if invitation is None:
            raise NotFound("This invitation does not exist.", code="invitation_not_found")
        if invitation.revoked_at is not None:
            raise BadRequest("This invitation was withdrawn.", code="invitation_revoked")
        if invitation.accepted_at is not None:
            raise BadRequest("This invitation was already used.", code="invitation_used")
        if invitation.expires_at <= now:
            raise BadRequest(
                "This invitation has expired; ask for a new one.", code="invitation_expired"
            )
        email = _email_normal(invitation.email)
        user = User.objects.filter(email=email).first()
        if user is None:
            user = identity_create(
                email=email,
                password=password,
                username=username.strip(),
                display_name=display_name.strip() or invitation.display_name,
            )
        elif not user.has_usable_password() and user.is_active:
            # A placeholder identity (made by an import): the invitation sets its password.
            identity_validate(
                email=email,
                password=password,
                username=user.username,
                display_name=user.display_name,
            )
            user.set_password(password)
            user.save(update_fields=["password"])
        else:
            login_throttle_check(email=email)
            if not user.check_password(password) or not user.is_active:
                login_failure_count(email=email, reason="invitation_password", user_id=user.pk)
                raise Unauthorized(
                    "An account with this email exists; enter its password to join.",
                    code="invalid_credentials",
                )
        member = Membership.objects.select_related("user").filter(user=user).first()
        if member is None:
            member = membership_create(
                user=user, role=invitation.role, actor=user, groups=invitation.groups.all()
            )
        elif not member.is_active:
            raise Conflict(
                "This membership was deactivated; ask an admin to reactivate it.",
                code="member_deactivated",
            )
        Invitation.objects.filter(pk=invitation.pk).update(accepted_at=now)
        change_record(
            "invitation.accepted",
            actor=user,
            target_type="invitation",
            target_id=invitation.pk,
            changes={"accepted_at": [None, now.isoformat()]},
            payload={"user_id": user.pk, "role": invitation.role},
        )
        return login_next_step(
            member=member, tenant=tenant, method="invitation", user_agent=user_agent
        )


# --- password reset ------------------------------------------------------------------


def password_reset_request(*, email: str, tenant: Tenant) -> None:
    """Email a single-use reset link if `email` belongs to an active member of this
    workspace. The caller answers the same whatever happens here (no enumeration)."""
    email = _email_normal(email)
    ratelimit_hit(
        key=f"t:{current_schema()}:pwreset:ip:{request_context().ip}",
        limit=PASSWORD_RESET_MAX_PER_IP,
        window_seconds=3600,
        message="Too many password reset requests; try again later.",
    )
    try:
        ratelimit_hit(
            key=f"pwreset:email:{email}",
            limit=PASSWORD_RESET_MAX_PER_EMAIL,
            window_seconds=3600,
            message="",
        )
    except RateLimited:
        logger.info("password reset not sent: too many for this email")
        return
    member = (
        Membership.objects.select_related("user")
        .filter(user__email=email, is_active=True, user__is_active=True)
        .first()
    )
    if member is None:
        logger.info("password reset not sent: not a member", extra={"schema": tenant.schema_name})
        return
    raw = secret_new()
    ttl = settings.PASSWORD_RESET_TTL
    with transaction.atomic():
        PasswordResetToken.objects.create(
            user=member.user,
            token_hash=secret_hash(raw),
            schema_name=current_schema(),
            expires_at=timezone.now() + ttl,
        )
        audit_record(
            actor=None,
            action="auth.password_reset_requested",
            target_type="member",
            target_id=member.user_id,
        )
        outbox_emit(
            "auth.password_reset_requested",
            aggregate_type="member",
            aggregate_id=member.user_id,
            payload={"user_id": member.user_id},
        )
        minutes = int(ttl.total_seconds() // 60)
        email_send_after_commit(
            to=member.user.email,
            subject=f"Reset your password for {tenant.name}",
            body=(
                f"Someone asked to reset the password of your account in {tenant.name}.\n\n"
                f"To choose a new password, open this link within {minutes} minutes:\n"
                f"{tenant.url}/reset-password?token={raw}\n\n"
                "If it was not you, ignore this email: your password stays as it is.\n"
            ),
        )


def password_reset_complete(*, raw_token: str, password: str) -> None:
    """Set a new password with a reset token issued by this workspace: single use, expiring.
    Every login of the member here ends (refresh tokens revoked, access tokens outdated)."""
    now = timezone.now()
    with transaction.atomic():
        token = (
            PasswordResetToken.objects.select_for_update()
            .select_related("user")
            .filter(token_hash=secret_hash(raw_token))
            .first()
        )
        # A token of another workspace is treated as unknown: it must not be spent here.
        if token is None or token.schema_name != current_schema():
            raise BadRequest("This reset link is invalid.", code="reset_token_invalid")
        if token.used_at is not None:
            raise BadRequest("This reset link was already used.", code="reset_token_used")
        if token.expires_at <= now:
            raise BadRequest("This reset link has expired.", code="reset_token_expired")
        user = token.user
        member = Membership.objects.filter(user=user, is_active=True).first()
        if member is None or not user.is_active:
            raise BadRequest("This reset link is invalid.", code="reset_token_invalid")
        try:
            validate_password(password, user=user)
        except ValidationError as exc:
            raise Invalid(
                "Choose a stronger password.",
                details=[{"field": "password", "message": m} for m in exc.messages],
            ) from exc
        user.set_password(password)
        user.save(update_fields=["password"])
        # The password is global: every outstanding link, in any workspace, is spent.
        PasswordResetToken.objects.filter(user=user, used_at__isnull=True).update(used_at=now)
        revoked = _sessions_revoke_all(member=member)
        change_record(
            "auth.password_reset",
            actor=user,
            target_type="member",
            target_id=user.pk,
            changes={"refresh_tokens_revoked": [None, revoked]},
            payload={"user_id": user.pk},
        )
    ratelimit_clear(key=_login_failure_keys(email=user.email)[0][0])


# --- personal API tokens -------------------------------------------------------------


def api_tokens_of(*, member: Membership) -> QuerySet[ApiToken]:
    """The member's API tokens, newest first (the secrets are not stored)."""
    return ApiToken.objects.filter(membership=member).order_by("-created_at", "-id")


@transaction.atomic
def api_token_create(
    *, member: Membership, name: str, expires_in_days: int | None = None
) -> tuple[ApiToken, str]:
    """Create a personal API token `tkt_<prefix>_<secret>`; answers the row and the raw
    token, which is shown this once (only its SHA-256 is stored)."""
    name = name.strip()
    if not name:
        raise Invalid("Invalid API token.", details=[{"field": "name", "message": "Enter a name."}])
    expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
    for _ in range(5):
        prefix = secrets.token_hex(API_TOKEN_PREFIX_BYTES)
        raw = f"{API_TOKEN_PREFIX}{prefix}_{secret_new()}"
        try:
            with transaction.atomic():
                token = ApiToken.objects.create(
                    membership=member,
                    name=name,
                    prefix=prefix,
                    token_hash=secret_hash(raw),
                    expires_at=expires_at,
                )
            break
        except IntegrityError:  # prefix collision: draw again
            continue
    else:
        raise Conflict("Could not allocate a token prefix; try again.")
    change_record(
        "auth.api_token_created",
        actor=member,
        target_type="api_token",
        target_id=token.pk,
        changes={"name": [None, name], "prefix": [None, prefix], "expires_at": [None, expires_at]},
        payload={"user_id": member.user_id, "prefix": prefix},
    )
    return token, raw


@transaction.atomic
def api_token_revoke(*, member: Membership, token_id: int) -> None:
    """Revoke one of the member's own API tokens (404 for anyone else's)."""
    token = ApiToken.objects.select_for_update().filter(pk=token_id, membership=member).first()
    if token is None:
        raise NotFound("API token not found.")
    if token.revoked_at is not None:
        return
    now = timezone.now()
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=now)
    change_record(
        "auth.api_token_revoked",
        actor=member,
        target_type="api_token",
        target_id=token.pk,
        changes={"revoked_at": [None, now]},
        payload={"user_id": member.user_id, "prefix": token.prefix},
    )
