"""JSON import: validated as a whole first, then written in one transaction."""

import copy
import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.db.models import F, Window
from django.db.models.functions import Lead
from django_tenants.utils import schema_context

from accounts.members.models import Group, Invitation, Membership
from accounts.models import User
from eventlog.models import AuditEntry, Job, OutboxEvent
from search.jql.compile_postgres import jql_compile_postgres
from search.jql.parser import jql_parse
from tenants.models import Tenant
from tenants.services import tenant_signup
from tests.conftest import PASSWORD
from tests.tickets.conftest import in_own_connection
from tickets import import_write, importer
from tickets.models import (
    Comment,
    Component,
    CustomField,
    IssueType,
    Priority,
    Project,
    Status,
    Ticket,
    TicketHistory,
    Version,
    Watcher,
    WorkflowSchemeEntry,
)

REALISTIC = {
    "users": [
        {
            "username": "alice",
            "email": "Alice@X.io",
            "display_name": "Alice Anders",
            "groups": ["dev", "Support"],
        },
        # an identity of another workspace, matched by email
        {"username": "bravo_guest", "email": "user@bravo.test", "display_name": "Guest"},
        # already a member here
        {"username": "user_alpha", "email": "user@alpha.test", "groups": ["dev"]},
    ],
    "projects": [
        {"key": "WEB", "name": "Web shop", "lead": "alice", "description": "Storefront"},
        {"key": "CORE", "name": "exists: reused as it is"},
    ],
    "custom_fields": [
        {"name": "Team", "type": "select", "options": ["Red", "Blue"]},
        {"name": "Severity", "type": "select", "options": ["S1", "S2", "S3"]},
    ],
    "tickets": [
        {
            "key": "WEB-7",
            "project": "WEB",
            "type": "Sub-task",
            "status": "Awaiting Review",
            "priority": "High",
            "summary": "Fix the cart button",
            "parent": "WEB-5",
            "assignee": "alice",
            "reporter": "user@bravo.test",
            "labels": ["ui", "cart"],
            "components": ["frontend"],
            "custom_fields": {"Team": "red"},
            "created": "2026-01-05T09:30:00Z",
            "updated": "2026-01-06T10:00:00+01:00",
            "comments": [{"author": "alice", "body": "On it", "created": "2026-01-05T10:00:00Z"}],
            "history": [
                {
                    "field": "assignee",
                    "from": None,
                    "to": "alice",
                    "by": "user_alpha",
                    "at": "2026-01-05T09:31:00Z",
                },
                {
                    "field": "status",
                    "from": "To Do",
                    "to": "Awaiting Review",
                    "by": "alice",
                    "at": "2026-01-06T09:00:00Z",
                },
            ],
        },
        {
            "key": "WEB-5",
            "type": "Story",
            "status": "Done",
            "priority": "Medium",
            "summary": "Cart",
            "description": "As a shopper I want a cart.",
            "epic": "WEB-1",
            "reporter": "alice",
            "created": "2026-01-03T08:00:00Z",
            "updated": "2026-01-04T08:00:00Z",
            "resolved": "2026-01-04T08:00:00Z",
            "due": "2026-02-01",
            "story_points": 3,
        },
        {"key": "WEB-1", "type": "Epic", "summary": "Checkout", "created": "2026-01-02T10:00:00Z"},
        {
            "key": "CORE-12",
            "project": "CORE",
            "type": "Bug",
            "status": "In Progress",
            "priority": "Highest",
            "summary": "Crash on save",
            "epic": "WEB-1",
            "assignee": "user_alpha",
            "reporter": "lead_alpha",
            "components": ["api", "db"],
            "fix_versions": ["1.0", "2.0"],
            "custom_fields": {"Severity": "S1", "Customer": "Globex"},
            "created": "2025-12-01T00:00:00Z",
            "updated": "2025-12-02T00:00:00Z",
            "history": [
                {
                    "field": "priority",
                    "from": "High",
                    "to": "Highest",
                    "by": "lead@alpha.test",
                    "at": "2025-12-01T12:00:00Z",
                }
            ],
        },
    ],
}

