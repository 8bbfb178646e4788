"""`/api/v1/auth`: sign-in (password, MFA), sessions, invitations, password reset and
personal API tokens, on a workspace's host."""

from typing import Any

from django.contrib.auth import logout as django_logout
from django.http import HttpRequest
from ninja import Path, Router, Status
from ninja.pagination import paginate
from ninja.security import HttpBearer

from accounts.auth_schemas import (
    AcceptedOut,
    ApiTokenCreatedOut,
    ApiTokenIn,
    ApiTokenOut,
    BackupCodesOut,
    ForgotPasswordIn,
    LoginIn,
    LoginOut,
    LogoutIn,
    MeOut,
    MfaCodeIn,
    MfaEnabledOut,
    MfaLoginIn,
    MfaStatusOut,
    RefreshIn,
    RegisterIn,
    ResetPasswordIn,
    TokenPairOut,
    TotpSetupOut,
    errors,
)
from accounts.auth_services import (
    api_token_create,
    api_token_revoke,
    api_tokens_of,
    invitation_accept,
    member_profile,
    password_reset_complete,
    password_reset_request,
    session_login,
    session_logout,
    session_logout_all,
    session_mfa_complete,
    session_mfa_enrol_complete,
)
from accounts.auth_tokens import refresh_token_rotate
from accounts.authentication import (
    API_TOKEN_PREFIX,
    AuthedRequest,
    BearerAuth,
    SessionAuth,
    member_admit,
)
from accounts.members.models import Membership
from accounts.mfa import (
    MFA_ENROLL_TOKEN,
    backup_codes_regenerate,
    mfa_disable,
    mfa_status_of,
    mfa_token_kind,
    mfa_token_read,
    totp_begin,
    totp_confirm,
)
from saas.errors import Forbidden
from saas.pagination import Page

router = Router(tags=["auth"])

FORGOT_PASSWORD_ANSWER = (
    "If this email belongs to a member of this workspace, a link to reset the password "
    "is on its way."
)


class EnrolmentOrMemberBearer(HttpBearer):
    """`Authorization: Bearer` with an access JWT or API token, or with the `mfa_enroll`
    token a login answers when the workspace requires MFA the person has not set up."""

    def authenticate(self, request: HttpRequest, token: str) -> Membership:
        if mfa_token_kind(token) == MFA_ENROLL_TOKEN:
            member, claims = mfa_token_read(token=token, typ=MFA_ENROLL_TOKEN)
            request.mfa_enrolment = claims  # type: ignore[attr-defined]
            return member_admit(request, member)
        return BearerAuth().authenticate(request, token)


enrolment_auth = [EnrolmentOrMemberBearer(), SessionAuth()]


def _member(request: AuthedRequest) -> Membership:
    return request.member  # type: ignore[attr-defined]


def _user_agent(request: AuthedRequest) -> str:
    return request.headers.get("User-Agent", "")


def _bearer_token(request: AuthedRequest) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _refuse_api_token(request: AuthedRequest) -> None:
    # A leaked API token must not be able to mint more credentials or touch the second
    # factor: these take a signed-in session.
    token = _bearer_token(request)
    if token and token.startswith(API_TOKEN_PREFIX):
        raise Forbidden("API tokens cannot do this; sign in.", code="api_token_not_allowed")


# --- login ---------------------------------------------------------------------------


@router.post("/login", response={200: LoginOut, **errors(401, 422, 429)}, auth=None)
def login(request: AuthedRequest, body: LoginIn) -> Any:
    """Sign in with email and password. Answers the token pair; or, when the person has
    MFA on, `{"mfa_required": true, "mfa_token"}` to finish with `POST /auth/mfa`; or, when
    this workspace requires MFA they have not set up, `{"mfa_enrollment_required": true,
    "mfa_token"}` to set it up with. Wrong credentials of any kind answer the same 401;
    repeated failures per account or per address answer 429 with `Retry-After`."""
    outcome = session_login(
        email=body.email,
        password=body.password,
        tenant=request.tenant,  # type: ignore[attr-defined]
        user_agent=_user_agent(request),
    )
    return outcome.as_response()


@router.post("/mfa", response={200: TokenPairOut, **errors(401, 422, 429)}, auth=None)
def login_mfa(request: AuthedRequest, body: MfaLoginIn) -> Any:
    """Finish a login with the `mfa_token` it answered and a code from the authenticator
    (each code works once) or a backup code (each works once)."""
    pair = session_mfa_complete(
        mfa_token=body.mfa_token, code=body.code, user_agent=_user_agent(request)
    )
    return pair.as_response()


@router.post("/refresh", response={200: TokenPairOut, **errors(401, 422)}, auth=None)
def refresh(request: AuthedRequest, body: RefreshIn) -> Any:
    """Trade a refresh token for a new pair; the old refresh token is spent. Presenting a
    spent one again answers 401 `token_reused` and ends that login for every holder."""
    return refresh_token_rotate(raw=body.refresh, user_agent=_user_agent(request)).as_response()


@router.post("/logout", response={204: None, **errors(401, 422)})
def logout(request: AuthedRequest, body: LogoutIn | None = None) -> Any:
    """End this login: the access token presented stops working at once, and the given
    refresh token's login (its whole rotation family) is revoked."""
    token = _bearer_token(request)
    session_logout(
        member=_member(request),
        access_token=token,
        refresh=body.refresh if body is not None else None,
    )
    if token is None:
        django_logout(request)
    return Status(204, None)


@router.post("/logout-all", response={204: None, **errors(401)})
def logout_all(request: AuthedRequest) -> Any:
    """End every login of yours in this workspace: all access and refresh tokens stop
    working. Personal API tokens are not affected."""
    session_logout_all(member=_member(request))
    if _bearer_token(request) is None:
        django_logout(request)
    return Status(204, None)


