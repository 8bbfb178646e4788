import json
from collections.abc import Callable
from typing import Any

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from eventlog.models import AuditEntry, OutboxEvent
from tickets.models import CustomField, Project, Ticket


def in_schema(world, fn: Callable[[], Any]) -> Any:
    with schema_context(world.schema):
        result = fn()
    connection.set_schema_to_public()
    return result


def field_body(world, name: str, **overrides) -> dict:
    field = in_schema(world, lambda: CustomField.objects.get(name=name))
    body = {
        "id": field.pk,
        "name": field.name,
        "type": field.type,
        "description": field.description,
        "options": field.options,
        "created_at": json.loads(json.dumps(field.created_at, cls=DjangoJSONEncoder)),
    }
    body.update(overrides)
    return body


def fields_in(world) -> list[tuple[str, str, list]]:
    return in_schema(
        world,
        lambda: list(CustomField.objects.order_by("name").values_list("name", "type", "options")),
    )


def field_audits(world) -> list[str]:
    entries = AuditEntry.objects.filter(target_type="custom_field").order_by("id")
    return in_schema(world, lambda: list(entries.values_list("action", flat=True)))


def custom_values(world) -> dict[str, dict]:
    return in_schema(
        world, lambda: dict(Ticket.objects.order_by("key").values_list("key", "custom_fields"))
    )


def test_admin_creates_a_select_field(admin_a, world_a):
    # when
    response = admin_a.post(
        "/api/v1/custom-fields",
        {
            "name": " Environment ",
            "type": "select",
            "description": "Where it happened",
            "options": ["prod", " staging ", "dev"],
        },
    )
    # then
    assert response.status_code == 201, response.content
    body = field_body(world_a, "Environment")
    assert response.json() == body
    assert body["options"] == ["prod", "staging", "dev"]
    assert body["description"] == "Where it happened"
    assert response["Location"] == f"/api/v1/custom-fields/{body['id']}"
    entry = in_schema(world_a, lambda: AuditEntry.objects.get(action="custom_field.created"))
    assert entry.changes == {
        "name": [None, "Environment"],
        "type": [None, "select"],
        "options": [None, ["prod", "staging", "dev"]],
    }
    event = in_schema(world_a, lambda: OutboxEvent.objects.get(kind="custom_field.created"))
    assert event.payload == {"name": "Environment", "type": "select"}


def test_fields_are_listed_and_read_by_every_member(user_a, world_a, project_a):
    # when
    listed = user_a.get("/api/v1/custom-fields")
    severity = field_body(world_a, "Severity")
    one = user_a.get(f"/api/v1/custom-fields/{severity['id']}")
    # then
    assert listed.json() == {
        "items": [field_body(world_a, "Customer"), severity],
        "total": 2,
        "offset": 0,
        "limit": 50,
    }
    assert one.json() == severity


@pytest.mark.parametrize("ref", ["999999999", "0", "99999999999999999999"])
def test_unknown_fields_answer_404(admin_a, ref):
    # when
    got = admin_a.get(f"/api/v1/custom-fields/{ref}")
    put = admin_a.put(f"/api/v1/custom-fields/{ref}", {"name": "x"})
    deleted = admin_a.delete(f"/api/v1/custom-fields/{ref}")
    # then
    assert [got.status_code, put.status_code, deleted.status_code] == [404, 404, 404]


@pytest.mark.parametrize(
    ("body", "details"),
    [
        (
            {"name": "Env", "type": "select"},
            [{"field": "options", "message": "A select field needs at least one option."}],
        ),
        (
            {"name": "Env", "type": "multiselect", "options": ["a", "B", "b"]},
            [{"field": "options.2", "message": "Option 'b' is listed twice."}],
        ),
        (
            {"name": "Env", "type": "text", "options": ["a"]},
            [{"field": "options", "message": "Only select and multiselect fields have options."}],
        ),
    ],
    ids=["select-without-options", "duplicate-options", "options-on-text"],
)
def test_invalid_fields_are_refused(admin_a, world_a, body, details):
    # when
    response = admin_a.post("/api/v1/custom-fields", body)
    # then
    assert response.status_code == 422
    assert response.json()["error"]["details"] == details
    assert fields_in(world_a) == []
    assert field_audits(world_a) == []


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Env", "type": "colour"},
        {"name": "", "type": "text"},
        {"name": "Env", "type": "select", "options": [""]},
        {"name": "Env", "type": "select", "options": ["a\x00"]},
        {"name": "x" * 101, "type": "text"},
    ],
    ids=["unknown-type", "blank-name", "blank-option", "nul-option", "long-name"],
)
def test_malformed_fields_are_422(admin_a, world_a, body):
    # when
    response = admin_a.post("/api/v1/custom-fields", body)
    # then
    assert response.status_code == 422
    assert fields_in(world_a) == []