REALISTIC_COUNTS = {
    "users_created": 1,
    "members_created": 2,
    "members_matched": 1,
    "invitations_created": 1,
    "groups_created": 2,
    "statuses_created": 1,
    "issue_types_created": 0,
    "priorities_created": 0,
    "resolutions_created": 0,
    "custom_fields_created": 1,
    "projects_created": 1,
    "workflows_created": 1,
    "components_created": 2,
    "versions_created": 1,
    "tickets": 4,
    "ticket_components": 3,
    "ticket_versions": 2,
    "watchers": 5,
    "comments": 1,
    "history": 3,
}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def rows(world) -> dict[str, int]:
    """Row counts of everything an import writes (identities are global)."""
    with schema_context(world.schema):
        counts = {
            model.__name__: model.objects.count()
            for model in (
                User,
                Membership,
                Group,
                Invitation,
                Project,
                Component,
                Version,
                CustomField,
                Status,
                IssueType,
                Priority,
                Ticket,
                Comment,
                TicketHistory,
                Watcher,
                AuditEntry,
                OutboxEvent,
                Job,
            )
        }
        counts["member_count"] = Tenant.objects.get(schema_name=world.schema).member_count
    connection.set_schema_to_public()
    return counts


@pytest.fixture
def existing(make_ticket):
    """CORE-1 exists (the counter stands at 1)."""
    return make_ticket(summary="already here")


