import pytest
from django.db import connection
from django_tenants.utils import schema_context

from eventlog.models import AuditEntry, IdempotencyRecord, OutboxEvent
from tickets.models import Project, ProjectMember, Ticket, TicketHistory, Watcher

FULL = {
    "title": "Checkout fails on Safari",
    "description": "Steps:\n1. open *checkout*",
    "type": "Bug",
    "priority": "High",
    "assignee": "user_alpha",
    "labels": ["ui", "payments", "ui"],
    "components": ["api", "UI"],
    "fix_versions": ["1.0"],
    "due_date": "2026-12-24",
    "story_points": 3.5,
    "original_estimate": "1d 4h",
    "remaining_estimate": 3600,
    "custom_fields": {"Severity": "s1", "Customer": "Globex"},
}


def _history(world, ticket_key):
    with schema_context(world.schema):
        rows = list(
            TicketHistory.objects.filter(ticket__key=ticket_key)
            .order_by("id")
            .values_list("field", "from_value", "to_value")
        )
    connection.set_schema_to_public()
    return rows


def test_create_ticket_with_every_field(admin_a, world_a, project_a):
    # when
    response = admin_a.post("/api/v1/projects/CORE/tickets", FULL)
    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert response["ETag"] == '"1"'
    assert response["Location"] == "/api/v1/tickets/CORE-1"
    assert body["key"] == "CORE-1"
    assert body["project"] == {"id": project_a.pk, "key": "CORE", "name": "Core platform"}
    assert body["summary"] == body["title"] == "Checkout fails on Safari"
    assert body["type"]["name"] == "Bug"
    assert body["status"]["name"] == "To Do"
    assert body["status"]["category"] == "TO_DO"
    assert body["priority"]["name"] == "High"
    assert body["assignee"] == {
        "id": world_a.user.pk,
        "username": "user_alpha",
        "display_name": "User Alpha",
    }
    assert body["reporter"]["id"] == body["creator"]["id"] == world_a.admin.pk
    assert body["labels"] == ["ui", "payments"]
    assert [c["name"] for c in body["components"]] == ["api", "ui"]
    assert [v["name"] for v in body["fix_versions"]] == ["1.0"]
    assert body["due_date"] == "2026-12-24"
    assert body["story_points"] == 3.5
    assert body["original_estimate"] == 12 * 3600
    assert body["remaining_estimate"] == 3600
    assert body["custom_fields"] == {"Severity": "S1", "Customer": "Globex"}
    assert body["resolution"] is None
    assert body["resolved_at"] is None
    assert body["version"] == 1
    assert body["subtasks"] == []
    assert body["links"] == []
    assert body["watcher_count"] == 2
    assert body["watching"] is True
    assert _history(world_a, "CORE-1") == [
        ("status", None, "To Do"),
        ("type", None, "Bug"),
        ("priority", None, "High"),
        ("assignee", None, "User Alpha"),
    ]
    with schema_context(world_a.schema):
        assert set(Watcher.objects.values_list("user_id", flat=True)) == {
            world_a.admin.pk,
            world_a.user.pk,
        }
        assert AuditEntry.objects.filter(action="ticket.created", target_id="CORE-1").exists()
        event = OutboxEvent.objects.get(kind="ticket.created")
        assert event.payload == {"key": "CORE-1", "project": "CORE"}


def test_keys_count_up_per_project_and_defaults_apply(admin_a, project_a, world_a):
    # given
    with schema_context(world_a.schema):
        Project.objects.create(key="OPS", name="Operations")
    connection.set_schema_to_public()
    # when
    first = admin_a.post("/api/v1/projects/CORE/tickets", {"summary": "one"})
    second = admin_a.post(f"/api/v1/projects/{project_a.pk}/tickets", {"summary": "two"})
    other = admin_a.post("/api/v1/projects/ops/tickets", {"summary": "three"})
    # then
    assert [first.json()["key"], second.json()["key"], other.json()["key"]] == [
        "CORE-1",
        "CORE-2",
        "OPS-1",
    ]
    assert first.json()["type"]["name"] == "Task"
    assert first.json()["priority"]["name"] == "Medium"
    assert first.json()["assignee"] is None