def test_names_are_unique_in_any_case(admin_a, world_a, project_a):
    # when
    response = admin_a.post("/api/v1/custom-fields", {"name": "SEVERITY", "type": "text"})
    severity = field_body(world_a, "Severity")
    renamed = admin_a.put(f"/api/v1/custom-fields/{severity['id']}", {"name": "customer"})
    # then
    assert response.status_code == renamed.status_code == 409
    assert response.json()["error"] == {
        "code": "custom_field_name_taken",
        "message": "A custom field named 'SEVERITY' already exists.",
        "details": {"name": "SEVERITY"},
    }
    assert fields_in(world_a) == [
        ("Customer", "text", []),
        ("Severity", "select", ["S1", "S2", "S3"]),
    ]


@pytest.mark.parametrize("who", ["lead_a", "user_a"])
def test_only_tenant_admins_write_fields(request, world_a, project_a, who):
    # given
    api = request.getfixturevalue(who)
    severity = field_body(world_a, "Severity")
    # when
    created = api.post("/api/v1/custom-fields", {"name": "Env", "type": "text"})
    updated = api.put(f"/api/v1/custom-fields/{severity['id']}", {"name": "Sev"})
    deleted = api.delete(f"/api/v1/custom-fields/{severity['id']}")
    # then
    assert [created.status_code, updated.status_code, deleted.status_code] == [403, 403, 403]
    assert fields_in(world_a) == [
        ("Customer", "text", []),
        ("Severity", "select", ["S1", "S2", "S3"]),
    ]
    assert field_audits(world_a) == []


def test_admin_renames_a_field_and_changes_unused_options(admin_a, world_a, project_a, make_ticket):
    # given a ticket holding S1
    make_ticket(custom_fields={"Severity": "S1"})
    severity = field_body(world_a, "Severity")
    # when
    response = admin_a.put(
        f"/api/v1/custom-fields/{severity['id']}",
        {"name": "Impact", "type": "select", "options": ["S1", "S2", "S4"]},
    )
    # then
    assert response.status_code == 200, response.content
    assert response.json() == field_body(world_a, "Impact")
    assert response.json()["options"] == ["S1", "S2", "S4"]
    entry = in_schema(world_a, lambda: AuditEntry.objects.get(action="custom_field.updated"))
    assert entry.changes == {
        "name": ["Severity", "Impact"],
        "options": [["S1", "S2", "S3"], ["S1", "S2", "S4"]],
    }
    ticket = admin_a.get("/api/v1/tickets/CORE-1").json()
    assert ticket["custom_fields"] == {"Impact": "S1"}


def test_options_in_use_cannot_be_removed(admin_a, world_a, project_a, make_ticket):
    # given
    make_ticket(custom_fields={"Severity": "S1"})
    make_ticket(custom_fields={"Severity": "S1"})
    make_ticket(custom_fields={"Severity": "S2"})
    severity = field_body(world_a, "Severity")
    # when
    response = admin_a.put(f"/api/v1/custom-fields/{severity['id']}", {"options": ["S3", "s4"]})
    # then
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "option_in_use",
        "message": "Tickets hold options you removed: S1 (2), S2 (1).",
        "details": {
            "options": [{"option": "S1", "ticket_count": 2}, {"option": "S2", "ticket_count": 1}]
        },
    }
    assert field_body(world_a, "Severity")["options"] == ["S1", "S2", "S3"]
    assert field_audits(world_a) == []