def test_a_realistic_import_keeps_keys_times_and_references(
    admin_a, world_a, world_b, existing, project_a
):
    # given
    member_count = rows(world_a)["member_count"]
    # when
    response = admin_a.post("/api/v1/import", REALISTIC)
    # then
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "succeeded", "counts": REALISTIC_COUNTS}
    with schema_context(world_a.schema):
        tickets = {t.key: t for t in Ticket.objects.select_related("status", "issue_type")}
        assert sorted(tickets) == ["CORE-1", "CORE-12", "WEB-1", "WEB-5", "WEB-7"]
        web7, web5, web1, core12 = (tickets[k] for k in ("WEB-7", "WEB-5", "WEB-1", "CORE-12"))
        alice = User.objects.get(email="alice@x.io")
        # keys, hierarchy and timestamps
        assert (web7.number, web7.parent_id, web5.epic_id, core12.epic_id) == (
            7,
            web5.pk,
            web1.pk,
            web1.pk,
        )
        assert (web7.created_at, web7.updated_at) == (
            at("2026-01-05T09:30:00Z"),
            at("2026-01-06T09:00:00Z"),
        )
        assert (web5.resolved_at, web5.resolution.name, web5.due_date) == (
            at("2026-01-04T08:00:00Z"),
            "Done",
            date(2026, 2, 1),
        )
        assert web5.story_points == Decimal("3.00")
        assert (web1.status.name, web1.priority.name, web1.issue_type.name) == (
            "To Do",
            "Medium",
            "Epic",
        )
        assert web1.resolved_at is None
        # the unknown status was created, its category guessed
        in_review = Status.objects.get(name="Awaiting Review")
        assert (web7.status_id, in_review.category) == (in_review.pk, "IN_PROGRESS")
        # people
        assert (web7.assignee_id, web7.reporter_id, web7.creator_id) == (
            alice.pk,
            world_b.user.pk,
            world_b.user.pk,
        )
        assert (core12.assignee_id, core12.reporter_id) == (world_a.user.pk, world_a.lead.pk)
        assert set(Watcher.objects.filter(ticket=web7).values_list("user_id", flat=True)) == {
            alice.pk,
            world_b.user.pk,
        }
        # labels, components, versions, custom fields
        assert web7.labels == ["ui", "cart"]
        assert [c.name for c in web7.components.all()] == ["frontend"]
        assert [c.name for c in core12.components.all()] == ["api", "db"]
        assert [v.name for v in core12.fix_versions.all()] == ["1.0", "2.0"]
        fields = {cf.name: str(cf.pk) for cf in CustomField.objects.all()}
        assert web7.custom_fields == {fields["Team"]: "Red"}
        assert core12.custom_fields == {fields["Severity"]: "S1", fields["Customer"]: "Globex"}
        web = Project.objects.get(key="WEB")
        assert sorted(web.custom_fields.values_list("name", flat=True)) == ["Severity", "Team"]
        assert sorted(project_a.custom_fields.values_list("name", flat=True)) == [
            "Customer",
            "Severity",
            "Team",
        ]
        assert (web.name, web.lead_id, web.owner_id, web.description) == (
            "Web shop",
            alice.pk,
            world_a.admin.pk,
            "Storefront",
        )
        # comments and history
        assert list(
            Comment.objects.values_list("ticket__key", "author_id", "body", "created_at")
        ) == [("WEB-7", alice.pk, "On it", at("2026-01-05T10:00:00Z"))]
        history = TicketHistory.objects.exclude(ticket__key="CORE-1").order_by("created_at")
        todo = Status.objects.get(name="To Do")
        high, highest = (Priority.objects.get(name=n).pk for n in ("High", "Highest"))
        assert list(
            history.values_list(
                "ticket__key",
                "field",
                "from_value",
                "to_value",
                "from_ref",
                "to_ref",
                "actor_id",
                "created_at",
            )
        ) == [
            (
                "CORE-12",
                "priority",
                "High",
                "Highest",
                high,
                highest,
                world_a.lead.pk,
                at("2025-12-01T12:00:00Z"),
            ),
            (
                "WEB-7",
                "assignee",
                None,
                "alice",
                None,
                alice.pk,
                world_a.user.pk,
                at("2026-01-05T09:31:00Z"),
            ),
            (
                "WEB-7",
                "status",
                "To Do",
                "Awaiting Review",
                todo.pk,
                in_review.pk,
                alice.pk,
                at("2026-01-06T09:00:00Z"),
            ),
        ]
        # a new identity: unusable password, a member, a pending invitation, no email
        assert (alice.username, alice.display_name, alice.first_name, alice.last_name) == (
            "alice",
            "Alice Anders",
            "Alice",
            "Anders",
        )
        assert not alice.has_usable_password()
        assert Membership.objects.get(user=alice).role == "USER"
        invitation = Invitation.objects.get()
        assert (invitation.email, invitation.accepted_at, invitation.revoked_at) == (
            "alice@x.io",
            None,
            None,
        )
        assert sorted(invitation.groups.values_list("name", flat=True)) == ["Support", "dev"]
        assert mail.outbox == []
        # B's identity joined as it is; the existing member only got the group
        assert Membership.objects.filter(user=world_b.user).exists()
        assert User.objects.filter(email="user@bravo.test").count() == 1
        assert sorted(Group.objects.get(name="dev").members.values_list("user_id", flat=True)) == [
            world_a.user.pk,
            alice.pk,
        ]
        # one audit entry and one event for the whole import
        audit = AuditEntry.objects.get(action="import.completed")
        assert audit.changes["tickets"] == [None, 4]
        event = OutboxEvent.objects.get(kind="import.completed")
        assert event.payload == {"counts": REALISTIC_COUNTS, "job_id": None}
        assert (
            not OutboxEvent.objects.filter(kind="ticket.created")
            .exclude(payload__key="CORE-1")
            .exists()
        )
        assert Project.objects.get(key="CORE").ticket_counter == 12
        assert web.ticket_counter == 7
    assert rows(world_a)["member_count"] == member_count + 2
    # and the next tickets continue after the imported keys
    created = [
        admin_a.post(f"/api/v1/projects/{key}/tickets", {"summary": "next"}).json()["key"]
        for key in ("CORE", "WEB")
    ]
    assert created == ["CORE-13", "WEB-8"]
    # the new project's workflow knows the imported status, and leads out of it
    with schema_context(world_a.schema):
        workflow = WorkflowSchemeEntry.objects.get(project__key="WEB").workflow
        assert [s["name"] for s in workflow.current.definition["statuses"]] == [
            "To Do",
            "In Progress",
            "In Review",
            "Done",
            "Awaiting Review",
        ]
    connection.set_schema_to_public()
    moved = admin_a.patch("/api/v1/tickets/WEB-7/status", {"status": "Done"})
    assert moved.status_code == 200, moved.content
    back = admin_a.patch("/api/v1/tickets/WEB-7/status", {"status": "Awaiting Review"})
    assert back.status_code == 200, back.content


