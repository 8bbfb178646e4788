"""Second factor: a TOTP authenticator (django-otp) with single-use backup codes, the
workspace's MFA policy, and the short-lived tokens that carry a half-finished login.

Devices belong to the global identity, so MFA turned on in one workspace applies in all.
Backup codes are stored as keyed hashes (django-otp would keep them in clear text).
"""

import logging
import math
import secrets
import time
from base64 import b32encode
from dataclasses import dataclass
from typing import Any

import jwt
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.authentication import access_token_denylist_key
from accounts.members.models import Membership, Role
from accounts.models import User
from accounts.tokens import jwt_mint, jwt_read
from eventlog.record import change_record
from saas.errors import Conflict, Forbidden, RateLimited, Unauthorized
from saas.ratelimit import ratelimit_blocked_for, ratelimit_clear, ratelimit_hit
from saas.redis import redis_client
from saas.tenancy import current_schema
from tenants.models import Tenant

logger = logging.getLogger("accounts.mfa")

MFA_TOKEN = "mfa"  # password was right; a code is still needed
MFA_ENROLL_TOKEN = "mfa_enroll"  # password was right; the workspace demands enrolment first
TOTP_DEVICE_NAME = "Authenticator app"
BACKUP_DEVICE_NAME = "Backup codes"
BACKUP_CODE_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no 0/o, 1/l look-alikes
BACKUP_CODE_LENGTH = 10  # never 6 or 8, so a backup code is never taken for a TOTP code

FACTOR_TOTP = "totp"
FACTOR_BACKUP_CODE = "backup_code"


@dataclass(frozen=True)
class TotpSetup:
    secret: str
    otpauth_uri: str


@dataclass(frozen=True)
class MfaStatus:
    enabled: bool
    pending: bool
    backup_codes_remaining: int
    required: bool


# --- policy and status ---------------------------------------------------------------


