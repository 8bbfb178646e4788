"""Host routing, the error body everywhere, request ids and health probes."""

from django.db import connection
from django.test import Client

from saas.api import tenant_api
from tenants.models import Tenant
from tests.conftest import Api


def test_unknown_host_answers_json_404():
    # when
    response = Api("nobody.localhost").get("/api/v1/users")
    # then
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": "tenant_not_found",
            "message": "No workspace at nobody.localhost.",
            "details": None,
        }
    }


def test_disallowed_host_answers_json_400():
    # when
    response = Api("evil.example.org").get("/api/v1/users")
    # then
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


def test_suspended_tenant_answers_403_and_serves_nothing(admin_a, world_a):
    # given
    Tenant.objects.filter(pk=world_a.tenant.pk).update(status=Tenant.Status.SUSPENDED)
    # when
    response = admin_a.get("/api/v1/audit")
    # then
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "tenant_suspended"


def test_unknown_api_route_answers_json_404(admin_a):
    # when
    response = admin_a.get("/api/v1/no-such-thing")
    # then
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": "not_found",
            "message": "No route for /api/v1/no-such-thing.",
            "details": None,
        }
    }


def test_wrong_method_answers_json_405_with_allow(admin_a):
    # when
    response = admin_a.request("DELETE", "/api/v1/audit")
    # then
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response.json()["error"]["details"] == {"allowed": ["GET"]}
    assert response["Allow"] == "GET"


def test_missing_and_garbage_tokens_answer_401_with_error_body(anon_a, world_a):
    # when
    missing = anon_a.get("/api/v1/audit")
    garbage = Api(world_a.host, "not.a.jwt").get("/api/v1/audit")
    # then
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "unauthorized"
    assert missing["WWW-Authenticate"] == 'Bearer realm="api"'
    assert garbage.status_code == 401
    assert garbage.json()["error"]["code"] == "token_invalid"


def test_unhandled_exception_becomes_500_error_body(rf):
    # given a request that reached a handler which crashed
    request = rf.get("/api/v1/anything")
    # when
    response = tenant_api.on_exception(request, RuntimeError("boom"))
    # then
    assert response.status_code == 500
    assert response.content == (
        b'{"error": {"code": "internal_error", "message": "Internal server error.", '
        b'"details": null}}'
    )


def test_request_id_is_echoed_when_well_formed_and_generated_otherwise(admin_a):
    # when
    echoed = admin_a.request("GET", "/api/v1/audit", headers={"X-Request-ID": "req-123.abc"})
    replaced = admin_a.request("GET", "/api/v1/audit", headers={"X-Request-ID": "bad id\n!"})
    generated = admin_a.get("/api/v1/audit")
    # then
    assert echoed["X-Request-ID"] == "req-123.abc"
    assert len(replaced["X-Request-ID"]) == 32
    assert replaced["X-Request-ID"] != "bad id\n!"
    assert len(generated["X-Request-ID"]) == 32


def test_healthz_and_readyz_answer_on_any_host():
    # when
    health = Client(HTTP_HOST="10.1.2.3").get("/healthz")
    ready = Client(HTTP_HOST="10.1.2.3").get("/readyz")
    # then
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"postgres": "ok", "redis": "ok"}}
    assert connection.schema_name == "public"


def test_readyz_reports_503_when_redis_is_unreachable(settings):
    # given a Redis URL nobody listens on (a real connection attempt, not a mock)
    from saas.redis import redis_client

    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    redis_client.cache_clear()
    try:
        # when
        ready = Client(HTTP_HOST="localhost").get("/readyz")
    finally:
        redis_client.cache_clear()
    # then
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
    assert ready.json()["checks"]["postgres"] == "ok"
    assert ready.json()["checks"]["redis"] == "error: ConnectionError"


def test_openapi_documents_both_apis(anon_a, public_api):
    # when
    tenant_schema = anon_a.get("/api/v1/openapi.json")
    public_schema = public_api.get("/api/v1/openapi.json")
    docs = anon_a.get("/api/v1/docs")
    # then
    assert tenant_schema.status_code == 200
    assert "/api/v1/audit" in tenant_schema.json()["paths"]
    assert "/api/v1/signup" not in tenant_schema.json()["paths"]
    assert public_schema.status_code == 200
    assert "/api/v1/signup" in public_schema.json()["paths"]
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()


def test_values_the_database_cannot_store_answer_400_not_500(admin_a, world_a):
    # when a NUL character reaches a query the schemas did not guard
    response = admin_a.get("/api/v1/audit", action="a\x00b")
    # then
    assert response.status_code == 400
    assert (
        response.json()["error"]["message"] == "The request contains values that cannot be stored."
    )