def test_imported_history_periods_and_text_vectors(
    admin_a, world_a, existing, django_capture_on_commit_callbacks
):
    # given a file whose WEB-7 changed its status twice (written out of time order) and
    # its assignee twice at the same instant
    data = copy.deepcopy(REALISTIC)
    data["tickets"][0]["history"] += [
        {"field": "status", "from": "To Do", "to": "In Progress", "at": "2026-01-05T12:00:00Z"},
        {"field": "assignee", "from": "alice", "to": None, "at": "2026-01-05T09:31:00Z"},
    ]
    # when it is imported (history and text written by COPY with triggers off)
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_a.post("/api/v1/import", data)
    assert response.status_code == 200, response.content
    with schema_context(world_a.schema):
        # then every history row ends where the database's own rule says: the next
        # row of its field (`until` is written by the import itself)
        next_change = Window(
            Lead("created_at"),
            partition_by=[F("ticket_id"), F("field")],
            order_by=[F("created_at").asc(), F("id").asc()],
        )
        expected = dict(
            TicketHistory.objects.annotate(next_change=next_change).values_list("id", "next_change")
        )
        written = dict(TicketHistory.objects.values_list("id", "until"))
        assert written == expected
        web7 = TicketHistory.objects.filter(ticket__key="WEB-7").order_by("created_at", "id")
        assert list(web7.values_list("field", "to_value", "until")) == [
            ("assignee", "alice", at("2026-01-05T09:31:00Z")),
            ("assignee", None, None),
            ("status", "In Progress", at("2026-01-06T09:00:00Z")),
            ("status", "Awaiting Review", None),
        ]
        # the text vectors are left for after commit: meanwhile the tickets are searched
        # the exact way, and the search answers the same
        member = Membership.objects.select_related("user").get(user=world_a.admin)
        tenant = Tenant.objects.get(schema_name=world_a.schema)

        def keys(jql: str) -> list[str]:
            found = jql_compile_postgres(jql_parse(jql), member=member, tenant=tenant)
            return sorted(found.values_list("key", flat=True))

        imported = Ticket.objects.exclude(key="CORE-1").count()
        queries = ('text ~ "cart"', 'text ~ "want cart"', "description ~ shopper", "comment ~ cart")
        before = [keys(jql) for jql in queries]
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM tickets_ticket WHERE search_text IS NULL")
            unbuilt = cursor.fetchone()[0]
            # and the links carry their ticket's dates (their trigger was off too)
            cursor.execute(
                "SELECT count(*), count(*) FILTER (WHERE l.ticket_created_at = t.created_at"
                " AND l.ticket_updated_at = t.updated_at) FROM tickets_ticket_components l"
                " JOIN tickets_ticket t ON t.id = l.ticket_id"
            )
            links, links_with_dates = cursor.fetchone()
        # when the queued fill runs
        for callback in callbacks:
            callback()
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM tickets_ticket WHERE search_text IS NULL")
            unbuilt_after = cursor.fetchone()[0]
        after = [keys(jql) for jql in queries]
    connection.set_schema_to_public()
    # then
    assert unbuilt == imported == 4
    assert links == links_with_dates == 3
    assert unbuilt_after == 0
    assert before == after == [["WEB-5", "WEB-7"], ["WEB-5"], ["WEB-5"], []]


