"""Issuing and rotating the token pair of a login (access JWT + opaque refresh token)."""

import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.members.models import Membership, RefreshToken
from accounts.tokens import jwt_mint, secret_hash, secret_new
from saas.context import request_context
from saas.errors import Unauthorized
from saas.tenancy import current_schema


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str
    expires_in: int

    def as_response(self) -> dict:
        return {
            "access": self.access,
            "refresh": self.refresh,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }


def access_token_mint(*, member: Membership) -> str:
    token, _ = jwt_mint(
        typ="access",
        sub=member.user_id,
        tid=current_schema(),
        ttl=settings.JWT_ACCESS_TTL,
        role=member.role,
        gen=member.token_generation,
    )
    return token


def token_pair_issue(
    *, member: Membership, family: uuid.UUID | None = None, user_agent: str = ""
) -> TokenPair:
    """Mint an access token and a new refresh token (in `family`, or a new one)."""
    raw = secret_new()
    RefreshToken.objects.create(
        membership=member,
        family=family or uuid.uuid4(),
        token_hash=secret_hash(raw),
        expires_at=timezone.now() + settings.JWT_REFRESH_TTL,
        ip=request_context().ip,
        user_agent=user_agent[:255],
    )
    return TokenPair(
        access=access_token_mint(member=member),
        refresh=raw,
        expires_in=int(settings.JWT_ACCESS_TTL.total_seconds()),
    )


def refresh_token_rotate(*, raw: str, user_agent: str = "") -> TokenPair:
    """Spend a refresh token for a new pair. Presenting a spent or revoked token is
    treated as theft: the whole family (that login) is revoked, and that sticks."""
    with transaction.atomic():
        token = (
            RefreshToken.objects.select_for_update()
            .select_related("membership__user")
            .filter(token_hash=secret_hash(raw))
            .first()
        )
        if token is None:
            raise Unauthorized("Invalid refresh token.", code="token_invalid")
        now = timezone.now()
        reused = token.used_at is not None or token.revoked_at is not None
        if reused:
            RefreshToken.objects.filter(family=token.family, revoked_at__isnull=True).update(
                revoked_at=now
            )
        else:
            if token.expires_at <= now:
                raise Unauthorized("Refresh token expired.", code="token_expired")
            member = token.membership
            if not member.is_active or not member.user.is_active:
                raise Unauthorized("This account is deactivated.", code="account_inactive")
            RefreshToken.objects.filter(pk=token.pk).update(used_at=now)
            return token_pair_issue(member=member, family=token.family, user_agent=user_agent)
    # Raised outside the transaction so the family's revocation is kept.
    raise RefreshReuseDetected("Refresh token was already used; this login is revoked.")


class RefreshReuseDetected(Unauthorized):
    code = "token_reused"
