"""`Idempotency-Key` for writes: the first response is stored and replayed on retries.

Usage in a router: `return idempotent(request, lambda: (201, payload_dict, headers))`.
A key is scoped to the caller (and lives in the tenant schema); reusing it for a
different request answers 422; a retry while the first is still running answers 409.
"""

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone

from eventlog.models import IdempotencyRecord
from saas.errors import Conflict, Invalid

HEADER = "Idempotency-Key"
TTL = timedelta(hours=24)
Produce = Callable[[], tuple[int, Any, dict[str, str]]]


def _response(status: int, body: Any, headers: dict[str, str]) -> JsonResponse:
    response = JsonResponse(body, status=status, safe=False, encoder=DjangoJSONEncoder)
    for name, value in headers.items():
        response[name] = value
    return response


def idempotent(request: HttpRequest, produce: Produce) -> JsonResponse:
    key = request.headers.get(HEADER, "").strip()
    if not key:
        return _response(*produce())
    if len(key) > 255:
        raise Invalid(f"{HEADER} must be at most 255 characters.")
    user_id = request.member.user_id  # type: ignore[attr-defined]
    digest = hashlib.sha256(request.body).hexdigest()
    record = _claim(
        user_id=user_id, key=key, method=request.method or "", path=request.path, digest=digest
    )
    if record is not None:
        if record.request_hash != digest or record.path != request.path:
            raise Invalid(
                f"This {HEADER} was already used for a different request.",
                code="idempotency_key_reused",
            )
        if record.status_code is None:
            raise Conflict(
                "A request with this Idempotency-Key is still being processed.",
                code="idempotency_in_progress",
            )
        response = _response(record.status_code, record.response_body, record.response_headers)
        response["Idempotent-Replayed"] = "true"
        return response
    try:
        status, body, headers = produce()
    except Exception:
        IdempotencyRecord.objects.filter(user_id=user_id, key=key).delete()
        raise
    payload = json.loads(json.dumps(body, cls=DjangoJSONEncoder))
    IdempotencyRecord.objects.filter(user_id=user_id, key=key).update(
        status_code=status, response_body=payload, response_headers=headers
    )
    return _response(status, payload, headers)


def _claim(
    *, user_id: int, key: str, method: str, path: str, digest: str
) -> IdempotencyRecord | None:
    """Claim the key for this request (returns None), or return the earlier record."""
    IdempotencyRecord.objects.filter(
        user_id=user_id, key=key, created_at__lt=timezone.now() - TTL
    ).delete()
    try:
        with transaction.atomic():
            IdempotencyRecord.objects.create(
                user_id=user_id, key=key, method=method, path=path, request_hash=digest
            )
            return None
    except IntegrityError:
        return IdempotencyRecord.objects.get(user_id=user_id, key=key)