BROKEN = {
    "users": [{"username": "carol", "email": "not-an-email"}, {"username": "dave"}],
    "projects": [{"key": "web shop", "name": "Bad key"}],
    "custom_fields": [{"name": "Team", "type": "colour"}],
    "tickets": [
        {"key": "CORE-1", "summary": "exists already"},
        {"key": "CORE-2", "summary": "", "assignee": "ghost"},
        {"key": "CORE-2", "summary": "twice"},
        {"key": "banana", "summary": "no key"},
        {"key": "CORE-3", "summary": "x", "created": "yesterday", "epic": "CORE-1"},
    ],
}


def test_a_broken_file_is_refused_as_a_whole_with_every_error(admin_a, world_a, existing):
    # given
    before = rows(world_a)
    # when
    response = admin_a.post("/api/v1/import", BROKEN)
    # then
    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["message"]) == (
        "import_invalid",
        "The import has 11 errors; nothing was imported.",
    )
    assert error["details"] == [
        {
            "index": 0,
            "section": "users",
            "field": "email",
            "message": "'not-an-email' is not a valid email address.",
        },
        {
            "index": 1,
            "section": "users",
            "field": "email",
            "message": "email is required for a new member.",
        },
        {
            "index": 0,
            "section": "custom_fields",
            "field": "type",
            "message": "type must be one of text, number, date, select, multiselect, user.",
        },
        {
            "index": 0,
            "section": "projects",
            "field": "key",
            "message": "'WEB SHOP' is not a project key (e.g. CORE).",
        },
        {"index": 1, "section": "tickets", "field": "summary", "message": "summary is required."},
        {
            "index": 1,
            "section": "tickets",
            "field": "assignee",
            "message": "Unknown user 'ghost': not in `users`, not a member.",
        },
        {
            "index": 2,
            "section": "tickets",
            "field": "key",
            "message": "CORE-2 appears more than once.",
        },
        {
            "index": 3,
            "section": "tickets",
            "field": "key",
            "message": "'banana' is not a ticket key (e.g. CORE-12).",
        },
        {
            "index": 4,
            "section": "tickets",
            "field": "created",
            "message": "'yesterday' is not an ISO 8601 date-time.",
        },
        {"index": 0, "section": "tickets", "field": "key", "message": "CORE-1 already exists."},
        {"index": 4, "section": "tickets", "field": "epic", "message": "CORE-1 is not an epic."},
    ]
    assert rows(world_a) == before


def test_errors_are_capped_and_the_rest_counted(admin_a, world_a):
    # given more bad tickets than are listed (and more than run in a request)
    before = rows(world_a)
    doc = {"tickets": [{"key": f"bad {n}", "summary": "x"} for n in range(1005)]}
    # when
    response = admin_a.post("/api/v1/import", doc)
    # then
    assert response.status_code == 422
    details = response.json()["error"]["details"]
    assert len(details) == 1001
    assert details[999] == {
        "index": 999,
        "section": "tickets",
        "field": "key",
        "message": "'bad 999' is not a ticket key (e.g. CORE-12).",
    }
    assert details[1000] == {
        "index": None,
        "section": None,
        "field": None,
        "message": "5 more errors.",
    }
    assert rows(world_a) == before


UNKNOWN_CATALOGUE = {
    "projects": [{"key": "OPS", "name": "Operations"}],
    "tickets": [
        {"key": "OPS-1", "summary": "a", "type": "Incident", "status": "Triage", "priority": "P1"},
        {"key": "OPS-2", "summary": "b", "type": "Task", "status": "Closed", "priority": "P1"},
    ],
}


