"""Bulk changes: per-ticket results in one request, and jobs for more than 100 tickets."""

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from accounts.members.models import Membership
from eventlog.models import AuditEntry, Job, OutboxEvent
from tickets.bulk import bulk_job_create, bulk_job_process
from tickets.models import Project, ProjectMember, Ticket, TicketHistory
from tickets.tasks import bulk_job_run


@pytest.fixture
def mixed_tickets(world_a, make_ticket, project_a, private_project_a):
    """Tickets user_a may change (CORE-1, CORE-2), may only read (VIEW-1), may change but
    where `components: ["api"]` is invalid (OPS-1: no such component) and cannot see
    (SECRET-1)."""
    with schema_context(world_a.schema):
        view = Project.objects.create(key="VIEW", name="Viewers only")
        ProjectMember.objects.create(project=view, user=world_a.user, role="VIEWER")
        ops = Project.objects.create(key="OPS", name="Operations")
    connection.set_schema_to_public()
    make_ticket(summary="one")
    make_ticket(summary="two")
    make_ticket(project=view, summary="view")
    make_ticket(project=ops, summary="ops")
    make_ticket(project=private_project_a, as_user=world_a.lead, summary="secret")


def _state(world, keys):
    """What a bulk change could have touched, per ticket."""
    with schema_context(world.schema):
        rows = {
            t.key: {
                "components": sorted(c.name for c in t.components.all()),
                "labels": list(t.labels),
                "status": t.status.name,
                "assignee": t.assignee_id,
                "version": t.version,
                "history": TicketHistory.objects.filter(ticket=t).count(),
            }
            for t in Ticket.objects.filter(key__in=keys).select_related("status")
        }
    connection.set_schema_to_public()
    return rows


def test_bulk_reports_each_ticket_and_changes_only_the_allowed_ones(user_a, world_a, mixed_tickets):
    # given
    before = _state(world_a, ["VIEW-1", "OPS-1", "SECRET-1"])
    # when
    response = user_a.post(
        "/api/v1/tickets/bulk",
        {
            "tickets": ["CORE-1", "core-2", "SECRET-1", "VIEW-1", "OPS-1", "NOPE-9"],
            "operation": {"type": "set_field", "field": "components", "value": ["api"]},
        },
    )
    # then
    assert response.status_code == 200, response.content
    assert response.json() == {
        "results": [
            {"ticket": "CORE-1", "status": "ok", "error": None},
            {"ticket": "CORE-2", "status": "ok", "error": None},
            {
                "ticket": "SECRET-1",
                "status": "not_found",
                "error": {
                    "code": "not_found",
                    "message": "Ticket SECRET-1 does not exist or you cannot see it.",
                    "details": None,
                },
            },
            {
                "ticket": "VIEW-1",
                "status": "forbidden",
                "error": {
                    "code": "forbidden",
                    "message": "Project VIEW is read-only for you.",
                    "details": {"permission": "write:tickets"},
                },
            },
            {
                "ticket": "OPS-1",
                "status": "invalid",
                "error": {
                    "code": "invalid",
                    "message": "The ticket has invalid fields.",
                    "details": [{"field": "components", "message": "Unknown component 'api'."}],
                },
            },
            {
                "ticket": "NOPE-9",
                "status": "not_found",
                "error": {
                    "code": "not_found",
                    "message": "Ticket NOPE-9 does not exist or you cannot see it.",
                    "details": None,
                },
            },
        ],
        "succeeded": 2,
        "failed": 4,
    }
    after = _state(world_a, ["CORE-1", "CORE-2", "VIEW-1", "OPS-1", "SECRET-1"])
    assert after["CORE-1"]["components"] == after["CORE-2"]["components"] == ["api"]
    assert after["CORE-1"]["version"] == after["CORE-2"]["version"] == 2
    assert {key: after[key] for key in before} == before
    with schema_context(world_a.schema):
        assert sorted(
            AuditEntry.objects.filter(action="ticket.updated").values_list("target_id", flat=True)
        ) == ["CORE-1", "CORE-2"]
        assert OutboxEvent.objects.filter(kind="ticket.updated").count() == 2
        summary = AuditEntry.objects.get(action="ticket.bulk_changed")
        assert summary.actor_id == world_a.user.pk
        assert summary.changes["succeeded"] == [None, 2]
        assert summary.changes["failed"] == [None, 4]


