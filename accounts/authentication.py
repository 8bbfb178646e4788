"""Who is calling: a tenant-bound JWT, a personal API token, or a browser session.

Every path ends in an active `Membership` of the current tenant on `request.member`,
checked on every request, so deactivation takes effect at once.
"""

import hmac
from datetime import timedelta

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from ninja.security import APIKeyCookie, HttpBearer

from accounts.members.models import ApiToken, Membership
from accounts.tokens import jwt_read, secret_hash
from saas.errors import Unauthorized
from saas.ratelimit import Limit, ratelimit_hits
from saas.redis import redis_client
from saas.tenancy import current_schema

API_TOKEN_PREFIX = "tkt_"


class AuthedRequest(HttpRequest):
    """What routers of the tenant API receive: the caller's membership is attached."""

    member: Membership


def access_token_denylist_key(jti: str) -> str:
    return f"t:{current_schema()}:jti:{jti}"


def member_for_access_token(token: str) -> Membership:
    claims = jwt_read(token, typ="access", tid=current_schema())
    if redis_client().exists(access_token_denylist_key(claims["jti"])):
        raise Unauthorized("Token was revoked.", code="token_revoked")
    member = Membership.objects.select_related("user").filter(user_id=claims["sub"]).first()
    if member is None or member.token_generation != claims.get("gen"):
        raise Unauthorized("Token was revoked.", code="token_revoked")
    return member


def member_for_api_token(raw: str) -> Membership:
    prefix, _, _secret = raw[len(API_TOKEN_PREFIX) :].partition("_")
    if not (0 < len(prefix) <= 16 and prefix.isascii() and prefix.isalnum()):
        # never query with garbage (a NUL byte would make PostgreSQL fail: 500)
        raise Unauthorized("Invalid API token.", code="token_invalid")
    token = (
        ApiToken.objects.select_related("membership__user")
        .filter(prefix=prefix, revoked_at__isnull=True)
        .first()
    )
    if token is None or not hmac.compare_digest(token.token_hash, secret_hash(raw)):
        raise Unauthorized("Invalid API token.", code="token_invalid")
    now = timezone.now()
    if token.expires_at and token.expires_at <= now:
        raise Unauthorized("API token expired.", code="token_expired")
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.membership


def member_admit(request: HttpRequest, member: Membership) -> Membership:
    """Common tail of every authentication path: active checks, then rate limits."""
    if not member.is_active or not member.user.is_active:
        raise Unauthorized("This account is deactivated.", code="account_inactive")
    schema = current_schema()
    ratelimit_hits(
        Limit(
            key=f"t:{schema}:user:{member.user_id}",
            limit=settings.RATE_LIMIT_USER_PER_MINUTE,
            window_seconds=60,
            message="Too many requests for this user; slow down.",
        ),
        Limit(
            key=f"t:{schema}:tenant",
            limit=settings.RATE_LIMIT_TENANT_PER_MINUTE,
            window_seconds=60,
            message="Too many requests for this workspace; slow down.",
        ),
    )
    request.member = member  # type: ignore[attr-defined]
    return member


class BearerAuth(HttpBearer):
    """`Authorization: Bearer <access JWT | tkt_ API token>`."""

    def authenticate(self, request: HttpRequest, token: str) -> Membership:
        if token.startswith(API_TOKEN_PREFIX):
            member = member_for_api_token(token)
        else:
            member = member_for_access_token(token)
        return member_admit(request, member)


class SessionAuth(APIKeyCookie):
    """The browser UI's session cookie (CSRF enforced on unsafe methods)."""

    param_name = settings.SESSION_COOKIE_NAME

    def __init__(self) -> None:
        super().__init__(csrf=True)

    def authenticate(self, request: HttpRequest, key: str | None) -> Membership | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        member = Membership.objects.select_related("user").filter(user_id=user.pk).first()
        if member is None:
            return None
        return member_admit(request, member)


member_auth = [BearerAuth(), SessionAuth()]