def test_strict_mode_refuses_unknown_statuses_types_and_priorities(admin_a, world_a):
    # given
    before = rows(world_a)
    # when
    response = admin_a.post("/api/v1/import?strict=true", UNKNOWN_CATALOGUE)
    # then
    assert response.status_code == 422
    assert [
        (d["index"], d["field"], d["message"]) for d in response.json()["error"]["details"]
    ] == [
        (0, "type", "Unknown type 'Incident' (strict mode creates none)."),
        (0, "status", "Unknown status 'Triage' (strict mode creates none)."),
        (0, "priority", "Unknown priority 'P1' (strict mode creates none)."),
        (1, "status", "Unknown status 'Closed' (strict mode creates none)."),
        (1, "priority", "Unknown priority 'P1' (strict mode creates none)."),
    ]
    assert rows(world_a) == before


def test_without_strict_mode_the_catalogues_grow(admin_a, world_a):
    # when
    response = admin_a.post("/api/v1/import", UNKNOWN_CATALOGUE)
    # then
    assert response.status_code == 200, response.content
    with schema_context(world_a.schema):
        assert Status.objects.get(name="Triage").category == "TO_DO"
        assert Status.objects.get(name="Closed").category == "DONE"
        assert IssueType.objects.get(name="Incident").is_subtask is False
        assert Priority.objects.get(name="P1").rank == 0
        closed = Ticket.objects.get(key="OPS-2")
        assert closed.resolution.name == "Done"


@pytest.mark.parametrize("who", ["lead_a", "user_a"])
def test_only_tenant_admins_may_import(who, request, world_a):
    # given
    api = request.getfixturevalue(who)
    before = rows(world_a)
    # when
    response = api.post("/api/v1/import", REALISTIC)
    # then
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert rows(world_a) == before


def test_malformed_json_is_a_400_and_a_non_object_a_422(admin_a, world_a):
    # given
    before = rows(world_a)
    # when
    malformed = admin_a.post("/api/v1/import", raw=b'{"tickets": [')
    listed = admin_a.post("/api/v1/import", [1, 2])
    # then
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "malformed_json"
    assert listed.status_code == 422
    assert listed.json()["error"]["details"] == [
        {
            "index": None,
            "section": None,
            "field": None,
            "message": "The import must be a JSON object.",
        }
    ]
    assert rows(world_a) == before


def _upload(api, doc, query=""):
    upload = SimpleUploadedFile("export.json", json.dumps(doc).encode(), "application/json")
    response = api.client.post(
        f"/api/v1/import{query}",
        {"file": upload},
        headers={"Authorization": f"Bearer {api.token}"},
    )
    connection.set_schema_to_public()
    return response


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def test_an_uploaded_file_imports_in_the_request(admin_a, world_a, existing):
    # when
    response = _upload(admin_a, REALISTIC)
    # then
    assert response.status_code == 200, response.content
    assert response.json()["counts"] == REALISTIC_COUNTS