def test_bulk_labels_assign_and_transition(admin_a, world_a, make_ticket):
    # given
    first = make_ticket(labels=["ui"])
    make_ticket(labels=["ui", "legacy"])
    keys = ["CORE-1", "CORE-2"]
    # when (tickets by id or key)
    added = admin_a.post(
        "/api/v1/tickets/bulk",
        {"tickets": [first.pk, "CORE-2"], "operation": {"type": "add_label", "label": "urgent"}},
    )
    removed = admin_a.post(
        "/api/v1/tickets/bulk",
        {"tickets": keys, "operation": {"type": "remove_label", "label": "ui"}},
    )
    assigned = admin_a.post(
        "/api/v1/tickets/bulk",
        {"tickets": keys, "operation": {"type": "assign", "assignee": "user_alpha"}},
    )
    moved = admin_a.post(
        "/api/v1/tickets/bulk",
        {"tickets": keys, "operation": {"type": "transition", "status": "Done"}},
    )
    # then
    assert [r.json()["succeeded"] for r in (added, removed, assigned, moved)] == [2, 2, 2, 2]
    assert [r["ticket"] for r in added.json()["results"]] == [str(first.pk), "CORE-2"]
    state = _state(world_a, keys)
    assert state["CORE-1"]["labels"] == ["urgent"]
    assert state["CORE-2"]["labels"] == ["legacy", "urgent"]
    assert {s["assignee"] for s in state.values()} == {world_a.user.pk}
    assert {s["status"] for s in state.values()} == {"Done"}
    with schema_context(world_a.schema):
        assert list(Ticket.objects.values_list("resolution__name", flat=True)) == ["Done", "Done"]


def test_bulk_delete_needs_project_admin(user_a, admin_a, world_a, make_ticket):
    # given
    make_ticket()
    make_ticket()
    body = {"tickets": ["CORE-1", "CORE-2"], "operation": {"type": "delete"}}
    # when
    refused = user_a.post("/api/v1/tickets/bulk", body)
    # then
    assert refused.status_code == 200
    assert [r["status"] for r in refused.json()["results"]] == ["forbidden", "forbidden"]
    with schema_context(world_a.schema):
        assert Ticket.objects.count() == 2
    connection.set_schema_to_public()
    # when
    done = admin_a.post("/api/v1/tickets/bulk", body)
    # then
    assert done.json()["succeeded"] == 2
    with schema_context(world_a.schema):
        assert not Ticket.objects.exists()
        assert OutboxEvent.objects.filter(kind="ticket.deleted").count() == 2


@pytest.mark.parametrize(
    ("operation", "field", "message"),
    [
        ({"type": "explode"}, "operation", None),
        (
            {"type": "set_field", "field": "colour", "value": "red"},
            "operation.field",
            "Unknown field 'colour'; one of: summary, description, type, priority, assignee, "
            "reporter, labels, components, fix_versions, due_date, story_points, "
            "original_estimate, remaining_estimate, resolution, parent, epic, custom_fields.",
        ),
        (
            {"type": "set_field", "field": "priority", "value": "Urgent"},
            "operation.priority",
            "Unknown priority 'Urgent'.",
        ),
        (
            {"type": "transition", "status": "Shipped"},
            "operation.status",
            "Unknown status 'Shipped'.",
        ),
        (
            {"type": "assign", "assignee": "nobody"},
            "operation.assignee",
            "'nobody' is not an active member of this workspace.",
        ),
        (
            {"type": "set_field", "field": "summary", "value": "nul\u0000"},
            "operation.value",
            "Text must not contain NUL characters or lone surrogates.",
        ),
        (
            {"type": "add_label", "label": "two words"},
            "operation.labels",
            "Label 'two words' must be 1-100 characters without spaces.",
        ),
    ],
)
def test_an_impossible_operation_is_refused_before_anything_changes(
    admin_a, world_a, make_ticket, operation, field, message
):
    # given
    make_ticket(labels=["ui"])
    before = _state(world_a, ["CORE-1"])
    # when
    response = admin_a.post("/api/v1/tickets/bulk", {"tickets": ["CORE-1"], "operation": operation})
    # then
    assert response.status_code == 422, response.content
    detail = response.json()["error"]["details"][0]
    assert detail["field"].startswith(field)
    if message is not None:
        assert detail["message"] == message
    assert _state(world_a, ["CORE-1"]) == before
    with schema_context(world_a.schema):
        assert not Job.objects.exists()
        assert not AuditEntry.objects.filter(action="ticket.bulk_changed").exists()


def test_more_than_10000_tickets_are_refused(admin_a):
    # when
    response = admin_a.post(
        "/api/v1/tickets/bulk",
        {"tickets": [f"CORE-{n}" for n in range(1, 10_002)], "operation": {"type": "delete"}},
    )
    # then
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "tickets"


@pytest.fixture
def many_tickets(world_a, make_ticket):
    for n in range(105):
        make_ticket(summary=f"ticket {n}", labels=["old"])
    return [f"CORE-{n}" for n in range(1, 106)]