def test_invalid_ticket_lists_every_problem_and_writes_nothing(admin_a, project_a, world_a):
    # when
    response = admin_a.post(
        "/api/v1/projects/CORE/tickets",
        {
            "summary": "  ",
            "type": "Saga",
            "priority": "Urgent",
            "assignee": "nobody",
            "labels": ["has space"],
            "components": ["db"],
            "story_points": -1,
            "original_estimate": "soon",
            "custom_fields": {"Severity": "S9", "Nope": 1},
        },
    )
    # then
    assert response.status_code == 422
    details = response.json()["error"]["details"]
    assert details == [
        {"field": "summary", "message": "Summary is required."},
        {"field": "type", "message": "Unknown issue type 'Saga'."},
        {"field": "priority", "message": "Unknown priority 'Urgent'."},
        {"field": "assignee", "message": "'nobody' is not an active member of this workspace."},
        {
            "field": "labels",
            "message": "Label 'has space' must be 1-100 characters without spaces.",
        },
        {"field": "components", "message": "Unknown component 'db'."},
        {"field": "story_points", "message": "Story points must be between 0 and 99999."},
        {
            "field": "original_estimate",
            "message": "'soon' is not a duration (seconds, or like '2d 4h 30m').",
        },
        {"field": "custom_fields.Severity", "message": "'S9' is not one of S1, S2, S3."},
        {"field": "custom_fields.Nope", "message": "No custom field 'Nope' is enabled in CORE."},
    ]
    with schema_context(world_a.schema):
        assert not Ticket.objects.exists()
        assert Project.objects.get(pk=project_a.pk).ticket_counter == 0
        assert not OutboxEvent.objects.filter(kind="ticket.created").exists()
    connection.set_schema_to_public()
    assert admin_a.post("/api/v1/projects/CORE/tickets", {"summary": "ok"}).json()["key"] == (
        "CORE-1"
    )


def test_unknown_fields_are_refused(admin_a, project_a):
    # when
    response = admin_a.post("/api/v1/projects/CORE/tickets", {"summary": "x", "colour": "red"})
    # then
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "colour"


def test_idempotent_create_returns_the_first_ticket_on_retry(admin_a, project_a, world_a):
    # when
    headers = {"Idempotency-Key": "create-42"}
    first = admin_a.post("/api/v1/projects/CORE/tickets", {"summary": "once"}, headers=headers)
    retry = admin_a.post("/api/v1/projects/CORE/tickets", {"summary": "once"}, headers=headers)
    misuse = admin_a.post("/api/v1/projects/CORE/tickets", {"summary": "other"}, headers=headers)
    # then
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert retry["ETag"] == first["ETag"]
    assert misuse.status_code == 422
    assert misuse.json()["error"]["code"] == "idempotency_key_reused"
    with schema_context(world_a.schema):
        assert list(Ticket.objects.values_list("key", flat=True)) == ["CORE-1"]
        assert IdempotencyRecord.objects.count() == 1


def test_idempotency_key_of_a_failed_request_can_be_retried(admin_a, project_a):
    # given a first attempt that failed validation
    headers = {"Idempotency-Key": "k-1"}
    failed = admin_a.post("/api/v1/projects/CORE/tickets", {"summary": ""}, headers=headers)
    # when the client fixes the request and retries with the same key... a different body
    # is a different request: a failed attempt leaves no record behind
    fixed = admin_a.post("/api/v1/projects/CORE/tickets", {"summary": "ok"}, headers=headers)
    # then
    assert failed.status_code == 422
    assert fixed.status_code == 201


