"""Signing secrets: generated, encrypted at rest, and the signature receivers check.

The signature is `X-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`
with the timestamp of `X-Webhook-Timestamp` (Unix seconds): binding the time into the
MAC lets receivers refuse replays of an old delivery (Stripe's scheme).
"""

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

SECRET_PREFIX = "whsec_"


def webhook_secret_generate() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _fernet() -> Fernet:
    digest = hashlib.sha256(b"webhooks-secret:" + settings.WEBHOOKS_SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def webhook_secret_encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def webhook_secret_decrypt(token: str) -> str:
    """The plain secret; raises ValueError when the key changed since it was stored."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("the webhook secret cannot be decrypted with the current key") from exc


def webhook_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Signature` header value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"