def test_more_than_100_tickets_run_as_a_job_with_progress_and_failures(
    lead_a, world_a, many_tickets, django_capture_on_commit_callbacks
):
    # given two refs that fail among 105 that succeed
    refs = [*many_tickets[:50], "GONE-1", *many_tickets[50:], "CORE-999"]
    # when
    with django_capture_on_commit_callbacks() as callbacks:
        response = lead_a.post(
            "/api/v1/tickets/bulk",
            {"tickets": refs, "operation": {"type": "add_label", "label": "triaged"}},
        )
    # then it is queued, nothing done yet
    assert response.status_code == 202, response.content
    job_id = response.json()["job_id"]
    assert response.json() == {"job_id": job_id, "status_url": f"/api/v1/jobs/{job_id}"}
    assert response["Location"] == f"/api/v1/jobs/{job_id}"
    queued = lead_a.get(f"/api/v1/jobs/{job_id}").json()
    assert (queued["status"], queued["total"], queued["processed"]) == ("queued", 107, 0)
    assert queued["started_at"] is None
    # when the task runs (eagerly, as the worker would after commit)
    for callback in callbacks:
        callback()
    # then
    job = lead_a.get(f"/api/v1/jobs/{job_id}").json()
    assert {k: job[k] for k in ("kind", "status", "total", "processed", "succeeded", "failed")} == {
        "kind": "bulk",
        "status": "partial",
        "total": 107,
        "processed": 107,
        "succeeded": 105,
        "failed": 2,
    }
    assert job["failures"] == [
        {
            "item": "GONE-1",
            "code": "not_found",
            "message": "Ticket GONE-1 does not exist or you cannot see it.",
            "details": None,
        },
        {
            "item": "CORE-999",
            "code": "not_found",
            "message": "Ticket CORE-999 does not exist or you cannot see it.",
            "details": None,
        },
    ]
    assert job["error"] == ""
    assert job["created_at"] <= job["started_at"] <= job["finished_at"]
    with schema_context(world_a.schema):
        assert set(map(tuple, Ticket.objects.values_list("labels", flat=True))) == {
            ("old", "triaged")
        }
        assert OutboxEvent.objects.filter(kind="job.finished").count() == 1
        # when it runs again (a redelivered task), nothing changes
        versions = list(Ticket.objects.order_by("pk").values_list("version", flat=True))
        assert bulk_job_run(world_a.schema, job_id) == "partial"
        assert list(Ticket.objects.order_by("pk").values_list("version", flat=True)) == versions


def test_a_resumed_job_skips_what_was_already_done(world_a, many_tickets):
    # given a job whose first chunk was done before its worker died
    lead = world_a.member(world_a.lead)
    with schema_context(world_a.schema):
        job = bulk_job_create(
            actor=lead, refs=many_tickets, operation={"type": "add_label", "label": "x"}
        )
        Job.objects.filter(pk=job.pk).update(
            status="running", processed=100, succeeded=100, result={"cursor": 100, "failed": 0}
        )
        # when
        finished = bulk_job_process(job_id=str(job.pk))
        # then only the rest was changed
        assert (finished.status, finished.processed, finished.succeeded) == ("succeeded", 105, 105)
        changed = Ticket.objects.filter(labels__contains=["x"]).order_by("number")
        assert list(changed.values_list("key", flat=True)) == many_tickets[100:]


def test_a_job_is_visible_to_its_creator_and_admins_only(
    lead_a, user_a, admin_a, world_a, many_tickets
):
    # given
    response = lead_a.post(
        "/api/v1/tickets/bulk",
        {"tickets": [*many_tickets, "CORE-999"], "operation": {"type": "add_label", "label": "x"}},
    )
    job_id = response.json()["job_id"]
    # when
    mine, admins, other = (api.get(f"/api/v1/jobs/{job_id}") for api in (lead_a, admin_a, user_a))
    garbage = lead_a.get("/api/v1/jobs/not-a-uuid")
    # then
    assert (mine.status_code, admins.status_code) == (200, 200)
    assert other.status_code == 404
    assert other.json()["error"]["code"] == "job_not_found"
    assert job_id not in other.content.decode()
    assert garbage.status_code == 404


def test_a_job_of_a_member_deactivated_meanwhile_fails_without_changes(
    lead_a, world_a, many_tickets, django_capture_on_commit_callbacks
):
    # given a queued job
    with django_capture_on_commit_callbacks() as callbacks:
        response = lead_a.post(
            "/api/v1/tickets/bulk",
            {"tickets": many_tickets, "operation": {"type": "add_label", "label": "late"}},
        )
    job_id = response.json()["job_id"]
    # and its creator deactivated before it runs
    with schema_context(world_a.schema):
        Membership.objects.filter(user=world_a.lead).update(is_active=False)
        # when
        for callback in callbacks:
            callback()
        # then
        job = Job.objects.get(pk=job_id)
        assert (job.status, job.processed, job.error) == (
            "failed",
            0,
            "The member who started this job is inactive.",
        )
        assert not Ticket.objects.filter(labels__contains=["late"]).exists()