def test_update_records_history_bumps_version_and_honours_if_match(admin_a, make_ticket, world_a):
    # given
    ticket = make_ticket(summary="Old title", labels=["a"])
    # when
    response = admin_a.put(
        f"/api/v1/tickets/{ticket.key}",
        {"summary": "New title", "labels": ["a", "b"], "priority": "Low", "components": ["api"]},
        headers={"If-Match": '"1"'},
    )
    stale = admin_a.put(
        f"/api/v1/tickets/{ticket.key}", {"summary": "Lost update"}, headers={"If-Match": '"1"'}
    )
    # then
    assert response.status_code == 200, response.content
    assert response["ETag"] == '"2"'
    assert response.json()["summary"] == "New title"
    assert stale.status_code == 412
    assert stale.json()["error"]["details"] == {"current_version": 2}
    assert _history(world_a, ticket.key)[-4:] == [
        ("summary", "Old title", "New title"),
        ("priority", "Medium", "Low"),
        ("labels", "a", "a b"),
        ("components", None, "api"),
    ]
    with schema_context(world_a.schema):
        stored = Ticket.objects.get(pk=ticket.pk)
        assert stored.summary == "New title"
        assert stored.version == 2


def test_update_without_changes_keeps_the_version(admin_a, make_ticket):
    # given
    ticket = make_ticket(summary="Same")
    # when
    response = admin_a.put(f"/api/v1/tickets/{ticket.key}", {"summary": "Same"})
    # then
    assert response.json()["version"] == 1


def test_malformed_if_match_is_a_400(admin_a, make_ticket):
    ticket = make_ticket()
    response = admin_a.put(
        f"/api/v1/tickets/{ticket.key}", {"summary": "x"}, headers={"If-Match": "yesterday"}
    )
    assert response.status_code == 400


def test_status_patch_resolves_and_reopens(admin_a, make_ticket, world_a):
    # given
    ticket = make_ticket()
    # when
    done = admin_a.patch(f"/api/v1/tickets/{ticket.key}/status", {"status": "done"})
    reopened = admin_a.patch(
        f"/api/v1/tickets/{ticket.key}/status",
        {"status": "In Progress"},
        headers={"If-Match": '"2"'},
    )
    unknown = admin_a.patch(f"/api/v1/tickets/{ticket.key}/status", {"status": "Limbo"})
    # then
    assert done.json()["status"]["name"] == "Done"
    assert done.json()["resolution"]["name"] == "Done"
    assert done.json()["resolved_at"] is not None
    assert reopened.json()["status"]["name"] == "In Progress"
    assert reopened.json()["resolution"] is None
    assert reopened.json()["resolved_at"] is None
    assert unknown.status_code == 422
    assert _history(world_a, ticket.key)[3:] == [
        ("status", "To Do", "Done"),
        ("resolution", None, "Done"),
        ("status", "Done", "In Progress"),
        ("resolution", "Done", None),
    ]


def test_assignee_and_priority_patches(admin_a, make_ticket, world_a, world_b):
    # given
    ticket = make_ticket()
    # when
    assigned = admin_a.patch(
        f"/api/v1/tickets/{ticket.key}/assignee", {"assignee": world_a.lead.pk}
    )
    outsider = admin_a.patch(
        f"/api/v1/tickets/{ticket.key}/assignee", {"assignee": world_b.user.pk}
    )
    unassigned = admin_a.patch(f"/api/v1/tickets/{ticket.key}/assignee", {"assignee": None})
    priority = admin_a.patch(f"/api/v1/tickets/{ticket.key}/priority", {"priority": "Highest"})
    # then
    assert assigned.json()["assignee"]["id"] == world_a.lead.pk
    assert outsider.status_code == 422
    assert unassigned.json()["assignee"] is None
    assert priority.json()["priority"]["name"] == "Highest"
    assert priority.json()["version"] == 4


