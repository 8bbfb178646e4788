"""The two NinjaAPIs: the tenant API on `<sub>.BASE_DOMAIN` and the public API on the
bare domain. Both answer every error as `{"error": {"code", "message", "details"}}`."""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from accounts.authentication import member_auth
from saas.errors import ApiError, RateLimited, error_body

logger = logging.getLogger("saas.api")


def _validation_details(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    details = []
    for err in errors:
        loc = [str(part) for part in err.get("loc", ())]
        # ninja prefixes the parameter source and the body argument name; keep the field path
        if loc and loc[0] in {"body", "query", "path", "header", "cookie", "form", "file"}:
            loc = loc[2:] if len(loc) > 2 and loc[0] == "body" else loc[1:]
        details.append(
            {"field": ".".join(loc), "message": err.get("msg", ""), "type": err.get("type", "")}
        )
    return details


def _django_validation_details(exc: DjangoValidationError) -> list[dict[str, str]]:
    if hasattr(exc, "error_dict"):
        return [
            {"field": field, "message": message}
            for field, errors in exc.message_dict.items()
            for message in errors
        ]
    return [{"field": "", "message": message} for message in exc.messages]


def install_error_handlers(api: NinjaAPI) -> None:
    def respond(request: HttpRequest, status: int, body: dict) -> HttpResponse:
        return api.create_response(request, body, status=status)

    @api.exception_handler(ApiError)
    def on_api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
        response = respond(
            request,
            exc.status,
            error_body(exc.status, exc.message, code=exc.code, details=exc.details),
        )
        if isinstance(exc, RateLimited):
            response["Retry-After"] = str(exc.retry_after)
        if exc.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="api"'
        return response

    @api.exception_handler(NinjaValidationError)
    def on_validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
        return respond(
            request,
            422,
            error_body(422, "Request validation failed.", details=_validation_details(exc.errors)),
        )

    @api.exception_handler(DjangoValidationError)
    def on_django_validation_error(
        request: HttpRequest, exc: DjangoValidationError
    ) -> HttpResponse:
        return respond(
            request,
            422,
            error_body(422, "Validation failed.", details=_django_validation_details(exc)),
        )

    @api.exception_handler(AuthenticationError)
    def on_unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        response = respond(request, 401, error_body(401, "Authentication required."))
        response["WWW-Authenticate"] = 'Bearer realm="api"'
        return response

    @api.exception_handler(HttpError)
    def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        message = str(exc)
        if exc.status_code == 400 and message.startswith("Cannot parse request body"):
            message = "Malformed JSON in request body."
        return respond(request, exc.status_code, error_body(exc.status_code, message))

    @api.exception_handler(Http404)
    def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return respond(request, 404, error_body(404, "Not found."))

    @api.exception_handler(PermissionDenied)
    def on_permission_denied(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
        return respond(request, 403, error_body(403, str(exc) or "Forbidden."))

    @api.exception_handler(DataError)
    def on_data_error(request: HttpRequest, exc: DataError) -> HttpResponse:
        # Input the database cannot store (NUL characters, numbers out of range) that
        # slipped past schema validation: the caller's fault, not ours.
        logger.warning("data error on %s %s: %s", request.method, request.path, exc)
        return respond(
            request, 400, error_body(400, "The request contains values that cannot be stored.")
        )

    @api.exception_handler(Exception)
    def on_unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return respond(request, 500, error_body(500, "Internal server error."))


def build_tenant_api() -> NinjaAPI:
    from accounts.api_auth import router as auth_router
    from accounts.api_users import groups_router, invitations_router, users_router
    from eventlog.api import router as audit_router
    from notifications.api import router as notifications_router
    from notifications.webhooks.api import router as webhooks_router
    from reports.api import router as reports_router
    from reports.api_dashboards import router as dashboards_router
    from search.api import router as search_router
    from search.api_filters import router as filters_router
    from tickets.api import router as tickets_router
    from tickets.api_agile import router as agile_router
    from tickets.api_bulk import router as bulk_router
    from tickets.api_content import router as content_router
    from tickets.api_projects import router as projects_router
    from tickets.api_workflows import router as workflows_router
    from tickets.api_worklogs import router as worklogs_router

    api = NinjaAPI(
        title="Ticketing API",
        version="1",
        description="The API of one workspace (tenant). Authenticate with "
        "`Authorization: Bearer <access token or API token>`.",
        urls_namespace="tenant_api",
        auth=member_auth,
        docs_url="/docs",
    )
    install_error_handlers(api)
    api.add_router("/auth", auth_router)
    api.add_router("/users", users_router)
    api.add_router("/groups", groups_router)
    api.add_router("/invitations", invitations_router)
    api.add_router("/audit", audit_router)
    api.add_router("", projects_router)
    # Before the tickets router: `/tickets/bulk` must not be taken for a ticket key.
    api.add_router("", bulk_router)
    api.add_router("", tickets_router)
    api.add_router("", content_router)
    api.add_router("", workflows_router)
    api.add_router("/search", search_router)
    api.add_router("/filters", filters_router)
    api.add_router("", agile_router)
    api.add_router("", worklogs_router)
    api.add_router("/reports", reports_router)
    api.add_router("", dashboards_router)
    api.add_router("", notifications_router)
    api.add_router("/webhooks", webhooks_router)
    return api


def build_public_api() -> NinjaAPI:
    from tenants.api import router as signup_router

    api = NinjaAPI(
        title="Ticketing platform API",
        version="1",
        description="Public endpoints of the platform: signup.",
        urls_namespace="public_api",
        docs_url="/docs",
    )
    install_error_handlers(api)
    api.add_router("", signup_router)
    return api


tenant_api = build_tenant_api()
public_api = build_public_api()
