"""JWTs bound to one tenant (`tid`), and opaque secrets stored only as hashes."""

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

import jwt
from django.conf import settings
from django.utils import timezone

from saas.errors import Unauthorized

ALGORITHM = "HS256"


def secret_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def secret_new(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def jwt_mint(
    *, typ: str, sub: int, tid: str, ttl: timedelta, **claims: Any
) -> tuple[str, datetime]:
    now = timezone.now()
    expires = now + ttl
    payload = {
        "typ": typ,
        "sub": str(sub),
        "tid": tid,
        "iss": settings.JWT_ISSUER,
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": uuid.uuid4().hex,
        **claims,
    }
    return jwt.encode(payload, settings.JWT_SIGNING_KEY, algorithm=ALGORITHM), expires


def jwt_read(token: str, *, typ: str, tid: str) -> dict[str, Any]:
    """Decode and check signature, expiry, issuer, type and tenant; 401 otherwise."""
    try:
        claims = jwt.decode(
            token,
            settings.JWT_SIGNING_KEY,
            algorithms=[ALGORITHM],
            issuer=settings.JWT_ISSUER,
            options={"require": ["exp", "iat", "sub", "tid", "typ", "jti"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("Token expired.", code="token_expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("Invalid token.", code="token_invalid") from exc
    if claims.get("typ") != typ:
        raise Unauthorized("Wrong kind of token.", code="token_invalid")
    if claims.get("tid") != tid:
        raise Unauthorized("Token was issued for another workspace.", code="token_wrong_tenant")
    return claims