def test_subtasks_and_epics(admin_a, make_ticket):
    # given
    epic = make_ticket(summary="Big thing", type="Epic")
    story = make_ticket(summary="Story", type="Story", epic=epic.key)
    # when
    subtask = admin_a.post(
        "/api/v1/projects/CORE/tickets",
        {"summary": "part", "type": "Sub-task", "parent": story.key},
    )
    orphan = admin_a.post("/api/v1/projects/CORE/tickets", {"summary": "x", "type": "Sub-task"})
    not_epic = admin_a.post("/api/v1/projects/CORE/tickets", {"summary": "x", "epic": story.key})
    detail = admin_a.get(f"/api/v1/tickets/{story.key}")
    # then
    assert subtask.status_code == 201
    assert subtask.json()["parent"] == {"id": story.pk, "key": story.key, "summary": "Story"}
    assert orphan.json()["error"]["details"] == [
        {"field": "parent", "message": "A sub-task needs a parent."}
    ]
    assert not_epic.json()["error"]["details"] == [
        {"field": "epic", "message": f"{story.key} is not an epic."}
    ]
    assert detail.json()["epic"]["key"] == epic.key
    assert [s["key"] for s in detail.json()["subtasks"]] == [subtask.json()["key"]]


def test_links_in_both_directions(admin_a, make_ticket, world_a):
    # given
    a, b = make_ticket(summary="A"), make_ticket(summary="B")
    # when
    created = admin_a.post(f"/api/v1/tickets/{a.key}/links", {"type": "blocks", "ticket": b.key})
    duplicate = admin_a.post(f"/api/v1/tickets/{a.key}/links", {"type": "blocks", "ticket": b.key})
    itself = admin_a.post(f"/api/v1/tickets/{a.key}/links", {"type": "relates", "ticket": a.key})
    inward = admin_a.post(
        f"/api/v1/tickets/{a.key}/links",
        {"type": "duplicates", "ticket": b.key, "direction": "inward"},
    )
    from_b = admin_a.get(f"/api/v1/tickets/{b.key}/links")
    # then
    assert created.status_code == 201
    assert created.json()["description"] == "blocks"
    assert duplicate.status_code == 409
    assert itself.status_code == 422
    assert inward.json()["description"] == "is duplicated by"
    assert [
        (link["direction"], link["description"], link["ticket"]["key"]) for link in from_b.json()
    ] == [("inward", "is blocked by", a.key), ("outward", "duplicates", a.key)]
    # when removed
    removed = admin_a.delete(f"/api/v1/tickets/{b.key}/links/{created.json()['id']}")
    # then
    assert removed.status_code == 204
    assert len(admin_a.get(f"/api/v1/tickets/{a.key}/links").json()) == 1
    assert ("link", None, f"is blocked by {a.key}") in _history(world_a, b.key)


def test_watchers(admin_a, user_a, make_ticket, world_a):
    # given a ticket reported by the admin
    ticket = make_ticket()
    # when
    self_watch = user_a.post(f"/api/v1/tickets/{ticket.key}/watchers", {})
    add_other = user_a.post(f"/api/v1/tickets/{ticket.key}/watchers", {"user": "lead_alpha"})
    admin_adds = admin_a.post(f"/api/v1/tickets/{ticket.key}/watchers", {"user": "lead_alpha"})
    listing = user_a.get(f"/api/v1/tickets/{ticket.key}/watchers")
    unwatch = user_a.delete(f"/api/v1/tickets/{ticket.key}/watchers/{world_a.user.pk}")
    again = user_a.delete(f"/api/v1/tickets/{ticket.key}/watchers/{world_a.user.pk}")
    # then
    assert self_watch.status_code == 201
    assert add_other.status_code == 403
    assert admin_adds.status_code == 201
    # ordered by username; usernames of identities made by signup derive from the email
    assert [w["username"] for w in listing.json()] == sorted(
        [world_a.admin.username, "lead_alpha", "user_alpha"]
    )
    assert {w["id"] for w in listing.json()} == {world_a.admin.pk, world_a.user.pk, world_a.lead.pk}
    assert unwatch.status_code == 204
    assert again.status_code == 404