@router.get("/me", response={200: MeOut, **errors(401)})
def me(request: AuthedRequest) -> Any:
    """You: identity, role and groups in this workspace, and whether MFA is on."""
    return member_profile(member=_member(request), tenant=request.tenant)  # type: ignore[attr-defined]


# --- MFA management ------------------------------------------------------------------


@router.get("/mfa", response={200: MfaStatusOut, **errors(401)})
def mfa_status(request: AuthedRequest) -> Any:
    """Whether MFA is on, being set up, or required of you here; backup codes left."""
    return mfa_status_of(member=_member(request), tenant=request.tenant)  # type: ignore[attr-defined]


@router.post(
    "/mfa/totp", response={200: TotpSetupOut, **errors(401, 403, 409)}, auth=enrolment_auth
)
def mfa_totp_begin(request: AuthedRequest) -> Any:
    """Start setting up an authenticator app: answers its secret and `otpauth://` URI.
    Starting again replaces an authenticator not yet confirmed. Accepts an access token or
    the enrolment token of a login."""
    _refuse_api_token(request)
    return totp_begin(member=_member(request))


@router.post(
    "/mfa/totp/confirm",
    response={200: MfaEnabledOut, **errors(401, 403, 409, 422, 429)},
    auth=enrolment_auth,
    exclude_none=True,
)
def mfa_totp_confirm(request: AuthedRequest, body: MfaCodeIn) -> Any:
    """Confirm the authenticator with a code from it: MFA is on. Answers the backup codes,
    shown this once. With the enrolment token of a login, also the token pair."""
    _refuse_api_token(request)
    member = _member(request)
    enrolment = getattr(request, "mfa_enrolment", None)
    if enrolment is None:
        return {"backup_codes": totp_confirm(member=member, code=body.code)}
    codes, pair = session_mfa_enrol_complete(
        member=member, claims=enrolment, code=body.code, user_agent=_user_agent(request)
    )
    return {"backup_codes": codes, **pair.as_response()}


@router.post("/mfa/backup-codes", response={200: BackupCodesOut, **errors(401, 403, 409, 422, 429)})
def mfa_backup_codes(request: AuthedRequest, body: MfaCodeIn) -> Any:
    """Replace all backup codes with new ones (shown this once); needs a fresh code from
    the authenticator app."""
    _refuse_api_token(request)
    return {"backup_codes": backup_codes_regenerate(member=_member(request), code=body.code)}


@router.delete("/mfa", response={204: None, **errors(401, 403, 409, 422, 429)})
def mfa_turn_off(request: AuthedRequest, body: MfaCodeIn) -> Any:
    """Turn MFA off with a fresh code (authenticator or backup code). Refused (403) when
    this workspace requires MFA of you."""
    _refuse_api_token(request)
    mfa_disable(member=_member(request), tenant=request.tenant, code=body.code)  # type: ignore[attr-defined]
    return Status(204, None)


# --- invitations and password reset --------------------------------------------------


@router.post(
    "/register", response={201: LoginOut, **errors(400, 401, 404, 409, 422, 429)}, auth=None
)
def register(request: AuthedRequest, body: RegisterIn) -> Any:
    """Accept an invitation. New to the platform: choose a password (and optionally a
    username and display name). Already have an account in another workspace: give its
    password (it is not changed). Answers like a login: the token pair, or the MFA step."""
    outcome = invitation_accept(
        raw_token=body.token,
        password=body.password,
        username=body.username,
        display_name=body.display_name,
        tenant=request.tenant,  # type: ignore[attr-defined]
        user_agent=_user_agent(request),
    )
    return Status(201, outcome.as_response())


@router.post("/forgot-password", response={202: AcceptedOut, **errors(422, 429)}, auth=None)
def forgot_password(request: AuthedRequest, body: ForgotPasswordIn) -> Any:
    """Ask for a password reset link by email. Always answers the same, whether or not the
    email belongs to a member."""
    password_reset_request(email=body.email, tenant=request.tenant)  # type: ignore[attr-defined]
    return Status(202, {"detail": FORGOT_PASSWORD_ANSWER})


@router.post("/reset-password", response={204: None, **errors(400, 422)}, auth=None)
def reset_password(request: AuthedRequest, body: ResetPasswordIn) -> Any:
    """Choose a new password with the token from a reset link of this workspace (single
    use, expiring). Ends every login of yours here."""
    password_reset_complete(raw_token=body.token, password=body.password)
    return Status(204, None)


# --- personal API tokens -------------------------------------------------------------


@router.get("/tokens", response=list[ApiTokenOut])
@paginate(Page)
def tokens_list(request: AuthedRequest) -> Any:
    """Your personal API tokens, newest first. Secrets are never shown again."""
    return api_tokens_of(member=_member(request))


@router.post("/tokens", response={201: ApiTokenCreatedOut, **errors(401, 403, 422)})
def tokens_create(request: AuthedRequest, body: ApiTokenIn) -> Any:
    """Create a personal API token for `Authorization: Bearer tkt_...`. The token is in
    this answer only: store it now."""
    _refuse_api_token(request)
    token, raw = api_token_create(
        member=_member(request), name=body.name, expires_in_days=body.expires_in_days
    )
    return Status(201, {**ApiTokenOut.model_validate(token).model_dump(), "token": raw})


@router.delete("/tokens/{tokenId}", response={204: None, **errors(401, 404)})
def tokens_revoke(request: AuthedRequest, tokenId: int = Path(..., ge=1, le=2**63 - 1)) -> Any:
    """Revoke one of your personal API tokens; it stops working at once."""
    api_token_revoke(member=_member(request), token_id=tokenId)
    return Status(204, None)
