import pytest
from django.db import DatabaseError, transaction
from django_tenants.utils import schema_context

from eventlog.audit import audit_record
from eventlog.models import AuditEntry


def _entries(world, *, count=3):
    with schema_context(world.schema):
        return [
            audit_record(
                actor=world.admin,
                action=f"thing.{verb}",
                target_type="thing",
                target_id=n,
                changes={"name": [None, f"n{n}"]},
            )
            for n, verb in zip(range(count), ["created", "updated", "deleted"], strict=False)
        ]


def test_admin_lists_audit_entries_newest_first_with_request_context(admin_a, world_a):
    # given
    created = _entries(world_a)
    # when
    response = admin_a.get("/api/v1/audit", target_type="thing")
    # then
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 3
    assert [item["id"] for item in body["items"]] == [e.pk for e in reversed(created)]
    first = body["items"][-1]
    assert first["action"] == "thing.created"
    assert first["actor_id"] == world_a.admin.pk
    assert first["actor_email"] == "admin@alpha.test"
    assert first["changes"] == {"name": [None, "n0"]}


def test_audit_filters_combine(admin_a, world_a):
    # given
    _entries(world_a)
    # when
    response = admin_a.get("/api/v1/audit", action="thing.updated", target_id="1")
    # then
    assert [item["action"] for item in response.json()["items"]] == ["thing.updated"]


def test_audit_records_request_ip_and_id_of_api_writes(admin_a, world_a):
    # when an audited write goes through the API
    admin_a.request("POST", "/api/v1/auth/logout-all", {}, headers={"X-Request-ID": "trace-77"})
    # then the newest entry carries the request's context
    with schema_context(world_a.schema):
        entry = AuditEntry.objects.order_by("-id").first()
    assert entry is not None
    assert entry.request_id == "trace-77"
    assert entry.ip == "127.0.0.1"


def test_members_without_audit_permission_get_403(user_a, lead_a, world_a):
    # given
    _entries(world_a)
    # when
    as_user = user_a.get("/api/v1/audit")
    as_lead = lead_a.get("/api/v1/audit")
    # then
    assert as_user.status_code == 403
    assert as_user.json()["error"]["details"] == {"permission": "read:audit"}
    assert as_lead.status_code == 403


def test_audit_log_is_append_only_in_the_database(world_a):
    # given
    entry = _entries(world_a, count=1)[0]
    with schema_context(world_a.schema):
        # when / then
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            AuditEntry.objects.filter(pk=entry.pk).update(action="tampered")
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            AuditEntry.objects.filter(pk=entry.pk).delete()
        assert AuditEntry.objects.get(pk=entry.pk).action == "thing.created"


def test_audit_pagination_limits(admin_a, world_a):
    # given
    _entries(world_a)
    # when
    page = admin_a.get("/api/v1/audit", target_type="thing", offset=1, limit=1)
    too_big = admin_a.get("/api/v1/audit", limit=101)
    # then
    assert page.json()["total"] == 3
    assert page.json()["offset"] == 1
    assert page.json()["limit"] == 1
    assert len(page.json()["items"]) == 1
    assert too_big.status_code == 422
    assert too_big.json()["error"]["details"][0]["field"] == "limit"