def test_private_project_tickets_are_invisible_to_non_members(
    user_a, lead_a, admin_a, private_project_a, make_ticket, world_a
):
    # given
    secret = make_ticket(project=private_project_a, summary="Acquisition")
    # when
    as_user = user_a.get(f"/api/v1/tickets/{secret.key}")
    edit = user_a.put(f"/api/v1/tickets/{secret.key}", {"summary": "leak"})
    listing = user_a.get("/api/v1/projects/SECRET/tickets")
    as_lead = lead_a.get(f"/api/v1/tickets/{secret.key}")
    as_admin = admin_a.get(f"/api/v1/tickets/{secret.pk}")
    # then
    assert as_user.status_code == 404
    assert edit.status_code == 404
    assert listing.status_code == 404
    assert as_lead.status_code == 200
    assert as_admin.status_code == 200
    with schema_context(world_a.schema):
        assert Ticket.objects.get(pk=secret.pk).summary == "Acquisition"


def test_project_viewers_cannot_edit_or_create(user_a, make_ticket, project_a, world_a):
    # given the user is a viewer of the project
    with schema_context(world_a.schema):
        ProjectMember.objects.create(project=project_a, user=world_a.user, role="VIEWER")
    connection.set_schema_to_public()
    ticket = make_ticket(summary="Read me")
    # when
    edit = user_a.put(f"/api/v1/tickets/{ticket.key}", {"summary": "changed"})
    create = user_a.post("/api/v1/projects/CORE/tickets", {"summary": "new"})
    read = user_a.get(f"/api/v1/tickets/{ticket.key}")
    # then
    assert edit.status_code == 403
    assert create.status_code == 403
    assert read.status_code == 200
    with schema_context(world_a.schema):
        assert Ticket.objects.get(pk=ticket.pk).summary == "Read me"
        assert Ticket.objects.count() == 1


def test_delete_needs_project_admin_and_takes_subtasks(admin_a, user_a, make_ticket, world_a):
    # given
    parent = make_ticket(summary="parent")
    make_ticket(summary="child", type="Sub-task", parent=parent.key)
    # when
    refused = user_a.delete(f"/api/v1/tickets/{parent.key}")
    deleted = admin_a.delete(f"/api/v1/tickets/{parent.key}")
    # then
    assert refused.status_code == 403
    assert deleted.status_code == 204
    with schema_context(world_a.schema):
        assert not Ticket.objects.exists()
        entry = AuditEntry.objects.get(action="ticket.deleted")
        assert entry.changes == {"summary": ["parent", None], "subtasks": [["CORE-2"], None]}


def test_list_filters_sorts_and_paginates_without_n_plus_one(
    admin_a, make_ticket, world_a, django_assert_num_queries
):
    # given
    for n in range(6):
        make_ticket(
            summary=f"T{n}",
            priority=["Low", "High"][n % 2],
            assignee="user_alpha" if n < 2 else None,
            labels=["x"] if n == 5 else [],
        )
    # when: authentication and routing, the project, the count, the page's ids, then
    # their rows and three prefetches with the joins' order fixed around them
    # (savepoint, set, reset, release in a test's transaction): the same for any page
    with django_assert_num_queries(15):
        page = admin_a.get("/api/v1/projects/CORE/tickets", sort="key", limit=4)
    high = admin_a.get("/api/v1/projects/CORE/tickets", priority="high", sort="-key")
    mine = admin_a.get("/api/v1/projects/CORE/tickets", assignee="user_alpha")
    unassigned = admin_a.get("/api/v1/projects/CORE/tickets", assignee="unassigned")
    labelled = admin_a.get("/api/v1/projects/CORE/tickets", label="x")
    by_priority = admin_a.get("/api/v1/projects/CORE/tickets", sort="-priority", limit=2)
    bad_sort = admin_a.get("/api/v1/projects/CORE/tickets", sort="colour")
    # then
    assert page.json()["total"] == 6
    assert [t["key"] for t in page.json()["items"]] == ["CORE-1", "CORE-2", "CORE-3", "CORE-4"]
    assert [t["key"] for t in high.json()["items"]] == ["CORE-6", "CORE-4", "CORE-2"]
    assert mine.json()["total"] == 2
    assert unassigned.json()["total"] == 4
    assert [t["key"] for t in labelled.json()["items"]] == ["CORE-6"]
    assert {t["priority"]["name"] for t in by_priority.json()["items"]} == {"High"}
    assert bad_sort.status_code == 422


