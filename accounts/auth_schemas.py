"""Request and response bodies of `/auth`: sign-in, MFA, sessions, invitations, password
reset and personal API tokens."""

from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import AfterValidator


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refuse it here (422) instead of failing in the query.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# A string that is stored or looked up in the database as it is (not hashed first).
DbText = Annotated[str, AfterValidator(_no_nul)]


class ErrorBody(Schema):
    code: str
    message: str
    details: Any = None


class ErrorOut(Schema):
    error: ErrorBody


def errors(*statuses: int) -> dict[int, type[ErrorOut]]:
    """OpenAPI documentation of the error answers an endpoint may give."""
    return dict.fromkeys(statuses, ErrorOut)


# --- login and sessions --------------------------------------------------------------


class LoginIn(Schema):
    email: DbText = Field(..., max_length=254)
    password: str = Field(..., max_length=1024)


class TokenPairOut(Schema):
    access: str = Field(..., description="Access JWT for `Authorization: Bearer`.")
    refresh: str = Field(..., description="Opaque refresh token; rotates on every use.")
    token_type: Literal["Bearer"]
    expires_in: int = Field(..., description="Seconds until the access token expires.")


class MfaChallengeOut(Schema):
    mfa_required: Literal[True]
    mfa_token: str = Field(..., description="Send it to `POST /auth/mfa` with a code.")


class MfaEnrollmentOut(Schema):
    mfa_enrollment_required: Literal[True]
    mfa_token: str = Field(
        ...,
        description="Bearer token for `POST /auth/mfa/totp` and `POST /auth/mfa/totp/confirm` "
        "only; confirming returns the token pair.",
    )


LoginOut = TokenPairOut | MfaChallengeOut | MfaEnrollmentOut


class RefreshIn(Schema):
    refresh: str = Field(..., max_length=512)


class LogoutIn(Schema):
    refresh: str | None = Field(None, max_length=512)


class GroupRef(Schema):
    id: int
    name: str


class TenantRef(Schema):
    subdomain: str
    name: str


class MeOut(Schema):
    id: int
    email: str
    username: str
    display_name: str
    role: str
    groups: list[GroupRef]
    mfa_enabled: bool
    tenant: TenantRef


# --- MFA -----------------------------------------------------------------------------


class MfaCodeIn(Schema):
    code: str = Field(..., min_length=1, max_length=32)


class MfaLoginIn(Schema):
    mfa_token: str = Field(..., max_length=4096)
    code: str = Field(
        ..., min_length=1, max_length=32, description="Authenticator code or a backup code."
    )


class TotpSetupOut(Schema):
    secret: str = Field(..., description="Base32 secret, for typing into an authenticator.")
    otpauth_uri: str = Field(..., description="`otpauth://` URI, for a QR code.")


class BackupCodesOut(Schema):
    backup_codes: list[str] = Field(..., description="Shown once; each works once.")


class MfaEnabledOut(BackupCodesOut):
    """With an enrolment token, the token pair of the login comes along."""

    access: str | None = None
    refresh: str | None = None
    token_type: Literal["Bearer"] | None = None
    expires_in: int | None = None


class MfaStatusOut(Schema):
    enabled: bool
    pending: bool = Field(..., description="An authenticator is being set up.")
    backup_codes_remaining: int
    required: bool = Field(..., description="This workspace's policy requires MFA of you.")


# --- invitations and password reset --------------------------------------------------


class RegisterIn(Schema):
    token: str = Field(..., max_length=512)
    password: str = Field(..., max_length=1024)
    username: DbText = Field("", max_length=150)
    display_name: DbText = Field("", max_length=255)


class ForgotPasswordIn(Schema):
    email: DbText = Field(..., max_length=254)


class AcceptedOut(Schema):
    detail: str


class ResetPasswordIn(Schema):
    token: str = Field(..., max_length=512)
    password: str = Field(..., max_length=1024)


# --- API tokens ----------------------------------------------------------------------


class ApiTokenIn(Schema):
    name: DbText = Field(..., min_length=1, max_length=100)
    expires_in_days: int | None = Field(None, ge=1, le=3650)


class ApiTokenOut(Schema):
    id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiTokenCreatedOut(ApiTokenOut):
    token: str = Field(..., description="The raw token: shown this once, never again.")