def test_multiselect_options_in_use_cannot_be_removed(admin_a, world_a, project_a, make_ticket):
    # given
    def given():
        field = CustomField.objects.create(
            name="Platforms", type="multiselect", options=["ios", "android", "web"]
        )
        Project.objects.get(key="CORE").custom_fields.add(field)
        return field

    platforms = in_schema(world_a, given)
    make_ticket(custom_fields={"Platforms": ["ios", "web"]})
    # when
    refused = admin_a.put(f"/api/v1/custom-fields/{platforms.pk}", {"options": ["ios"]})
    allowed = admin_a.put(f"/api/v1/custom-fields/{platforms.pk}", {"options": ["ios", "web"]})
    # then
    assert refused.status_code == 409
    assert refused.json()["error"]["details"] == {"options": [{"option": "web", "ticket_count": 1}]}
    assert allowed.status_code == 200
    assert allowed.json()["options"] == ["ios", "web"]


def test_the_type_of_a_field_cannot_change(admin_a, world_a, project_a):
    # given
    customer = field_body(world_a, "Customer")
    # when
    response = admin_a.put(f"/api/v1/custom-fields/{customer['id']}", {"type": "number"})
    # then
    assert response.status_code == 422
    assert response.json()["error"]["details"] == [
        {"field": "type", "message": "The type of a field cannot change (it is text)."}
    ]
    assert field_body(world_a, "Customer")["type"] == "text"


def test_deleting_a_field_removes_its_values_from_tickets_in_one_update(
    admin_a, world_a, project_a, make_ticket
):
    # given
    make_ticket(custom_fields={"Severity": "S1", "Customer": "Globex"})
    make_ticket(custom_fields={"Customer": "Initech"})
    make_ticket()
    severity = field_body(world_a, "Severity")
    customer_id = str(field_body(world_a, "Customer")["id"])
    # when
    with CaptureQueriesContext(connection) as queries:
        response = admin_a.delete(f"/api/v1/custom-fields/{severity['id']}")
    # then
    assert response.status_code == 204
    ticket_writes = [
        q["sql"]
        for q in queries
        if q["sql"].replace('"', "").startswith(("UPDATE tickets_ticket ", "INSERT", "DELETE"))
        and "tickets_ticket" in q["sql"].replace('"', "").split()[:3]
    ]
    assert ticket_writes == [
        f"UPDATE tickets_ticket SET custom_fields = custom_fields - '{severity['id']}'::text "
        f"WHERE custom_fields ? '{severity['id']}'::text"
    ]
    assert custom_values(world_a) == {
        "CORE-1": {customer_id: "Globex"},
        "CORE-2": {customer_id: "Initech"},
        "CORE-3": {},
    }
    assert fields_in(world_a) == [("Customer", "text", [])]
    entry = in_schema(world_a, lambda: AuditEntry.objects.get(action="custom_field.deleted"))
    assert entry.changes == {
        "name": ["Severity", None],
        "type": ["select", None],
        "projects": [["CORE"], None],
        "tickets_with_value": [1, 0],
    }
    event = in_schema(world_a, lambda: OutboxEvent.objects.get(kind="custom_field.deleted"))
    assert event.payload == {"name": "Severity", "projects": ["CORE"], "tickets_cleared": 1}
    settings = admin_a.get("/api/v1/projects/CORE/settings").json()
    assert settings["custom_fields"] == ["Customer"]


def test_a_field_is_enabled_per_project_through_settings(admin_a, world_a, project_a):
    # given a field no project uses yet
    created = admin_a.post(
        "/api/v1/custom-fields", {"name": "Points", "type": "number", "description": ""}
    )
    # when
    enabled = admin_a.put(
        "/api/v1/projects/CORE/settings",
        {"custom_fields": ["Severity", "Customer", created.json()["id"]]},
    )
    ticket = admin_a.post(
        "/api/v1/projects/CORE/tickets", {"summary": "x", "custom_fields": {"points": "2.5"}}
    )
    # then
    assert enabled.json()["custom_fields"] == ["Customer", "Points", "Severity"]
    assert ticket.status_code == 201, ticket.content
    assert ticket.json()["custom_fields"] == {"Points": 2.5}