@pytest.mark.parametrize("values", [1, 5], ids=["one value then the rest", "value by value"])
def test_lists_sorted_by_priority_or_status_read_by_value_page_as_one_sort(
    admin_a, make_ticket, monkeypatch, values
):
    # given tickets of three priorities and two statuses, and lists walked by value
    # (the walk of large lists) or sorted in one read (small ones)
    from tickets import walks

    priorities = ["Low", "High", "Medium", "High", "Low", "Highest", "Medium"]
    for n, priority in enumerate(priorities):
        make_ticket(summary=f"T{n}", priority=priority)
    for key in ("CORE-2", "CORE-5"):
        moved = admin_a.patch(f"/api/v1/tickets/{key}/status", {"status": "In Progress"})
        assert moved.status_code == 200, moved.content
    monkeypatch.setattr(walks, "WALK_VALUES", values)

    def pages(walked: bool, sort: str) -> list[list[str]]:
        monkeypatch.setattr(walks, "WALK_MIN_MATCHES", 0 if walked else 10**9)
        return [
            [
                t["key"]
                for t in admin_a.get(
                    "/api/v1/projects/CORE/tickets", sort=sort, offset=offset, limit=3
                ).json()["items"]
            ]
            for offset in (0, 3, 6)
        ]

    # when / then: the same pages either way
    for sort in ("-priority", "priority", "status", "-status"):
        assert pages(True, sort) == pages(False, sort), sort
    assert pages(True, "-priority") == [
        ["CORE-6", "CORE-4", "CORE-2"],
        ["CORE-7", "CORE-3", "CORE-5"],
        ["CORE-1"],
    ]
    assert pages(True, "status")[0][:2] == ["CORE-1", "CORE-3"]


def test_user_ticket_lists(admin_a, user_a, make_ticket, world_a, world_b):
    # given
    make_ticket(summary="assigned", assignee="user_alpha")
    make_ticket(summary="reported", as_user=world_a.user)
    # when
    assigned = admin_a.get(f"/api/v1/users/{world_a.user.pk}/assigned-tickets")
    reported = admin_a.get(f"/api/v1/users/{world_a.user.pk}/reported-tickets")
    both = admin_a.get(f"/api/v1/users/{world_a.user.pk}/tickets")
    watched = admin_a.get(f"/api/v1/users/{world_a.user.pk}/watched-tickets")
    outsider = admin_a.get(f"/api/v1/users/{world_b.user.pk}/tickets")
    # then
    assert [t["summary"] for t in assigned.json()["items"]] == ["assigned"]
    assert [t["summary"] for t in reported.json()["items"]] == ["reported"]
    assert {t["summary"] for t in both.json()["items"]} == {"assigned", "reported"}
    assert {t["summary"] for t in watched.json()["items"]} == {"assigned", "reported"}
    assert outsider.status_code == 404


def test_history_endpoint(admin_a, make_ticket, world_a):
    # given
    ticket = make_ticket(summary="v1")
    admin_a.put(f"/api/v1/tickets/{ticket.key}", {"summary": "v2"})
    # when
    response = admin_a.get(f"/api/v1/tickets/{ticket.key}/history")
    # then
    items = response.json()["items"]
    assert response.json()["total"] == 4
    assert (items[-1]["field"], items[-1]["from_value"], items[-1]["to_value"]) == (
        "summary",
        "v1",
        "v2",
    )
    assert items[-1]["actor"]["id"] == world_a.admin.pk