def test_an_import_can_run_as_a_job(
    admin_a, world_a, existing, media, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks() as callbacks:
        response = _upload(admin_a, REALISTIC, "?async=true")
    # then it is stored and queued
    assert response.status_code == 202, response.content
    job_id = response.json()["job_id"]
    assert response.json()["status_url"] == f"/api/v1/jobs/{job_id}"
    queued = admin_a.get(f"/api/v1/jobs/{job_id}").json()
    assert (queued["kind"], queued["status"], queued["total"]) == ("import", "queued", 4)
    assert [p.name for p in (media / "imports" / world_a.schema).iterdir()] == [f"{job_id}.json"]
    with schema_context(world_a.schema):
        assert not Ticket.objects.filter(key="WEB-1").exists()
    connection.set_schema_to_public()
    # when the worker runs it
    for callback in callbacks:
        callback()
    # then
    job = admin_a.get(f"/api/v1/jobs/{job_id}").json()
    assert {k: job[k] for k in ("status", "total", "processed", "succeeded", "failed")} == {
        "status": "succeeded",
        "total": 4,
        "processed": 4,
        "succeeded": 4,
        "failed": 0,
    }
    assert job["result"] == {"counts": REALISTIC_COUNTS}
    assert job["finished_at"] is not None
    assert list((media / "imports" / world_a.schema).iterdir()) == []
    with schema_context(world_a.schema):
        assert Ticket.objects.count() == 5
        assert AuditEntry.objects.get(action="import.completed").target_id == job_id


def test_a_job_that_fails_writes_nothing_and_says_why(
    admin_a, world_a, media, django_capture_on_commit_callbacks
):
    # given a valid file, queued
    doc = copy.deepcopy(REALISTIC)
    doc["tickets"] = [t for t in doc["tickets"] if t["key"] != "CORE-12"]
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_a.post("/api/v1/import?async=true", doc)
    job_id = response.json()["job_id"]
    # and, before the worker gets to it, someone takes one of its keys
    with schema_context(world_a.schema):
        web = Project.objects.create(key="WEB", name="Made by hand")
    connection.set_schema_to_public()
    admin_a.post(f"/api/v1/projects/{web.pk}/tickets", {"summary": "mine"})
    before = rows(world_a)
    # when
    for callback in callbacks:
        callback()
    # then
    job = admin_a.get(f"/api/v1/jobs/{job_id}").json()
    assert (job["status"], job["processed"], job["succeeded"], job["failed"]) == (
        "failed",
        0,
        0,
        1,
    )
    assert job["error"] == "The import has 1 error; nothing was imported."
    assert job["failures"] == [
        {
            "item": 2,
            "code": "invalid",
            "message": "WEB-1 already exists.",
            "details": {"section": "tickets", "field": "key"},
        }
    ]
    after = rows(world_a)
    assert {k: v for k, v in after.items() if k not in ("OutboxEvent",)} == {
        k: v for k, v in before.items() if k not in ("OutboxEvent",)
    }
    assert after["OutboxEvent"] == before["OutboxEvent"] + 1  # job.finished


def test_more_than_1000_tickets_always_run_as_a_job(
    admin_a, world_a, media, django_capture_on_commit_callbacks
):
    # given
    doc = {
        "projects": [{"key": "BIG", "name": "Big"}],
        "tickets": [
            {"key": f"BIG-{n}", "summary": f"ticket {n}", "comments": [{"body": "hi"}]}
            for n in range(1, 1002)
        ],
    }
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_a.post("/api/v1/import", doc)
    # then
    assert response.status_code == 202, response.content
    job = admin_a.get(response.json()["status_url"]).json()
    assert (job["status"], job["total"], job["processed"], job["succeeded"]) == (
        "succeeded",
        1001,
        1001,
        1001,
    )
    with schema_context(world_a.schema):
        assert Ticket.objects.filter(project__key="BIG").count() == 1001
        assert Comment.objects.count() == 1001
        assert Project.objects.get(key="BIG").ticket_counter == 1001


def test_references_to_existing_tickets_and_taken_usernames(admin_a, world_a, world_b, make_ticket):
    # given an existing epic, and a newcomer whose username is taken in another workspace
    make_ticket(type="Epic", summary="Big theme")
    doc = {
        "users": [{"username": "user_bravo", "email": "newcomer@x.io"}],
        "tickets": [
            {"key": "CORE-6", "type": "Sub-task", "summary": "part", "parent": "CORE-5"},
            {
                "key": "CORE-5",
                "summary": "in the theme",
                "epic": "CORE-1",
                "reporter": "newcomer@x.io",
            },
        ],
    }
    # when
    response = admin_a.post("/api/v1/import", doc)
    # then
    assert response.status_code == 200, response.content
    with schema_context(world_a.schema):
        epic, story, sub = (Ticket.objects.get(key=k) for k in ("CORE-1", "CORE-5", "CORE-6"))
        assert (story.epic_id, sub.parent_id) == (epic.pk, story.pk)
        newcomer = User.objects.get(email="newcomer@x.io")
        assert newcomer.username == "user_bravo2"
        assert story.reporter_id == newcomer.pk
    assert User.objects.get(pk=world_b.user.pk).username == "user_bravo"


def test_nul_characters_are_refused(admin_a, world_a):
    # given
    before = rows(world_a)
    body = json.dumps({"projects": [{"key": "NUL", "name": "a\u0000b"}]})
    # when
    response = admin_a.post("/api/v1/import", raw=body)
    # then
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["message"] == (
        "Text must not contain NUL characters (\\u0000)."
    )
    assert rows(world_a) == before


def test_text_that_cannot_be_stored_is_a_400_and_writes_nothing(admin_a, world_a):
    # given a lone surrogate: valid JSON, not storable as UTF-8
    before = rows(world_a)
    body = '{"projects": [{"key": "ODD", "name": "odd"}], "tickets": [{"key": "ODD-1", '
    body += '"summary": "half \\ud800 a character"}]}'
    # when
    response = admin_a.post("/api/v1/import", raw=body)
    # then
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "import_unstorable"
    assert rows(world_a) == before


def test_a_big_json_body_is_refused_but_the_same_upload_works(admin_a, world_a, settings):
    # given a body above the request size limit
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 200
    doc = {"projects": [{"key": "BIG", "name": "x" * 190}]}
    # when
    refused = admin_a.post("/api/v1/import", doc)
    uploaded = _upload(admin_a, doc)
    # then
    assert refused.status_code == 413
    assert refused.json()["error"]["code"] == "payload_too_large"
    assert uploaded.status_code == 200, uploaded.content
    assert uploaded.json()["counts"]["projects_created"] == 1


@pytest.fixture
def scratch_tenant():
    """A throwaway tenant whose writes are committed (the shared ones roll back)."""

    def provision():
        result = tenant_signup(
            company_name="Scratch",
            subdomain="import-scratch",
            admin_email="admin@import-scratch.test",
            admin_password=PASSWORD,
            admin_name="Scratch Admin",
        )
        return result.tenant.schema_name, result.admin.pk

    schema, admin_id = in_own_connection(provision)
    yield schema, admin_id

    def drop():
        Tenant.objects.get(schema_name=schema).delete(force_drop=True)
        with connection.cursor() as cursor:  # the ORM would look for memberships everywhere
            cursor.execute(f"DELETE FROM {User._meta.db_table} WHERE id = %s", [admin_id])

    in_own_connection(drop)


def test_job_progress_is_seen_by_others_while_nothing_is_committed(
    scratch_tenant, monkeypatch, settings, tmp_path
):
    # given an import job writing two tickets per batch, and a reader on its own connection
    schema, admin_id = scratch_tenant
    settings.MEDIA_ROOT = tmp_path
    monkeypatch.setattr(import_write, "BATCH", 2)
    seen = []
    publish = importer._job_progress

    def publish_and_look(schema_name, job_id, done):
        publish(schema_name, job_id, done)

        def look():
            with schema_context(schema_name):
                return Job.objects.get(pk=job_id).processed, Ticket.objects.count()

        seen.append(in_own_connection(look))

    monkeypatch.setattr(importer, "_job_progress", publish_and_look)
    doc = {
        "projects": [{"key": "PRG", "name": "Progress"}],
        "tickets": [{"key": f"PRG-{n}", "summary": f"ticket {n}"} for n in range(1, 6)],
    }

    def submit():
        # after the job row commits, the (eager) task runs right here, as a worker would
        with schema_context(schema):
            actor = Membership.objects.select_related("user").get(user_id=admin_id)
            job = importer.import_submit(actor=actor, raw=json.dumps(doc).encode(), force_job=True)
            return str(job.pk)

    # when
    job_id = in_own_connection(submit)
    # then others saw the progress, and no ticket, until the import committed
    assert seen == [(2, 0), (4, 0), (5, 0)]

    def final():
        with schema_context(schema):
            job = Job.objects.get(pk=job_id)
            return job.status, job.processed, Ticket.objects.count()

    assert in_own_connection(final) == ("succeeded", 5, 5)