def mfa_enabled(*, user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def mfa_required_by_policy(*, member: Membership, tenant: Tenant) -> bool:
    """Whether the workspace's `require_mfa` policy covers this member."""
    policy = tenant.require_mfa
    if policy == Tenant.MfaPolicy.ALL:
        return True
    return policy == Tenant.MfaPolicy.ADMINS and member.role == Role.ADMIN


def mfa_status_of(*, member: Membership, tenant: Tenant) -> MfaStatus:
    devices = list(
        TOTPDevice.objects.filter(user_id=member.user_id).values_list("confirmed", flat=True)
    )
    remaining = StaticToken.objects.filter(
        device__user_id=member.user_id, device__confirmed=True
    ).count()
    enabled = any(devices)
    return MfaStatus(
        enabled=enabled,
        pending=not enabled and bool(devices),
        backup_codes_remaining=remaining if enabled else 0,
        required=mfa_required_by_policy(member=member, tenant=tenant),
    )


# --- the tokens of a half-finished login ---------------------------------------------


def mfa_token_mint(*, member: Membership, typ: str) -> str:
    """A short-lived JWT bound to this workspace and to the member's token generation."""
    token, _ = jwt_mint(
        typ=typ,
        sub=member.user_id,
        tid=current_schema(),
        ttl=settings.MFA_TOKEN_TTL,
        gen=member.token_generation,
    )
    return token


def mfa_token_kind(token: str) -> str | None:
    """The `typ` claim, read without verifying (only to pick the verifier)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    typ = claims.get("typ") if isinstance(claims, dict) else None
    return typ if isinstance(typ, str) else None


def mfa_token_read(*, token: str, typ: str) -> tuple[Membership, dict[str, Any]]:
    """The active member an unspent MFA token of kind `typ` was issued to; 401 otherwise."""
    claims = jwt_read(token, typ=typ, tid=current_schema())
    if redis_client().exists(access_token_denylist_key(claims["jti"])):
        raise Unauthorized("This sign-in step was already completed.", code="token_revoked")
    member = Membership.objects.select_related("user").filter(user_id=claims["sub"]).first()
    if (
        member is None
        or member.token_generation != claims.get("gen")
        or not member.is_active
        or not member.user.is_active
    ):
        raise Unauthorized("Token was revoked.", code="token_revoked")
    return member, claims


def mfa_token_spend(*, claims: dict[str, Any]) -> None:
    """Mark an MFA token used; 401 if another request spent it first (SET NX)."""
    ttl = max(1, int(claims["exp"]) - int(time.time()) + 1)
    if not redis_client().set(access_token_denylist_key(claims["jti"]), "1", ex=ttl, nx=True):
        raise Unauthorized("This sign-in step was already completed.", code="token_revoked")


# --- codes ---------------------------------------------------------------------------


def _code_normal(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def _backup_code_digest(code: str) -> str:
    # Keyed, so a database dump alone does not reveal 50-bit codes to brute force.
    # 16 hex characters: what django-otp's StaticToken.token column holds.
    return salted_hmac("accounts.mfa.backup_code", code, algorithm="sha256").hexdigest()[:16]


def _mfa_failure_key(user_id: int) -> str:
    return f"mfa:fail:user:{user_id}"  # identities are global, so is this counter


def mfa_code_verify(
    *, user: User, code: str, pending: bool = False, allow_backup: bool = True
) -> str:
    """Check a second-factor code: the next TOTP code of the user's authenticator (a code
    is accepted once: django-otp's `last_t`), or one of their backup codes (spent on use).
    With `pending`, check the authenticator being set up instead. Answers which factor
    matched; raises 401 `mfa_code_invalid` for a wrong code, 429 while throttled (django-otp's
    exponential delay per device, and our Redis failure counter per identity).

    Runs its own transaction so a spent code and a counted failure stay recorded when the
    caller then answers with an error: do not call it inside a transaction."""
    fail_key = _mfa_failure_key(user.pk)
    limit = settings.LOGIN_MAX_FAILURES_PER_ACCOUNT
    wait = ratelimit_blocked_for(key=fail_key, limit=limit)
    if wait:
        raise RateLimited("Too many wrong codes; try again later.", retry_after=wait)
    code = _code_normal(code)
    factor = None
    verified = False
    locked_until = None
    with transaction.atomic():
        device: TOTPDevice | StaticDevice | None = None
        candidate = code
        if code.isdigit() and len(code) in (6, 8):
            factor = FACTOR_TOTP
            device = (
                TOTPDevice.objects.select_for_update()
                .filter(user=user, confirmed=not pending)
                .order_by("-id")
                .first()
            )
        elif allow_backup and len(code) == BACKUP_CODE_LENGTH and not pending:
            factor = FACTOR_BACKUP_CODE
            candidate = _backup_code_digest(code)
            device = (
                StaticDevice.objects.select_for_update()
                .filter(user=user, confirmed=True)
                .order_by("-id")
                .first()
            )
        if device is not None:
            allowed, info = device.verify_is_allowed()
            if allowed:
                verified = device.verify_token(candidate)
            else:
                locked_until = (info or {}).get("locked_until") or timezone.now()
    if locked_until is not None:
        retry_after = math.ceil((locked_until - timezone.now()).total_seconds())
        raise RateLimited(
            "Too many wrong codes; wait before trying again.", retry_after=retry_after
        )
    if not verified or factor is None:
        ratelimit_hit(
            key=fail_key,
            limit=limit,
            window_seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS,
            message="Too many wrong codes; try again later.",
        )
        logger.warning("mfa code refused", extra={"user_id": user.pk, "schema": current_schema()})
        raise Unauthorized("Invalid code.", code="mfa_code_invalid")
    ratelimit_clear(key=fail_key)
    return factor


def _backup_code_new() -> str:
    return "".join(secrets.choice(BACKUP_CODE_ALPHABET) for _ in range(BACKUP_CODE_LENGTH))


def _backup_codes_replace(*, user: User) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=BACKUP_DEVICE_NAME, confirmed=True)
    codes: set[str] = set()
    while len(codes) < settings.MFA_BACKUP_CODE_COUNT:
        codes.add(_backup_code_new())
    ordered = sorted(codes)
    StaticToken.objects.bulk_create(
        StaticToken(device=device, token=_backup_code_digest(code)) for code in ordered
    )
    return ordered


# --- enrolment, codes, disabling -----------------------------------------------------


@transaction.atomic
def totp_begin(*, member: Membership) -> TotpSetup:
    """Start setting up an authenticator: replaces any unconfirmed one; 409 if MFA is on."""
    user = member.user
    if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        raise Conflict(
            "Two-factor authentication is already on; turn it off to change authenticator.",
            code="mfa_already_enabled",
        )
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)
    return TotpSetup(
        secret=b32encode(device.bin_key).decode().rstrip("="), otpauth_uri=device.config_url
    )


def totp_verify_pending(*, member: Membership, code: str) -> None:
    """Check a code of the authenticator being set up (409 if none is being set up)."""
    user = member.user
    if not TOTPDevice.objects.filter(user=user, confirmed=False).exists():
        if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
            raise Conflict("Two-factor authentication is already on.", code="mfa_already_enabled")
        raise Conflict("Start setting up an authenticator first.", code="mfa_not_started")
    mfa_code_verify(user=user, code=code, pending=True)


@transaction.atomic
def totp_activate(*, member: Membership) -> list[str]:
    """Confirm the authenticator being set up and issue fresh backup codes (shown once)."""
    user = member.user
    device = (
        TOTPDevice.objects.select_for_update()
        .filter(user=user, confirmed=False)
        .order_by("-id")
        .first()
    )
    if device is None:  # confirmed by a concurrent request
        raise Conflict("Two-factor authentication is already on.", code="mfa_already_enabled")
    TOTPDevice.objects.filter(pk=device.pk).update(confirmed=True)
    TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    codes = _backup_codes_replace(user=user)
    change_record(
        "auth.mfa_enabled",
        actor=member,
        target_type="member",
        target_id=user.pk,
        changes={"mfa_enabled": [False, True]},
        payload={"user_id": user.pk},
    )
    return codes


def totp_confirm(*, member: Membership, code: str) -> list[str]:
    """Finish setting up an authenticator with one of its codes; answers the backup codes."""
    totp_verify_pending(member=member, code=code)
    return totp_activate(member=member)


def _mfa_require_enabled(*, user: User) -> None:
    if not mfa_enabled(user=user):
        raise Conflict("Two-factor authentication is off.", code="mfa_not_enabled")


def backup_codes_regenerate(*, member: Membership, code: str) -> list[str]:
    """Replace every backup code; needs a fresh code from the authenticator (not a backup
    code, so a leaked backup code cannot mint more)."""
    user = member.user
    _mfa_require_enabled(user=user)
    mfa_code_verify(user=user, code=code, allow_backup=False)
    with transaction.atomic():
        codes = _backup_codes_replace(user=user)
        change_record(
            "auth.mfa_backup_codes_regenerated",
            actor=member,
            target_type="member",
            target_id=user.pk,
            payload={"user_id": user.pk},
        )
    return codes


def mfa_disable(*, member: Membership, tenant: Tenant, code: str) -> None:
    """Turn MFA off with a fresh code (authenticator or backup code); 403 when the
    workspace's policy requires it of this member."""
    user = member.user
    _mfa_require_enabled(user=user)
    if mfa_required_by_policy(member=member, tenant=tenant):
        raise Forbidden(
            "This workspace requires two-factor authentication.", code="mfa_required_by_policy"
        )
    mfa_code_verify(user=user, code=code)
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
        change_record(
            "auth.mfa_disabled",
            actor=member,
            target_type="member",
            target_id=user.pk,
            changes={"mfa_enabled": [True, False]},
            payload={"user_id": user.pk},
        )
