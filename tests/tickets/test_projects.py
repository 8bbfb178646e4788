import json
from collections.abc import Callable
from typing import Any

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django_tenants.utils import schema_context

from accounts.members.models import Membership
from eventlog.models import AuditEntry, IdempotencyRecord, OutboxEvent
from tickets.models import (
    Component,
    CustomField,
    IssueType,
    Project,
    ProjectMember,
    Ticket,
    Version,
)

ALL_ISSUE_TYPES = ["Epic", "Story", "Task", "Bug", "Sub-task"]


def in_schema(world, fn: Callable[[], Any]) -> Any:
    with schema_context(world.schema):
        result = fn()
    connection.set_schema_to_public()
    return result


def ts(value) -> str:
    """A datetime as the API renders it."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def person(user) -> dict:
    return {"id": user.pk, "username": user.username, "display_name": user.name}


def project_body(world, key: str, **overrides) -> dict:
    project = in_schema(world, lambda: Project.objects.get(key=key))
    body = {
        "id": project.pk,
        "key": project.key,
        "name": project.name,
        "description": project.description,
        "type": project.type,
        "lead": None,
        "owner": None,
        "is_private": project.is_private,
        "is_archived": project.is_archived,
        "ticket_count": 0,
        "created_at": ts(project.created_at),
        "updated_at": ts(project.updated_at),
    }
    body.update(overrides)
    return body


def members_of(world, key: str) -> list[tuple[str, str]]:
    return in_schema(
        world,
        lambda: list(
            ProjectMember.objects.filter(project__key=key)
            .order_by("user__username")
            .values_list("user__username", "role")
        ),
    )


def project_keys(world) -> list[str]:
    return in_schema(world, lambda: list(Project.objects.values_list("key", flat=True)))


def audit_actions(world) -> list[str]:
    """Audited actions on projects, tickets and custom fields, oldest first."""
    entries = AuditEntry.objects.filter(target_type__in=["project", "ticket", "custom_field"])
    return in_schema(world, lambda: list(entries.order_by("id").values_list("action", flat=True)))


# Listing ---------------------------------------------------------------------------------


def test_list_shows_only_visible_projects_with_lead_owner_and_ticket_count(
    user_a, admin_a, world_a, project_a, private_project_a, make_ticket
):
    # given two tickets in CORE and a private project the user is not a member of
    make_ticket()
    make_ticket()
    # when
    as_user = user_a.get("/api/v1/projects")
    as_admin = admin_a.get("/api/v1/projects")
    # then
    assert as_user.status_code == 200
    assert as_user.json() == {
        "items": [
            project_body(
                world_a,
                "CORE",
                lead=person(world_a.lead),
                owner=person(world_a.admin),
                ticket_count=2,
            )
        ],
        "total": 1,
        "offset": 0,
        "limit": 50,
    }
    assert [p["key"] for p in as_admin.json()["items"]] == ["CORE", "SECRET"]


def test_members_of_a_private_project_see_it(lead_a, private_project_a):
    # when
    response = lead_a.get("/api/v1/projects")
    # then
    assert [p["key"] for p in response.json()["items"]] == ["SECRET"]


def test_list_filters_by_words_archived_and_type(admin_a, world_a):
    # given
    def given():
        Project.objects.create(key="WEB", name="Website")
        Project.objects.create(key="OLD", name="Old website", is_archived=True)
        Project.objects.create(key="HR", name="People", type="business")

    in_schema(world_a, given)
    # when
    words = admin_a.get("/api/v1/projects", q="website")
    by_key = admin_a.get("/api/v1/projects", q="hr")
    archived = admin_a.get("/api/v1/projects", archived="true")
    active = admin_a.get("/api/v1/projects", archived="false")
    business = admin_a.get("/api/v1/projects", type="business")
    bad_type = admin_a.get("/api/v1/projects", type="kanban")
    # then
    assert [p["key"] for p in words.json()["items"]] == ["OLD", "WEB"]
    assert [p["key"] for p in by_key.json()["items"]] == ["HR"]
    assert [p["key"] for p in archived.json()["items"]] == ["OLD"]
    assert [p["key"] for p in active.json()["items"]] == ["HR", "WEB"]
    assert [p["key"] for p in business.json()["items"]] == ["HR"]
    assert bad_type.status_code == 422


def test_list_query_count_does_not_grow_with_projects(
    user_a, world_a, make_ticket, django_assert_num_queries
):
    # given CORE and eight projects with leads, owners and tickets, one private with the
    # user in it
    def given():
        for n in range(8):
            project = Project.objects.create(
                key=f"P{n}",
                name=f"Project {n}",
                lead=world_a.lead,
                owner=world_a.admin,
                is_private=n == 7,
            )
            if n == 7:
                ProjectMember.objects.create(project=project, user=world_a.user)
        return Project.objects.get(key="P3")

    p3 = in_schema(world_a, given)
    make_ticket(project=p3)
    # when: SET search_path public, tenant lookup, SET search_path alpha, the caller's
    # membership, then count and the page (leads, owners and ticket counts joined in)
    with django_assert_num_queries(6):
        response = user_a.get("/api/v1/projects")
    # then
    assert response.status_code == 200
    assert response.json()["total"] == 9
    assert [(p["key"], p["ticket_count"]) for p in response.json()["items"]][:5] == [
        ("CORE", 0),
        ("P0", 0),
        ("P1", 0),
        ("P2", 0),
        ("P3", 1),
    ]


# Creating ---------------------------------------------------------------------------------


def test_project_lead_creates_a_project_and_becomes_its_admin(lead_a, world_a):
    # when
    response = lead_a.post(
        "/api/v1/projects",
        {"key": "mob", "name": "Mobile app", "description": "iOS and Android"},
    )
    # then
    assert response.status_code == 201, response.content
    assert response["Location"] == "/api/v1/projects/MOB"
    assert response.json() == project_body(
        world_a, "MOB", lead=person(world_a.lead), owner=person(world_a.lead)
    )
    assert response.json()["description"] == "iOS and Android"
    assert members_of(world_a, "MOB") == [("lead_alpha", "ADMIN")]

    def enabled():
        project = Project.objects.get(key="MOB")
        return list(project.issue_types.order_by("order").values_list("name", flat=True))

    assert in_schema(world_a, enabled) == ALL_ISSUE_TYPES
    entry = in_schema(world_a, lambda: AuditEntry.objects.get(action="project.created"))
    assert entry.target_id == "MOB"
    assert entry.changes == {
        "key": [None, "MOB"],
        "name": [None, "Mobile app"],
        "type": [None, "software"],
        "lead": [None, "lead_alpha"],
        "is_private": [None, False],
    }
    event = in_schema(world_a, lambda: OutboxEvent.objects.get(kind="project.created"))
    assert event.payload == {"key": "MOB"}


def test_admin_creates_a_project_led_by_someone_else(admin_a, world_a):
    # when
    response = admin_a.post(
        "/api/v1/projects",
        {"key": "Ops2", "name": "Ops", "type": "business", "lead": "user@alpha.test"},
    )
    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["key"] == "OPS2"
    assert body["type"] == "business"
    assert body["lead"] == person(world_a.user)
    assert body["owner"] == person(world_a.admin)
    assert members_of(world_a, "OPS2") == [("admin", "ADMIN"), ("user_alpha", "ADMIN")]


@pytest.mark.parametrize(
    "key",
    ["A", "ABCDEFGHIJK", "1AB", "AB-C", "AB C", "ÄB", "", "_AB"],
    ids=["too-short", "too-long", "digit-first", "dash", "space", "non-ascii", "empty", "symbol"],
)
def test_bad_keys_are_refused_with_the_rule(admin_a, world_a, key):
    # when
    response = admin_a.post("/api/v1/projects", {"key": key, "name": "Anything"})
    # then
    assert response.status_code == 422
    assert response.json()["error"]["details"] == [
        {
            "field": "key",
            "message": "A project key is 2-10 characters, letters A-Z and digits, "
            "starting with a letter.",
        }
    ]
    assert project_keys(world_a) == []
    assert audit_actions(world_a) == []


def test_keys_of_two_and_ten_characters_with_digits_are_accepted(admin_a, world_a):
    # when
    short = admin_a.post("/api/v1/projects", {"key": "q1", "name": "Short"})
    long = admin_a.post("/api/v1/projects", {"key": "ABCDE12345", "name": "Long"})
    # then
    assert (short.status_code, long.status_code) == (201, 201)
    assert project_keys(world_a) == ["ABCDE12345", "Q1"]


def test_a_key_taken_in_any_case_is_a_conflict(admin_a, world_a, project_a):
    # when
    response = admin_a.post("/api/v1/projects", {"key": "core", "name": "Another core"})
    # then
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "project_key_taken",
        "message": "A project with key CORE already exists.",
        "details": {"key": "CORE"},
    }
    assert in_schema(world_a, lambda: Project.objects.get().name) == "Core platform"
    assert audit_actions(world_a) == []


def test_a_user_cannot_create_a_project(user_a, world_a):
    # when
    response = user_a.post("/api/v1/projects", {"key": "MINE", "name": "Mine"})
    # then
    assert response.status_code == 403
    assert project_keys(world_a) == []
    assert in_schema(world_a, lambda: ProjectMember.objects.count()) == 0


def test_the_lead_must_be_an_active_member(admin_a, world_a, world_b):
    # given a deactivated member
    in_schema(world_a, lambda: Membership.objects.filter(user=world_a.user).update(is_active=False))
    # when
    stranger = admin_a.post("/api/v1/projects", {"key": "AA", "name": "A", "lead": world_b.user.pk})
    inactive = admin_a.post("/api/v1/projects", {"key": "AB", "name": "A", "lead": "user_alpha"})
    # then
    assert stranger.status_code == inactive.status_code == 422
    assert stranger.json()["error"]["details"] == [
        {
            "field": "lead",
            "message": f"{world_b.user.pk} is not an active member of this workspace.",
        }
    ]
    assert inactive.json()["error"]["details"] == [
        {"field": "lead", "message": "'user_alpha' is not an active member of this workspace."}
    ]
    assert project_keys(world_a) == []


def test_invalid_fields_are_listed_together(admin_a, world_a):
    # when
    response = admin_a.post("/api/v1/projects", {"key": "9", "name": "Fine", "lead": "nobody"})
    blank = admin_a.post("/api/v1/projects", {"key": "OK", "name": "   "})
    bad_type = admin_a.post("/api/v1/projects", {"key": "OK", "name": "x", "type": "kanban"})
    # then
    assert response.status_code == blank.status_code == bad_type.status_code == 422
    assert [d["field"] for d in response.json()["error"]["details"]] == ["key", "lead"]
    assert [d["field"] for d in blank.json()["error"]["details"]] == ["name"]
    assert [d["field"] for d in bad_type.json()["error"]["details"]] == ["type"]
    assert project_keys(world_a) == []


def test_nul_characters_and_unknown_fields_are_refused(admin_a, world_a):
    # when
    nul = admin_a.post("/api/v1/projects", {"key": "NUL", "name": "a\x00b"})
    unknown = admin_a.post("/api/v1/projects", {"key": "UNK", "name": "x", "colour": "red"})
    # then
    assert nul.status_code == unknown.status_code == 422
    assert project_keys(world_a) == []


def test_idempotent_create_returns_the_first_project_on_retry(admin_a, world_a):
    # when
    headers = {"Idempotency-Key": "project-1"}
    first = admin_a.post("/api/v1/projects", {"key": "IDEM", "name": "Once"}, headers=headers)
    retry = admin_a.post("/api/v1/projects", {"key": "IDEM", "name": "Once"}, headers=headers)
    # then
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert project_keys(world_a) == ["IDEM"]
    assert in_schema(world_a, lambda: IdempotencyRecord.objects.count()) == 1


# Reading one -----------------------------------------------------------------------------


def test_get_a_project_by_id_or_key(user_a, world_a, project_a, make_ticket):
    # given
    make_ticket()
    expected = project_body(
        world_a, "CORE", lead=person(world_a.lead), owner=person(world_a.admin), ticket_count=1
    )
    # when
    by_key = user_a.get("/api/v1/projects/core")
    by_id = user_a.get(f"/api/v1/projects/{project_a.pk}")
    # then
    assert by_key.status_code == by_id.status_code == 200
    assert by_key.json() == by_id.json() == expected


@pytest.mark.parametrize(
    "ref", ["NOPE", "999999", "0", "99999999999999999999999", "C%C3%96RE", "%C2%B2", "A%00B"]
)
def test_unknown_project_refs_answer_404(admin_a, project_a, ref):
    # when
    response = admin_a.get(f"/api/v1/projects/{ref}")
    # then
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "project_not_found"


def test_a_private_project_is_404_for_non_members(user_a, world_a, private_project_a):
    # when
    responses = [
        user_a.get("/api/v1/projects/SECRET"),
        user_a.put("/api/v1/projects/SECRET", {"name": "Mine now"}),
        user_a.delete("/api/v1/projects/SECRET"),
        user_a.get("/api/v1/projects/SECRET/members"),
        user_a.post("/api/v1/projects/SECRET/members", {"user": "user_alpha"}),
        user_a.get("/api/v1/projects/SECRET/settings"),
        user_a.put("/api/v1/projects/SECRET/settings", {"components": []}),
    ]
    # then
    assert [r.status_code for r in responses] == [404] * 7
    assert "Secret plans" not in "".join(r.content.decode() for r in responses)
    assert in_schema(world_a, lambda: Project.objects.get().name) == "Secret plans"
    assert members_of(world_a, "SECRET") == [("lead_alpha", "ADMIN")]


# Editing ---------------------------------------------------------------------------------


def test_the_project_lead_edits_the_project(lead_a, world_a, project_a):
    # when
    response = lead_a.put(
        "/api/v1/projects/CORE",
        {
            "key": "core",
            "name": "Core services",
            "description": "The backend",
            "type": "business",
            "lead": "user_alpha",
            "is_private": True,
        },
    )
    # then
    assert response.status_code == 200, response.content
    assert response.json() == project_body(
        world_a,
        "CORE",
        lead=person(world_a.user),
        owner=person(world_a.admin),
    )
    assert response.json()["name"] == "Core services"
    assert response.json()["is_private"] is True
    assert members_of(world_a, "CORE") == [("user_alpha", "ADMIN")]
    entry = in_schema(world_a, lambda: AuditEntry.objects.get(action="project.updated"))
    assert entry.changes == {
        "name": ["Core platform", "Core services"],
        "description": ["", "The backend"],
        "type": ["software", "business"],
        "lead": ["lead_alpha", "user_alpha"],
        "is_private": [False, True],
    }
    event = in_schema(world_a, lambda: OutboxEvent.objects.get(kind="project.updated"))
    assert event.payload == {
        "key": "CORE",
        "fields": ["description", "is_private", "lead", "name", "type"],
    }


def test_an_edit_changing_nothing_writes_nothing(admin_a, world_a, project_a):
    # when
    response = admin_a.put("/api/v1/projects/CORE", {"name": "Core platform"})
    # then
    assert response.status_code == 200
    assert audit_actions(world_a) == []


def test_archiving_makes_tickets_read_only(admin_a, world_a, project_a):
    # when
    archived = admin_a.put("/api/v1/projects/CORE", {"is_archived": True})
    ticket = admin_a.post("/api/v1/projects/CORE/tickets", {"summary": "late"})
    # then
    assert archived.json()["is_archived"] is True
    assert ticket.status_code == 403
    assert in_schema(world_a, lambda: Ticket.objects.count()) == 0


def test_the_key_cannot_change(admin_a, world_a, project_a):
    # when
    response = admin_a.put("/api/v1/projects/CORE", {"key": "CORE2", "name": "Renamed"})
    # then
    assert response.status_code == 422
    assert response.json()["error"]["details"] == [
        {"field": "key", "message": "The key of a project cannot be changed (CORE)."}
    ]
    assert project_keys(world_a) == ["CORE"]
    assert in_schema(world_a, lambda: Project.objects.get().name) == "Core platform"


def test_a_project_needs_an_active_lead(admin_a, world_a, project_a):
    # when
    cleared = admin_a.put("/api/v1/projects/CORE", {"lead": None})
    unknown = admin_a.put("/api/v1/projects/CORE", {"lead": "ghost"})
    # then
    assert cleared.json()["error"]["details"] == [
        {"field": "lead", "message": "A project needs a lead."}
    ]
    assert unknown.json()["error"]["details"] == [
        {"field": "lead", "message": "'ghost' is not an active member of this workspace."}
    ]
    assert in_schema(world_a, lambda: Project.objects.get().lead_id) == world_a.lead.pk


def test_a_user_cannot_edit_a_project(user_a, world_a, project_a):
    # when
    response = user_a.put("/api/v1/projects/CORE", {"name": "Hijacked", "is_archived": True})
    # then
    assert response.status_code == 403
    project = in_schema(world_a, lambda: Project.objects.get())
    assert (project.name, project.is_archived) == ("Core platform", False)
    assert audit_actions(world_a) == []


# Deleting --------------------------------------------------------------------------------


def test_admin_deletes_an_empty_project(admin_a, world_a, project_a):
    # when
    response = admin_a.delete("/api/v1/projects/CORE")
    # then
    assert response.status_code == 204
    assert project_keys(world_a) == []
    entry = in_schema(world_a, lambda: AuditEntry.objects.get(action="project.deleted"))
    assert entry.changes == {
        "key": ["CORE", None],
        "name": ["Core platform", None],
        "ticket_count": [0, 0],
    }


def test_deleting_a_project_with_tickets_needs_its_key_as_confirmation(
    admin_a, world_a, project_a, make_ticket
):
    # given
    make_ticket()
    make_ticket()
    # when
    unconfirmed = admin_a.delete("/api/v1/projects/CORE")
    wrong = admin_a.delete("/api/v1/projects/CORE", confirm="OPS")
    # then
    assert unconfirmed.status_code == wrong.status_code == 409
    assert unconfirmed.json()["error"] == {
        "code": "confirmation_required",
        "message": "CORE has 2 tickets; to delete them with the project, send confirm=CORE.",
        "details": {"ticket_count": 2, "confirm": "CORE"},
    }
    assert project_keys(world_a) == ["CORE"]
    assert in_schema(world_a, lambda: Ticket.objects.count()) == 2
    # when
    confirmed = admin_a.delete("/api/v1/projects/CORE", confirm="CORE")
    # then
    assert confirmed.status_code == 204
    assert project_keys(world_a) == []
    assert in_schema(world_a, lambda: Ticket.objects.count()) == 0
    entry = in_schema(world_a, lambda: AuditEntry.objects.get(action="project.deleted"))
    assert entry.changes["ticket_count"] == [2, 0]
    event = in_schema(world_a, lambda: OutboxEvent.objects.get(kind="project.deleted"))
    assert event.payload == {"key": "CORE", "ticket_count": 2, "storage_keys": []}


def test_only_tenant_admins_delete_projects(lead_a, world_a, project_a, make_ticket):
    # given the tenant's project lead, who also leads CORE
    make_ticket()
    # when
    response = lead_a.delete("/api/v1/projects/CORE", confirm="CORE")
    # then
    assert response.status_code == 403
    assert project_keys(world_a) == ["CORE"]
    assert in_schema(world_a, lambda: Ticket.objects.count()) == 1
    assert "project.deleted" not in audit_actions(world_a)


# Members ---------------------------------------------------------------------------------


@pytest.fixture
def core_members(world_a, project_a):
    def given():
        ProjectMember.objects.create(project=project_a, user=world_a.lead, role="ADMIN")
        ProjectMember.objects.create(project=project_a, user=world_a.user, role="VIEWER")

    in_schema(world_a, given)


def test_members_are_listed_by_username_with_their_roles(
    user_a, world_a, core_members, django_assert_num_queries
):
    # given
    added = in_schema(
        world_a,
        lambda: dict(
            ProjectMember.objects.filter(project__key="CORE").values_list("user_id", "added_at")
        ),
    )
    # when: search_path, tenant, search_path, membership, project, count, page with users
    with django_assert_num_queries(7):
        response = user_a.get("/api/v1/projects/CORE/members")
    # then
    assert response.status_code == 200
    assert response.json() == {
        "items": [
            {
                "user": person(world_a.lead),
                "role": "ADMIN",
                "added_at": ts(added[world_a.lead.pk]),
            },
            {
                "user": person(world_a.user),
                "role": "VIEWER",
                "added_at": ts(added[world_a.user.pk]),
            },
        ],
        "total": 2,
        "offset": 0,
        "limit": 50,
    }


def test_project_admin_adds_a_member_by_email(lead_a, world_a, core_members):
    # when
    response = lead_a.post(
        "/api/v1/projects/CORE/members", {"user": "ADMIN@alpha.test", "role": "DEVELOPER"}
    )
    # then
    assert response.status_code == 201, response.content
    assert response.json()["user"] == person(world_a.admin)
    assert response.json()["role"] == "DEVELOPER"
    assert members_of(world_a, "CORE") == [
        ("admin", "DEVELOPER"),
        ("lead_alpha", "ADMIN"),
        ("user_alpha", "VIEWER"),
    ]
    entry = in_schema(world_a, lambda: AuditEntry.objects.get(action="project.member_added"))
    assert entry.changes == {"member.admin": [None, "DEVELOPER"]}


def test_adding_refuses_strangers_existing_members_and_non_admins(
    lead_a, user_a, world_a, world_b, core_members
):
    # when
    stranger = lead_a.post("/api/v1/projects/CORE/members", {"user": world_b.admin.pk})
    existing = lead_a.post("/api/v1/projects/CORE/members", {"user": "user_alpha"})
    bad_role = lead_a.post("/api/v1/projects/CORE/members", {"user": "admin", "role": "X"})
    not_admin = user_a.post("/api/v1/projects/CORE/members", {"user": "admin"})
    # then
    assert stranger.status_code == 422
    assert stranger.json()["error"]["details"] == [
        {
            "field": "user",
            "message": f"{world_b.admin.pk} is not an active member of this workspace.",
        }
    ]
    assert existing.status_code == 409
    assert existing.json()["error"]["code"] == "already_project_member"
    assert existing.json()["error"]["details"] == {"role": "VIEWER"}
    assert bad_role.status_code == 422
    assert not_admin.status_code == 403
    assert members_of(world_a, "CORE") == [("lead_alpha", "ADMIN"), ("user_alpha", "VIEWER")]


def test_changing_roles_keeps_an_administrator(lead_a, world_a, core_members):
    # when
    promoted = lead_a.put(f"/api/v1/projects/CORE/members/{world_a.user.pk}", {"role": "ADMIN"})
    demoted = lead_a.put(f"/api/v1/projects/CORE/members/{world_a.lead.pk}", {"role": "VIEWER"})
    last = lead_a.put(f"/api/v1/projects/CORE/members/{world_a.user.pk}", {"role": "DEVELOPER"})
    # then
    assert promoted.status_code == demoted.status_code == 200
    assert promoted.json()["role"] == "ADMIN"
    assert last.status_code == 409
    assert last.json()["error"] == {
        "code": "last_project_admin",
        "message": "Cannot demote user_alpha: CORE needs at least one administrator.",
        "details": None,
    }
    assert members_of(world_a, "CORE") == [("lead_alpha", "VIEWER"), ("user_alpha", "ADMIN")]


def test_removing_members(admin_a, world_a, core_members):
    # given the user is the only project admin apart from the lead
    def given():
        ProjectMember.objects.filter(user=world_a.user).update(role="ADMIN")
        ProjectMember.objects.create(
            project=Project.objects.get(key="CORE"), user=world_a.admin, role="DEVELOPER"
        )

    in_schema(world_a, given)
    # when
    removed = admin_a.delete(f"/api/v1/projects/CORE/members/{world_a.admin.pk}")
    lead = admin_a.delete(f"/api/v1/projects/CORE/members/{world_a.lead.pk}")
    not_member = admin_a.delete(f"/api/v1/projects/CORE/members/{world_a.admin.pk}")
    # then
    assert removed.status_code == 204
    assert lead.status_code == 409
    assert lead.json()["error"]["code"] == "project_lead"
    assert not_member.status_code == 404
    assert members_of(world_a, "CORE") == [("lead_alpha", "ADMIN"), ("user_alpha", "ADMIN")]
    entry = in_schema(world_a, lambda: AuditEntry.objects.get(action="project.member_removed"))
    assert entry.changes == {"member.admin": ["DEVELOPER", None]}


def test_the_last_project_admin_cannot_be_removed(admin_a, world_a, project_a):
    # given a project led by the lead whose only administrator is the user
    def given():
        ProjectMember.objects.create(project=project_a, user=world_a.user, role="ADMIN")
        ProjectMember.objects.create(project=project_a, user=world_a.admin, role="VIEWER")

    in_schema(world_a, given)
    # when
    response = admin_a.delete(f"/api/v1/projects/CORE/members/{world_a.user.pk}")
    # then
    assert response.status_code == 409
    assert response.json()["error"]["message"] == (
        "Cannot remove user_alpha: CORE needs at least one administrator."
    )
    assert members_of(world_a, "CORE") == [("admin", "VIEWER"), ("user_alpha", "ADMIN")]
    assert audit_actions(world_a) == []


def test_a_viewer_cannot_remove_members(user_a, world_a, core_members):
    # when
    response = user_a.delete(f"/api/v1/projects/CORE/members/{world_a.lead.pk}")
    # then
    assert response.status_code == 403
    assert members_of(world_a, "CORE") == [("lead_alpha", "ADMIN"), ("user_alpha", "VIEWER")]


# Settings --------------------------------------------------------------------------------


def _settings_ids(world):
    def read():
        return {
            "components": dict(Component.objects.values_list("name", "pk")),
            "versions": dict(Version.objects.values_list("name", "pk")),
        }

    return in_schema(world, read)


def test_settings_of_a_project(user_a, world_a, project_a):
    # given
    ids = _settings_ids(world_a)
    # when
    response = user_a.get("/api/v1/projects/CORE/settings")
    # then
    assert response.status_code == 200
    assert response.json() == {
        "default_assignee": None,
        "issue_types": [],
        "components": [
            {"id": ids["components"]["api"], "name": "api", "description": "", "lead": None},
            {"id": ids["components"]["ui"], "name": "ui", "description": "", "lead": None},
        ],
        "versions": [
            {
                "id": ids["versions"]["1.0"],
                "name": "1.0",
                "description": "",
                "release_date": None,
                "is_released": False,
                "is_archived": False,
            }
        ],
        "custom_fields": ["Customer", "Severity"],
    }


def test_settings_round_trip(lead_a, world_a, project_a):
    # given
    ids = _settings_ids(world_a)
    in_schema(world_a, lambda: CustomField.objects.create(name="Team", type="text"))
    task = in_schema(world_a, lambda: IssueType.objects.get(name="Task"))
    sent = {
        "default_assignee": "user_alpha",
        "issue_types": ["bug", "Task", task.pk],
        "components": [
            # api and ui swap names; "db" is new
            {"id": ids["components"]["api"], "name": "ui", "description": "front", "lead": None},
            {"id": ids["components"]["ui"], "name": "api", "lead": "lead_alpha"},
            {"name": "db", "description": "Postgres"},
        ],
        "versions": [
            {"name": "1.0", "release_date": "2026-03-01", "is_released": True},
            {"name": "2.0"},
        ],
        "custom_fields": ["severity", "TEAM"],
    }
    # when
    put = lead_a.put("/api/v1/projects/CORE/settings", sent)
    got = lead_a.get("/api/v1/projects/CORE/settings")
    # then
    assert put.status_code == 200, put.content
    assert put.json() == got.json()
    new = _settings_ids(world_a)
    assert got.json() == {
        "default_assignee": person(world_a.user),
        "issue_types": ["Task", "Bug"],
        "components": [
            {
                "id": ids["components"]["ui"],
                "name": "api",
                "description": "",
                "lead": person(world_a.lead),
            },
            {"id": new["components"]["db"], "name": "db", "description": "Postgres", "lead": None},
            {"id": ids["components"]["api"], "name": "ui", "description": "front", "lead": None},
        ],
        "versions": [
            {
                "id": ids["versions"]["1.0"],
                "name": "1.0",
                "description": "",
                "release_date": "2026-03-01",
                "is_released": True,
                "is_archived": False,
            },
            {
                "id": new["versions"]["2.0"],
                "name": "2.0",
                "description": "",
                "release_date": None,
                "is_released": False,
                "is_archived": False,
            },
        ],
        "custom_fields": ["Severity", "Team"],
    }
    entry = in_schema(world_a, lambda: AuditEntry.objects.get(action="project.settings_changed"))
    assert sorted(entry.changes) == [
        "components",
        "custom_fields",
        "default_assignee",
        "issue_types",
        "versions",
    ]
    assert entry.changes["issue_types"] == [[], ["Task", "Bug"]]
    assert entry.changes["custom_fields"] == [["Customer", "Severity"], ["Severity", "Team"]]
    assert entry.changes["default_assignee"] == [None, person(world_a.user)]
    event = in_schema(world_a, lambda: OutboxEvent.objects.get(kind="project.settings_changed"))
    assert event.payload["settings"] == sorted(entry.changes)


def test_settings_keys_not_sent_are_left_alone_and_components_left_out_are_deleted(
    admin_a, world_a, project_a
):
    # when
    response = admin_a.put("/api/v1/projects/CORE/settings", {"components": [{"name": "API"}]})
    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert [(c["name"]) for c in body["components"]] == ["API"]
    assert [v["name"] for v in body["versions"]] == ["1.0"]
    assert body["custom_fields"] == ["Customer", "Severity"]
    assert in_schema(world_a, lambda: list(Component.objects.values_list("name", flat=True))) == [
        "API"
    ]


def test_enabled_settings_drive_ticket_creation(admin_a, world_a, project_a):
    # given
    admin_a.put(
        "/api/v1/projects/CORE/settings",
        {"issue_types": ["Bug"], "default_assignee": "user_alpha", "custom_fields": []},
    )
    # when
    bug = admin_a.post("/api/v1/projects/CORE/tickets", {"summary": "b", "type": "Bug"})
    story = admin_a.post("/api/v1/projects/CORE/tickets", {"summary": "s", "type": "Story"})
    field = admin_a.post(
        "/api/v1/projects/CORE/tickets",
        {"summary": "c", "type": "Bug", "custom_fields": {"Severity": "S1"}},
    )
    # then
    assert bug.status_code == 201
    assert bug.json()["assignee"] == person(world_a.user)
    assert story.status_code == field.status_code == 422


def test_components_and_versions_in_use_are_not_deleted(admin_a, world_a, project_a, make_ticket):
    # given
    make_ticket(components=["api"], fix_versions=["1.0"])
    make_ticket(components=["api"])
    ids = _settings_ids(world_a)
    # when
    response = admin_a.put(
        "/api/v1/projects/CORE/settings",
        {"components": [{"name": "ui"}], "versions": [], "default_assignee": "user_alpha"},
    )
    # then
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "in_use",
        "message": "Tickets still use what you removed, so it was kept: "
        "components: api (2); versions: 1.0 (1).",
        "details": {
            "components": [{"id": ids["components"]["api"], "name": "api", "ticket_count": 2}],
            "versions": [{"id": ids["versions"]["1.0"], "name": "1.0", "ticket_count": 1}],
        },
    }
    assert _settings_ids(world_a) == ids
    assert in_schema(world_a, lambda: Project.objects.get().default_assignee_id) is None
    assert audit_actions(world_a) == ["ticket.created", "ticket.created"]


def test_invalid_settings_are_itemised_and_change_nothing(admin_a, world_a, project_a):
    # given
    ids = _settings_ids(world_a)
    # when
    response = admin_a.put(
        "/api/v1/projects/CORE/settings",
        {
            "default_assignee": "ghost",
            "issue_types": ["Saga", "Bug"],
            "components": [
                {"id": 999_999_999, "name": "x"},
                {"name": "dup", "lead": "nobody"},
                {"name": "DUP"},
            ],
            "versions": [{"name": "2.0"}, {"id": ids["versions"]["1.0"], "name": "2.0"}],
            "custom_fields": ["Nope"],
        },
    )
    empty = admin_a.put("/api/v1/projects/CORE/settings", {"issue_types": []})
    # then
    assert response.status_code == 422
    assert response.json()["error"]["details"] == [
        {
            "field": "default_assignee",
            "message": "'ghost' is not an active member of this workspace.",
        },
        {"field": "issue_types.0", "message": "Unknown issue type 'Saga'."},
        {"field": "custom_fields.0", "message": "Unknown custom field 'Nope'."},
        {
            "field": "components.1.lead",
            "message": "'nobody' is not an active member of this workspace.",
        },
        {"field": "components.2.name", "message": "'DUP' is listed twice."},
        {"field": "components.0.id", "message": "No component 999999999 in CORE."},
        {"field": "versions.1.name", "message": "'2.0' is listed twice."},
    ]
    assert empty.json()["error"]["details"] == [
        {"field": "issue_types", "message": "Enable at least one issue type."}
    ]
    assert _settings_ids(world_a) == ids
    assert in_schema(world_a, lambda: Project.objects.get().issue_types.count()) == 0
    assert audit_actions(world_a) == []


def test_a_developer_cannot_change_settings(user_a, world_a, project_a):
    # given the user is a developer of CORE
    in_schema(
        world_a,
        lambda: ProjectMember.objects.create(
            project=project_a, user=world_a.user, role="DEVELOPER"
        ),
    )
    ids = _settings_ids(world_a)
    # when
    response = user_a.put(
        "/api/v1/projects/CORE/settings", {"components": [], "default_assignee": "user_alpha"}
    )
    # then
    assert response.status_code == 403
    assert _settings_ids(world_a) == ids
    assert in_schema(world_a, lambda: Project.objects.get().default_assignee_id) is None
    assert audit_actions(world_a) == []


# Catalogues ------------------------------------------------------------------------------


def test_catalogues_are_readable_by_every_member(user_a, world_a):
    # given
    def read():
        return {
            "types": dict(IssueType.objects.values_list("name", "pk")),
        }

    ids = in_schema(world_a, read)
    # when
    types = user_a.get("/api/v1/issue-types")
    priorities = user_a.get("/api/v1/priorities")
    statuses = user_a.get("/api/v1/statuses")
    resolutions = user_a.get("/api/v1/resolutions")
    # then
    assert types.json()[0] == {
        "id": ids["types"]["Epic"],
        "name": "Epic",
        "description": "A big user story that needs to be broken down.",
        "is_subtask": False,
        "is_epic": True,
    }
    assert [t["name"] for t in types.json()] == ALL_ISSUE_TYPES
    assert [(p["name"], p["rank"], p["is_default"]) for p in priorities.json()] == [
        ("Highest", 5, False),
        ("High", 4, False),
        ("Medium", 3, True),
        ("Low", 2, False),
        ("Lowest", 1, False),
    ]
    assert priorities.json()[0]["color"] == "#cd1317"
    assert [(s["name"], s["category"]) for s in statuses.json()] == [
        ("To Do", "TO_DO"),
        ("In Progress", "IN_PROGRESS"),
        ("Done", "DONE"),
    ]
    assert [r["name"] for r in resolutions.json()] == [
        "Done",
        "Won't Do",
        "Duplicate",
        "Cannot Reproduce",
    ]


@pytest.mark.parametrize(
    ("method", "path", "body", "query"),
    [
        ("POST", "/api/v1/projects", {"key": "AB", "name": "x", "lead": 2**64}, {}),
        ("POST", "/api/v1/projects", {"key": "AB", "name": "x", "lead": "²"}, {}),
        ("POST", "/api/v1/projects", {"key": "A\x00B", "name": "x"}, {}),
        ("POST", "/api/v1/projects", [1, 2], {}),
        ("POST", "/api/v1/projects", {"key": 12, "name": ["x"]}, {}),
        ("GET", "/api/v1/projects", None, {"q": "a\x00"}),
        ("GET", "/api/v1/projects", None, {"archived": "maybe"}),
        ("PUT", "/api/v1/projects/CORE", {"is_private": "perhaps"}, {}),
        ("PUT", "/api/v1/projects/CORE/members/99999999999999999999", {"role": "ADMIN"}, {}),
        ("DELETE", "/api/v1/projects/CORE/members/-1", None, {}),
        ("DELETE", "/api/v1/projects/CORE/members/abc", None, {}),
        ("PUT", "/api/v1/projects/CORE/settings", {"components": [{"id": 2**64, "name": "x"}]}, {}),
        ("PUT", "/api/v1/projects/CORE/settings", {"components": [{"name": "x", "lead": "²"}]}, {}),
        (
            "PUT",
            "/api/v1/projects/CORE/settings",
            {"versions": [{"name": "x", "release_date": "soon"}]},
            {},
        ),
        ("PUT", "/api/v1/projects/CORE/settings", {"issue_types": [True, None]}, {}),
        ("PUT", "/api/v1/projects/CORE/settings", {"custom_fields": "Severity"}, {}),
        ("PUT", "/api/v1/projects/CORE/settings", {"default_assignee": 0}, {}),
    ],
)
def test_bad_input_is_answered_without_a_server_error(
    admin_a, project_a, method, path, body, query
):
    # when
    response = admin_a.request(method, path, body, **query)
    # then
    assert 400 <= response.status_code < 500, response.content
    assert response.json()["error"]["code"]
