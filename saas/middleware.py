"""Request id and client address, health probes, and tenant routing by host."""

import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django_tenants.middleware.main import TenantMainMiddleware

from saas.context import RequestContext, request_context_reset, request_context_set
from saas.errors import error_body
from saas.tenancy import public_schema_set

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def client_ip(request: HttpRequest) -> str | None:
    """The caller's address, trusting exactly NUM_PROXIES hops of X-Forwarded-For."""
    remote = request.META.get("REMOTE_ADDR")
    hops = settings.NUM_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if hops and forwarded:
        addresses = [a.strip() for a in forwarded.split(",") if a.strip()]
        if addresses:
            return addresses[-min(hops, len(addresses))]
    return remote


class RequestContextMiddleware:
    """Echoes a well-formed `X-Request-ID` or makes one, and exposes it to audit and logs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_context_set(RequestContext(request_id=request_id, ip=client_ip(request)))
        try:
            response = self.get_response(request)
        finally:
            request_context_reset(token)
        response["X-Request-ID"] = request_id
        return response


class HealthCheckMiddleware:
    """`/healthz` (process is up) and `/readyz` (PostgreSQL and Redis answer) on any host,
    before tenant routing, so probes from the orchestrator need no tenant domain."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/healthz":
            return JsonResponse({"status": "ok"})
        if request.path == "/readyz":
            return readiness()
        return self.get_response(request)


def readiness() -> JsonResponse:
    from saas.redis import redis_client

    checks: dict[str, str] = {}
    try:
        public_schema_set()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["postgres"] = "ok"
    except Exception as exc:  # a probe reports, it does not raise
        checks["postgres"] = f"error: {exc.__class__.__name__}"
    try:
        redis_client().ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {exc.__class__.__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )


class TenantMiddleware(TenantMainMiddleware):
    """django-tenants' host routing, answering JSON instead of HTML pages:
    unknown host 404, suspended tenant 403."""

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        try:
            request.get_host()
        except DisallowedHost:
            return JsonResponse(error_body(400, "Invalid Host header."), status=400)
        response = super().process_request(request)
        if response is not None:
            return response
        tenant = request.tenant  # type: ignore[attr-defined]
        if tenant.schema_name != "public" and not tenant.is_active:
            public_schema_set()
            return JsonResponse(
                error_body(403, "This workspace is suspended.", code="tenant_suspended"),
                status=403,
            )
        return None

    def no_tenant_found(self, request: HttpRequest, hostname: str) -> HttpResponse:
        return JsonResponse(
            error_body(404, f"No workspace at {hostname}.", code="tenant_not_found"), status=404
        )


class JsonMethodNotAllowedMiddleware:
    """django-ninja answers 405 in plain text; give it the API's error body."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 405 and request.path.startswith("/api/"):
            allowed = response.get("Allow", "")
            json_response = JsonResponse(
                error_body(
                    405,
                    f"Method {request.method} is not allowed here.",
                    details={"allowed": sorted(m.strip() for m in allowed.split(",") if m)},
                ),
                status=405,
            )
            json_response["Allow"] = allowed
            return json_response
        return response
