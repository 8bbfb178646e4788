"""The webhooks API: CRUD, validation, admin only, the secret shown once."""

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from eventlog.models import AuditEntry
from notifications.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from notifications.webhooks.signing import webhook_secret_decrypt
from tests.webhooks.conftest import SECRET, webhook_make

PUBLIC_URL = "https://93.184.215.14/hooks"  # a public address: no DNS needed


def _endpoints(world):
    with schema_context(world.schema):
        rows = list(WebhookEndpoint.objects.order_by("id").values("url", "active", "event_types"))
    connection.set_schema_to_public()
    return rows


def test_admin_creates_a_webhook_and_sees_the_secret_only_once(admin_a, world_a):
    # when
    created = admin_a.post(
        "/api/v1/webhooks",
        {"url": PUBLIC_URL, "event_types": ["ticket.*", "comment.created"], "description": "CI"},
    )
    # then
    assert created.status_code == 201, created.content
    body = created.json()
    secret = body["secret"]
    assert secret.startswith("whsec_")
    assert len(secret) > 40
    assert body["url"] == PUBLIC_URL
    assert body["event_types"] == ["ticket.*", "comment.created"]
    assert body["active"] is True
    assert body["jql"] == ""
    assert body["created_by"]["id"] == world_a.admin.pk
    shown = admin_a.get(f"/api/v1/webhooks/{body['id']}")
    listed = admin_a.get("/api/v1/webhooks")
    assert shown.status_code == 200
    assert "secret" not in shown.json()
    assert listed.json()["total"] == 1
    assert "secret" not in listed.json()["items"][0]
    assert secret not in shown.content.decode() + listed.content.decode()
    with schema_context(world_a.schema):
        stored = WebhookEndpoint.objects.get(pk=body["id"])
        assert secret not in stored.secret_encrypted
        assert webhook_secret_decrypt(stored.secret_encrypted) == secret
        audit = AuditEntry.objects.get(action="webhook.created")
        assert audit.target_id == str(body["id"])
        assert secret not in str(audit.changes)


def test_a_secret_of_your_own_is_kept(admin_a, world_a):
    created = admin_a.post("/api/v1/webhooks", {"url": PUBLIC_URL, "secret": SECRET})
    assert created.status_code == 201
    assert created.json()["secret"] == SECRET
    assert created.json()["event_types"] == ["*"]


@pytest.mark.parametrize("who", ["lead_a", "user_a"])
def test_only_tenant_admins_may_manage_webhooks(who, request, world_a):
    api = request.getfixturevalue(who)
    endpoint = webhook_make(world_a, PUBLIC_URL)
    base = f"/api/v1/webhooks/{endpoint.pk}"
    # when
    answers = [
        api.get("/api/v1/webhooks").status_code,
        api.post("/api/v1/webhooks", {"url": PUBLIC_URL}).status_code,
        api.get(base).status_code,
        api.put(base, {"url": "https://93.184.215.15/x"}).status_code,
        api.delete(base).status_code,
        api.post(f"{base}/rotate-secret").status_code,
        api.post(f"{base}/ping").status_code,
        api.get(f"{base}/deliveries").status_code,
    ]
    # then
    assert answers == [403] * 8
    assert _endpoints(world_a) == [{"url": PUBLIC_URL, "active": True, "event_types": ["*"]}]
    with schema_context(world_a.schema):
        assert WebhookDelivery.objects.count() == 0
        assert webhook_secret_decrypt(WebhookEndpoint.objects.get().secret_encrypted) == SECRET


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"url": "ftp://93.184.215.14/x"}, "webhook_url_scheme", "url"),
        ({"url": "not a url"}, "webhook_url_invalid", "url"),
        ({"url": "https://user:pw@93.184.215.14/x"}, "webhook_url_invalid", "url"),
        ({"url": "https://93.184.215.14:99999/x"}, "webhook_url_invalid", "url"),
        ({"url": "https://no-such-host.invalid/x"}, "webhook_url_unresolvable", "url"),
        (
            {"url": PUBLIC_URL, "event_types": ["ticket.craeted"]},
            "webhook_event_types_invalid",
            "event_types",
        ),
        (
            {"url": PUBLIC_URL, "event_types": ["auth.login"]},
            "webhook_event_types_invalid",
            "event_types",
        ),
    ],
)
def test_invalid_webhooks_are_refused_with_422(admin_a, world_a, body, code, field):
    # when
    response = admin_a.post("/api/v1/webhooks", body)
    # then
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == code
    assert error["details"]["field"] == field
    assert _endpoints(world_a) == []


def test_unknown_event_types_are_named(admin_a):
    response = admin_a.post(
        "/api/v1/webhooks", {"url": PUBLIC_URL, "event_types": ["ticket.*", "ticket.craeted"]}
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"]["unknown"] == ["ticket.craeted"]
    assert response.json()["error"]["message"] == "Unknown event types: ticket.craeted"


def test_an_invalid_jql_filter_answers_the_jql_error(admin_a, world_a):
    # when
    response = admin_a.post("/api/v1/webhooks", {"url": PUBLIC_URL, "jql": "status = = Open"})
    # then
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "jql_invalid"
    assert error["details"]["line"] == 1
    assert error["details"]["column"] == 10
    assert _endpoints(world_a) == []


def test_schema_errors_answer_422_and_create_nothing(admin_a, world_a):
    extra = admin_a.post("/api/v1/webhooks", {"url": PUBLIC_URL, "colour": "red"})
    empty_types = admin_a.post("/api/v1/webhooks", {"url": PUBLIC_URL, "event_types": []})
    short_secret = admin_a.post("/api/v1/webhooks", {"url": PUBLIC_URL, "secret": "short"})
    malformed = admin_a.post("/api/v1/webhooks", raw="{not json")
    assert [extra.status_code, empty_types.status_code, short_secret.status_code] == [422] * 3
    assert malformed.status_code == 400
    assert _endpoints(world_a) == []


def test_update_changes_given_fields_and_reenabling_clears_the_failure_state(
    admin_a, world_a, project_a
):
    # given a webhook disabled for failing
    endpoint = webhook_make(world_a, PUBLIC_URL, event_types=["ticket.created"])
    with schema_context(world_a.schema):
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            active=False, disabled_reason="Disabled automatically", failing_since=timezone.now()
        )
    # when
    response = admin_a.put(
        f"/api/v1/webhooks/{endpoint.pk}",
        {"event_types": ["comment.*"], "jql": "project = CORE", "active": True},
    )
    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["url"], body["event_types"], body["jql"], body["active"]) == (
        PUBLIC_URL,
        ["comment.*"],
        "project = CORE",
        True,
    )
    assert (body["failing_since"], body["disabled_reason"], body["disabled_at"]) == (None, "", None)
    with schema_context(world_a.schema):
        audit = AuditEntry.objects.get(action="webhook.updated")
        assert audit.changes == {
            "event_types": [["ticket.created"], ["comment.*"]],
            "jql": ["", "project = CORE"],
            "active": [False, True],
        }


def test_update_refuses_a_forbidden_url_and_keeps_the_old_one(admin_a, world_a):
    endpoint = webhook_make(world_a, PUBLIC_URL)
    response = admin_a.put(f"/api/v1/webhooks/{endpoint.pk}", {"url": "http://10.1.2.3/"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "webhook_url_forbidden"
    assert _endpoints(world_a)[0]["url"] == PUBLIC_URL


def test_rotate_secret_answers_a_new_secret_once(admin_a, world_a):
    endpoint = webhook_make(world_a, PUBLIC_URL)
    # when
    response = admin_a.post(f"/api/v1/webhooks/{endpoint.pk}/rotate-secret")
    # then
    assert response.status_code == 200
    new_secret = response.json()["secret"]
    assert new_secret != SECRET
    assert new_secret.startswith("whsec_")
    assert response.json()["secret_rotated_at"] is not None
    with schema_context(world_a.schema):
        stored = WebhookEndpoint.objects.get(pk=endpoint.pk)
        assert webhook_secret_decrypt(stored.secret_encrypted) == new_secret
        assert AuditEntry.objects.filter(action="webhook.secret_rotated").count() == 1
    assert "secret" not in admin_a.get(f"/api/v1/webhooks/{endpoint.pk}").json()


def test_delete_removes_the_webhook_and_its_log(admin_a, world_a):
    endpoint = webhook_make(world_a, PUBLIC_URL)
    ping = admin_a.post(f"/api/v1/webhooks/{endpoint.pk}/ping")
    assert ping.status_code == 202
    # when
    response = admin_a.delete(f"/api/v1/webhooks/{endpoint.pk}")
    # then
    assert response.status_code == 204
    assert admin_a.get(f"/api/v1/webhooks/{endpoint.pk}").status_code == 404
    with schema_context(world_a.schema):
        assert WebhookEndpoint.objects.count() == 0
        assert WebhookDelivery.objects.count() == 0
        assert WebhookAttempt.objects.count() == 0
        assert AuditEntry.objects.filter(action="webhook.deleted").count() == 1


@pytest.mark.parametrize("path", ["", "/deliveries", "/deliveries/1", "/rotate-secret"])
def test_unknown_ids_answer_404(admin_a, path):
    method = admin_a.post if path == "/rotate-secret" else admin_a.get
    response = method(f"/api/v1/webhooks/987654{path}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "webhook_not_found"


def test_a_delivery_of_another_webhook_answers_404(admin_a, world_a):
    first = webhook_make(world_a, PUBLIC_URL)
    second = webhook_make(world_a, "https://93.184.215.15/other")
    ping = admin_a.post(f"/api/v1/webhooks/{first.pk}/ping").json()
    response = admin_a.get(f"/api/v1/webhooks/{second.pk}/deliveries/{ping['id']}")
    redeliver = admin_a.post(f"/api/v1/webhooks/{second.pk}/deliveries/{ping['id']}/redeliver")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "delivery_not_found"
    assert redeliver.status_code == 404


def test_ping_and_redeliver_of_a_disabled_webhook_answer_409(admin_a, world_a):
    endpoint = webhook_make(world_a, PUBLIC_URL)
    ping = admin_a.post(f"/api/v1/webhooks/{endpoint.pk}/ping").json()
    with schema_context(world_a.schema):
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=False)
    connection.set_schema_to_public()
    again = admin_a.post(f"/api/v1/webhooks/{endpoint.pk}/ping")
    redeliver = admin_a.post(f"/api/v1/webhooks/{endpoint.pk}/deliveries/{ping['id']}/redeliver")
    assert again.status_code == 409
    assert redeliver.status_code == 409
    assert again.json()["error"]["code"] == "webhook_inactive"
    with schema_context(world_a.schema):
        assert WebhookDelivery.objects.count() == 1
