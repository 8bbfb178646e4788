"""Workflow configuration: templates, workflows and their versions, the workflow scheme,
and moving tickets off statuses a change removes (at once, or as a job)."""

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from accounts.members.models import Membership
from eventlog.models import AuditEntry, Job, OutboxEvent
from saas.errors import Invalid
from tickets import workflow_services
from tickets.models import (
    IssueType,
    Project,
    Status,
    Ticket,
    TicketHistory,
    Workflow,
    WorkflowSchemeEntry,
    WorkflowVersion,
)
from tickets.project_services import project_create
from tickets.workflow_engine import project_workflow_ensure

SOFTWARE = ["To Do", "In Progress", "In Review", "Done"]
BUG_TRACKING = ["Open", "In Progress", "Resolved", "Reopened", "Closed"]

REVIEW_FLOW = {
    "initial": "Backlog",
    "statuses": [
        {"name": "Backlog", "category": "TO_DO"},
        {"name": "In Progress"},
        {"name": "Done"},
    ],
    "transitions": [
        {
            "name": "Start",
            "from": ["Backlog"],
            "to": "In Progress",
            "conditions": [{"type": "role", "roles": ["ADMIN", "PROJECT_LEAD"]}],
            "post_functions": [{"type": "assign", "to": "current_user"}],
        },
        {
            "name": "Finish",
            "from": ["In Progress"],
            "to": "Done",
            "validators": [{"type": "required_fields", "fields": ["resolution"]}],
        },
        {
            "name": "Reopen",
            "from": ["Done"],
            "to": "Backlog",
            "post_functions": [{"type": "clear_resolution"}],
        },
    ],
}


def in_schema(world, fn: Callable[[], Any]) -> Any:
    with schema_context(world.schema):
        result = fn()
    connection.set_schema_to_public()
    return result


def software_of(world, project) -> Workflow:
    """The project's default workflow (made from the Software template on first use)."""
    return in_schema(world, lambda: project_workflow_ensure(project=project))


def status_id(world, name: str) -> int:
    return in_schema(world, lambda: Status.objects.get(name=name).pk)


def put_in_status(world, tickets: list[Ticket], name: str) -> None:
    def move() -> None:
        Ticket.objects.filter(pk__in=[t.pk for t in tickets]).update(
            status=Status.objects.get(name=name)
        )

    in_schema(world, move)


def ticket_states(world) -> list[tuple[str, str, int, bool]]:
    """(key, status, version, resolved) of every ticket, by key."""

    def read() -> list[tuple[str, str, int, bool]]:
        return [
            (t.key, t.status.name, t.version, t.resolved_at is not None)
            for t in Ticket.objects.select_related("status").order_by("number")
        ]

    return in_schema(world, read)


def status_history(world) -> list[tuple[str, str | None, str | None]]:
    """Status changes recorded after creation: (key, from, to), oldest first."""

    def read() -> list[tuple[str, str | None, str | None]]:
        rows = (
            TicketHistory.objects.filter(field="status", from_value__isnull=False)
            .order_by("ticket__number", "id")
            .values_list("ticket__key", "from_value", "to_value")
        )
        return list(rows)

    return in_schema(world, read)


def configuration(world) -> dict[str, Any]:
    """Everything a workflow write could change, to prove a refused one changed nothing."""

    def read() -> dict[str, Any]:
        return {
            "workflows": sorted(
                Workflow.objects.values_list("pk", "name", "description", "current__number")
            ),
            "versions": sorted(WorkflowVersion.objects.values_list("workflow_id", "number")),
            "scheme": sorted(
                WorkflowSchemeEntry.objects.values_list(
                    "project_id", "issue_type_id", "workflow_id"
                ),
                key=str,
            ),
            "statuses": sorted(Status.objects.values_list("name", flat=True)),
            "tickets": sorted(Ticket.objects.values_list("key", "status_id", "version")),
            "history": TicketHistory.objects.count(),
            "audit": AuditEntry.objects.filter(action__startswith="workflow").count(),
            "events": OutboxEvent.objects.filter(kind__startswith="workflow").count(),
            "jobs": Job.objects.count(),
        }

    return in_schema(world, read)


def names(body: dict) -> list[str]:
    return [s["name"] for s in body["definition"]["statuses"]]


@pytest.fixture
def ops_project(world_a) -> Project:
    """A project led by the tenant admin: lead_a and user_a do not administer it."""
    return in_schema(
        world_a,
        lambda: Project.objects.create(
            key="OPS", name="Operations", lead=world_a.admin, owner=world_a.admin
        ),
    )


@pytest.fixture
def bug_workflow(world_a, project_a) -> Workflow:
    """A Bug tracking workflow of CORE that no issue type uses yet."""

    def make() -> Workflow:
        project_workflow_ensure(project=project_a)
        actor = Membership.objects.select_related("user").get(user=world_a.admin)
        return workflow_services.workflow_add(
            project=project_a, actor=actor, name="Bugs", template="bug_tracking"
        )

    return in_schema(world_a, make)


# Templates and reading ---------------------------------------------------------------------


def test_templates_are_listed_with_their_definitions(user_a, world_a):
    # when
    response = user_a.get("/api/v1/workflow-templates")
    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert [(t["key"], t["name"]) for t in body] == [
        ("basic", "Basic workflow"),
        ("software", "Software workflow"),
        ("bug_tracking", "Bug tracking workflow"),
    ]
    assert body[0]["definition"] == {
        "initial": "To Do",
        "statuses": [
            {
                "id": status_id(world_a, "To Do"),
                "name": "To Do",
                "category": "TO_DO",
                "color": "#42526e",
            },
            {
                "id": status_id(world_a, "In Progress"),
                "name": "In Progress",
                "category": "IN_PROGRESS",
                "color": "#0052cc",
            },
            {
                "id": status_id(world_a, "Done"),
                "name": "Done",
                "category": "DONE",
                "color": "#00875a",
            },
        ],
        "transitions": [
            {
                "id": 11,
                "name": "To Do",
                "from": None,
                "to": "To Do",
                "conditions": [],
                "validators": [],
                "post_functions": [{"type": "clear_resolution"}],
            },
            {
                "id": 21,
                "name": "In Progress",
                "from": None,
                "to": "In Progress",
                "conditions": [],
                "validators": [],
                "post_functions": [{"type": "clear_resolution"}],
            },
            {
                "id": 31,
                "name": "Done",
                "from": None,
                "to": "Done",
                "conditions": [],
                "validators": [],
                "post_functions": [{"type": "set_resolution", "value": "Done"}],
            },
        ],
    }
    assert names(body[1]) == SOFTWARE
    # statuses the workspace does not have yet are shown without an id, and not created
    assert [(s["name"], s["id"]) for s in body[2]["definition"]["statuses"]] == [
        ("Open", None),
        ("In Progress", status_id(world_a, "In Progress")),
        ("Resolved", None),
        ("Reopened", None),
        ("Closed", None),
    ]
    assert in_schema(world_a, lambda: Status.objects.filter(name="Open").exists()) is False


def test_a_project_without_workflows_lists_its_default_software_workflow(
    user_a, world_a, project_a
):
    # when
    response = user_a.get("/api/v1/projects/CORE/workflows")
    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["total"], body["offset"], body["limit"]) == (1, 0, 50)
    (workflow,) = body["items"]
    stored = in_schema(world_a, lambda: Workflow.objects.get(project=project_a))
    assert {
        k: v for k, v in workflow.items() if k not in ("definition", "created_at", "updated_at")
    } == {
        "id": stored.pk,
        "name": "Software workflow",
        "description": "",
        "version": 1,
        "used_by": ["default"],
    }
    assert names(workflow) == SOFTWARE
    assert workflow["definition"]["initial"] == "To Do"
    assert [
        (t["id"], t["name"], t["from"], t["to"]) for t in workflow["definition"]["transitions"]
    ] == [
        (11, "To Do", None, "To Do"),
        (21, "In Progress", None, "In Progress"),
        (31, "In Review", None, "In Review"),
        (41, "Done", None, "Done"),
    ]
    scheme = user_a.get("/api/v1/projects/CORE/workflow-scheme")
    assert scheme.status_code == 200
    assert scheme.json() == {
        "default": {"id": stored.pk, "name": "Software workflow"},
        "mappings": {},
    }


def test_listing_workflows_costs_the_same_queries_for_one_or_many(
    user_a, world_a, project_a, bug_workflow
):
    # given one more workflow after a first count
    user_a.get("/api/v1/projects/CORE/workflows")  # the default exists from here on
    with CaptureQueriesContext(connection) as two:
        first = user_a.get("/api/v1/projects/CORE/workflows")
    in_schema(
        world_a,
        lambda: workflow_services.workflow_add(
            project=project_a,
            actor=Membership.objects.select_related("user").get(user=world_a.admin),
            name="Simple",
            template="basic",
        ),
    )
    # when
    with CaptureQueriesContext(connection) as three:
        second = user_a.get("/api/v1/projects/CORE/workflows")
    # then
    assert [w["name"] for w in first.json()["items"]] == ["Bugs", "Software workflow"]
    assert [w["name"] for w in second.json()["items"]] == ["Bugs", "Simple", "Software workflow"]
    assert len(three.captured_queries) == len(two.captured_queries)


# Creating ------------------------------------------------------------------------------------


def test_project_admin_creates_a_workflow_from_a_template(lead_a, world_a, project_a):
    # when
    response = lead_a.post(
        "/api/v1/projects/CORE/workflows",
        {"name": "  Bugs ", "description": "For bugs", "template": "bug_tracking"},
    )
    # then
    assert response.status_code == 201, response.content
    body = response.json()
    workflow = in_schema(world_a, lambda: Workflow.objects.get(name="Bugs"))
    assert response["Location"] == f"/api/v1/projects/CORE/workflows/{workflow.pk}"
    assert response["ETag"] == '"1"'
    assert (body["id"], body["name"], body["description"], body["version"], body["used_by"]) == (
        workflow.pk,
        "Bugs",
        "For bugs",
        1,
        [],
    )
    assert names(body) == BUG_TRACKING
    assert body["definition"]["initial"] == "Open"
    assert [(t["name"], t["from"], t["to"]) for t in body["definition"]["transitions"]] == [
        ("Start Progress", ["Open", "Reopened"], "In Progress"),
        ("Stop Progress", ["In Progress"], "Open"),
        ("Resolve Issue", ["Open", "In Progress", "Reopened"], "Resolved"),
        ("Close Issue", ["Open", "In Progress", "Reopened", "Resolved"], "Closed"),
        ("Reopen Issue", ["Resolved", "Closed"], "Reopened"),
    ]
    assert lead_a.get(f"/api/v1/projects/CORE/workflows/{workflow.pk}").json() == body

    def recorded() -> tuple[dict, dict]:
        entry = AuditEntry.objects.get(action="workflow.created")
        event = OutboxEvent.objects.get(kind="workflow.created")
        return entry.changes, event.payload

    assert in_schema(world_a, recorded) == (
        {
            "project": [None, "CORE"],
            "name": [None, "Bugs"],
            "version": [None, 1],
            "template": [None, "bug_tracking"],
        },
        {"project": "CORE", "workflow_id": workflow.pk, "version": 1},
    )


def test_project_admin_creates_a_workflow_from_a_definition(lead_a, world_a, project_a):
    # when
    body = {"name": "Review flow", "definition": REVIEW_FLOW}
    headers = {"Idempotency-Key": "review-flow-1"}
    response = lead_a.post("/api/v1/projects/CORE/workflows", body, headers=headers)
    retry = lead_a.post("/api/v1/projects/CORE/workflows", body, headers=headers)
    # then
    assert response.status_code == retry.status_code == 201, response.content
    assert retry.json() == response.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert in_schema(world_a, lambda: Workflow.objects.filter(name="Review flow").count()) == 1
    assert response.json()["definition"] == {
        "initial": "Backlog",
        "statuses": [
            {
                "id": status_id(world_a, "Backlog"),
                "name": "Backlog",
                "category": "TO_DO",
                "color": "#42526e",
            },
            {
                "id": status_id(world_a, "In Progress"),
                "name": "In Progress",
                "category": "IN_PROGRESS",
                "color": "#0052cc",
            },
            {
                "id": status_id(world_a, "Done"),
                "name": "Done",
                "category": "DONE",
                "color": "#00875a",
            },
        ],
        "transitions": [
            {
                "id": 11,
                "name": "Start",
                "from": ["Backlog"],
                "to": "In Progress",
                "conditions": [{"type": "role", "roles": ["ADMIN", "PROJECT_LEAD"]}],
                "validators": [],
                "post_functions": [{"type": "assign", "to": "current_user"}],
            },
            {
                "id": 21,
                "name": "Finish",
                "from": ["In Progress"],
                "to": "Done",
                "conditions": [],
                "validators": [{"type": "required_fields", "fields": ["resolution"]}],
                "post_functions": [],
            },
            {
                "id": 31,
                "name": "Reopen",
                "from": ["Done"],
                "to": "Backlog",
                "conditions": [],
                "validators": [],
                "post_functions": [{"type": "clear_resolution"}],
            },
        ],
    }


def test_an_invalid_definition_lists_every_problem_and_writes_nothing(admin_a, world_a, project_a):
    # given
    before = configuration(world_a)
    broken = {
        "statuses": [
            {"name": "Open", "category": "TO_DO"},
            {"name": "open", "category": "TO_DO"},
            {"name": "Closed", "category": "DONE"},
        ],
        "transitions": [
            {
                "name": "Close",
                "from": ["Open"],
                "to": "Closed",
                "validators": [{"type": "required_fields", "fields": ["severity_level"]}],
            },
            {
                "name": "Escalate",
                "from": ["Open"],
                "to": "Escalated",
                "conditions": [{"type": "moon_phase"}],
            },
        ],
    }
    # when
    response = admin_a.post(
        "/api/v1/projects/CORE/workflows", {"name": "Broken", "definition": broken}
    )
    # then
    assert response.status_code == 422, response.content
    assert response.json()["error"]["details"] == [
        {"field": "definition.statuses.1.name", "message": "Status 'open' is listed twice."},
        {"field": "definition.initial", "message": "A workflow needs an initial status."},
        {
            "field": "definition.transitions.0.validators.0",
            "message": "Validator on fields that do not exist: severity_level.",
        },
        {
            "field": "definition.transitions.1.to",
            "message": "Transition 'Escalate' goes to unknown status 'Escalated'.",
        },
        {
            "field": "definition.transitions.1.conditions.0",
            "message": "Unknown condition 'moon_phase'.",
        },
    ]
    assert configuration(world_a) == before


def test_unreachable_statuses_are_listed_and_nothing_is_written(admin_a, world_a, project_a):
    # given
    before = configuration(world_a)
    island = {
        "initial": "Open",
        "statuses": [
            {"name": "Open", "category": "TO_DO"},
            {"name": "Parked", "category": "TO_DO"},
            {"name": "Frozen", "category": "TO_DO"},
            {"name": "Closed", "category": "DONE"},
        ],
        "transitions": [{"name": "Close", "from": ["Open"], "to": "Closed"}],
    }
    # when
    response = admin_a.post(
        "/api/v1/projects/CORE/workflows", {"name": "Island", "definition": island}
    )
    # then
    assert response.status_code == 422, response.content
    assert response.json()["error"]["details"] == [
        {
            "field": "definition.statuses",
            "message": "Status 'Parked' cannot be reached from 'Open'.",
        },
        {
            "field": "definition.statuses",
            "message": "Status 'Frozen' cannot be reached from 'Open'.",
        },
    ]
    assert configuration(world_a) == before


def test_a_workflow_needs_exactly_one_of_template_and_definition_and_a_free_name(
    admin_a, world_a, project_a
):
    # given the default workflow exists
    admin_a.get("/api/v1/projects/CORE/workflows")
    before = configuration(world_a)
    # when
    neither = admin_a.post("/api/v1/projects/CORE/workflows", {"name": "Nothing"})
    both = admin_a.post(
        "/api/v1/projects/CORE/workflows",
        {"name": "Both", "template": "basic", "definition": REVIEW_FLOW},
    )
    unknown = admin_a.post("/api/v1/projects/CORE/workflows", {"name": "X", "template": "kanban"})
    taken = admin_a.post(
        "/api/v1/projects/CORE/workflows", {"name": "software WORKFLOW", "template": "basic"}
    )
    # then
    assert [r.status_code for r in (neither, both, unknown, taken)] == [422, 422, 422, 409]
    assert neither.json()["error"]["details"] == [
        {"field": "template", "message": "Send either a template or a definition."}
    ]
    assert both.json()["error"]["details"] == neither.json()["error"]["details"]
    assert unknown.json()["error"]["details"][0]["field"] == "template"
    assert taken.json()["error"]["message"] == (
        "CORE already has a workflow named 'software WORKFLOW'."
    )
    assert configuration(world_a) == before


# Updating ------------------------------------------------------------------------------------


def _definition_without(workflow_body: dict, *removed: str, add: list[dict] | None = None) -> dict:
    """The workflow's definition (output form, sent back as input) minus some statuses."""
    definition = workflow_body["definition"]
    keep = [s for s in definition["statuses"] if s["name"] not in removed]
    return {
        "initial": definition["initial"],
        "statuses": [*keep, *(add or [])],
        "transitions": [
            t
            for t in definition["transitions"]
            if t["to"] not in removed and not set(t["from"] or []) & set(removed)
        ]
        + [{"name": s["name"], "from": None, "to": s["name"]} for s in add or []],
    }


def test_a_new_definition_writes_version_2_and_keeps_version_1(admin_a, world_a, project_a):
    # given
    software = software_of(world_a, project_a)
    path = f"/api/v1/projects/CORE/workflows/{software.pk}"
    v1 = admin_a.get(path).json()
    definition = _definition_without(v1, add=[{"name": "QA", "category": "IN_PROGRESS"}])
    # when
    response = admin_a.put(
        path, {"definition": definition, "description": "With QA", "expected_version": 1}
    )
    # then
    assert response.status_code == 200, response.content
    assert response["ETag"] == '"2"'
    body = response.json()
    assert (body["version"], body["description"]) == (2, "With QA")
    assert names(body) == [*SOFTWARE, "QA"]
    versions = admin_a.get(f"{path}/versions").json()
    assert versions["total"] == 2
    assert [(v["number"], v["created_by"]) for v in versions["items"]] == [
        (1, None),
        (2, {"id": world_a.admin.pk, "username": "admin", "display_name": world_a.admin.name}),
    ]
    assert versions["items"][0]["definition"] == v1["definition"]
    assert versions["items"][1]["definition"] == body["definition"]
    assert admin_a.get(path)["ETag"] == '"2"'

    def recorded() -> tuple[dict, dict]:
        entry = AuditEntry.objects.get(action="workflow.updated")
        event = OutboxEvent.objects.get(kind="workflow.updated")
        return entry.changes, event.payload

    assert in_schema(world_a, recorded) == (
        {
            "description": ["", "With QA"],
            "version": [1, 2],
            "tickets_migrated": [None, 0],
            "tickets_to_migrate": [None, 0],
            "status_mapping": [None, {}],
            "job_id": [None, None],
        },
        {
            "project": "CORE",
            "workflow_id": software.pk,
            "version": 2,
            "fields": ["description", "version"],
            "tickets_migrated": 0,
            "tickets_to_migrate": 0,
            "status_mapping": {},
            "job_id": None,
            "ticket_ids": [],
        },
    )
    # when the same definition is sent again, nothing is written
    again = admin_a.put(path, {"definition": body["definition"]})
    assert (again.status_code, again.json()["version"]) == (200, 2)
    assert (
        in_schema(world_a, lambda: WorkflowVersion.objects.filter(workflow=software).count()) == 2
    )


def test_removing_statuses_in_use_without_a_mapping_lists_them_and_changes_nothing(
    admin_a, world_a, project_a, make_ticket
):
    # given two tickets in review, one in progress, one to do
    review_1, review_2, progress, _ = (make_ticket(summary=f"t{n}") for n in range(4))
    put_in_status(world_a, [review_1, review_2], "In Review")
    put_in_status(world_a, [progress], "In Progress")
    software = software_of(world_a, project_a)
    path = f"/api/v1/projects/CORE/workflows/{software.pk}"
    definition = _definition_without(admin_a.get(path).json(), "In Review", "In Progress")
    before = configuration(world_a)
    # when
    response = admin_a.put(
        path, {"definition": definition, "status_mapping": {"In Progress": "Nowhere"}}
    )
    # then
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "status_mapping_required"
    assert error["details"] == [
        {
            "field": "status_mapping.In Progress",
            "message": "1 ticket is in 'In Progress', which 'Software workflow' does not have: "
            "map it to one of To Do, Done ('Nowhere' is not one of them).",
            "status": "In Progress",
            "ticket_count": 1,
            "workflow": "Software workflow",
        },
        {
            "field": "status_mapping.In Review",
            "message": "2 tickets are in 'In Review', which 'Software workflow' does not have: "
            "map it to one of To Do, Done.",
            "status": "In Review",
            "ticket_count": 2,
            "workflow": "Software workflow",
        },
    ]
    assert configuration(world_a) == before


def test_a_mapping_moves_the_tickets_with_history_and_new_versions(
    admin_a, world_a, project_a, make_ticket, bug_workflow
):
    # given tickets in the statuses to remove, and a bug in progress on another workflow
    review_1, review_2, progress, _ = (make_ticket(summary=f"t{n}") for n in range(4))
    bug = make_ticket(summary="a bug", type="Bug")
    bug_type = in_schema(world_a, lambda: IssueType.objects.get(name="Bug"))
    in_schema(
        world_a,
        lambda: WorkflowSchemeEntry.objects.create(
            project=project_a, issue_type=bug_type, workflow=bug_workflow
        ),
    )
    put_in_status(world_a, [review_1, review_2], "In Review")
    put_in_status(world_a, [progress, bug], "In Progress")
    software = software_of(world_a, project_a)
    path = f"/api/v1/projects/CORE/workflows/{software.pk}"
    definition = _definition_without(admin_a.get(path).json(), "In Review", "In Progress")
    # when
    response = admin_a.put(
        path,
        {
            "definition": definition,
            "status_mapping": {"in review": "DONE", "In Progress": "To Do", "Unused": "Done"},
        },
        headers={"If-Match": '"1"'},
    )
    # then
    assert response.status_code == 200, response.content
    assert response.json()["version"] == 2
    assert response.json()["used_by"] == ["default"]
    assert ticket_states(world_a) == [
        ("CORE-1", "Done", 2, True),
        ("CORE-2", "Done", 2, True),
        ("CORE-3", "To Do", 2, False),
        ("CORE-4", "To Do", 1, False),
        ("CORE-5", "In Progress", 1, False),
    ]
    assert status_history(world_a) == [
        ("CORE-1", "In Review", "Done"),
        ("CORE-2", "In Review", "Done"),
        ("CORE-3", "In Progress", "To Do"),
    ]

    def recorded() -> tuple[dict, dict, list]:
        entry = AuditEntry.objects.get(action="workflow.updated")
        event = OutboxEvent.objects.get(kind="workflow.updated")
        refs = list(
            TicketHistory.objects.filter(field="status", from_value__isnull=False)
            .order_by("ticket__number")
            .values_list("from_ref", "to_ref", "actor_id")
        )
        return entry.changes, event.payload, refs

    changes, payload, refs = in_schema(world_a, recorded)
    review, in_progress = status_id(world_a, "In Review"), status_id(world_a, "In Progress")
    done, to_do = status_id(world_a, "Done"), status_id(world_a, "To Do")
    assert refs == [
        (review, done, world_a.admin.pk),
        (review, done, world_a.admin.pk),
        (in_progress, to_do, world_a.admin.pk),
    ]
    assert changes == {
        "version": [1, 2],
        "tickets_migrated": [None, 3],
        "tickets_to_migrate": [None, 3],
        "status_mapping": [None, {"In Progress": "To Do", "In Review": "Done"}],
        "job_id": [None, None],
    }
    assert payload["ticket_ids"] == [review_1.pk, review_2.pk, progress.pk]
    assert payload["tickets_migrated"] == 3
    # the moved tickets follow the new version
    transitions = admin_a.get(f"/api/v1/tickets/{review_1.key}/transitions").json()
    assert [t["name"] for t in transitions] == ["To Do"]


def test_more_tickets_than_the_limit_move_in_a_job_with_progress(
    admin_a, world_a, project_a, make_ticket, monkeypatch, django_capture_on_commit_callbacks
):
    # given five tickets in review, jobs above three tickets, chunks of two
    monkeypatch.setattr(workflow_services, "MIGRATION_SYNC_LIMIT", 3)
    monkeypatch.setattr(workflow_services, "MIGRATION_CHUNK_SIZE", 2)
    tickets = [make_ticket(summary=f"t{n}") for n in range(5)]
    put_in_status(world_a, tickets, "In Review")
    software = software_of(world_a, project_a)
    path = f"/api/v1/projects/CORE/workflows/{software.pk}"
    definition = _definition_without(admin_a.get(path).json(), "In Review")
    # when
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_a.put(
            path, {"definition": definition, "status_mapping": {"In Review": "Done"}}
        )
    # then the new version is saved and the tickets wait for the job
    assert response.status_code == 202, response.content
    body = response.json()
    job_id = body["job_id"]
    assert body["status_url"] == response["Location"] == f"/api/v1/jobs/{job_id}"
    assert (body["version"], names(body)) == (2, ["To Do", "In Progress", "Done"])
    assert {state for _, state, _, _ in ticket_states(world_a)} == {"In Review"}
    queued = admin_a.get(f"/api/v1/jobs/{job_id}").json()
    assert (queued["kind"], queued["status"], queued["total"], queued["processed"]) == (
        "workflow_migration",
        "queued",
        5,
        0,
    )
    # when the task runs (eagerly, as the worker would after commit)
    for callback in callbacks:
        callback()
    # then
    job = admin_a.get(f"/api/v1/jobs/{job_id}").json()
    assert {k: job[k] for k in ("status", "total", "processed", "succeeded", "failed")} == {
        "status": "succeeded",
        "total": 5,
        "processed": 5,
        "succeeded": 5,
        "failed": 0,
    }
    assert job["result"] == {"tickets_migrated": 5}
    assert job["created_at"] <= job["started_at"] <= job["finished_at"]
    assert ticket_states(world_a) == [(f"CORE-{n}", "Done", 2, True) for n in range(1, 6)]
    assert status_history(world_a) == [(f"CORE-{n}", "In Review", "Done") for n in range(1, 6)]

    def chunks() -> list[int]:
        events = OutboxEvent.objects.filter(kind="workflow.tickets_migrated").order_by("id")
        return [len(e.payload["ticket_ids"]) for e in events]

    assert in_schema(world_a, chunks) == [2, 2, 1]
    # when the task is delivered again, nothing changes
    from tickets.workflow_tasks import workflow_migration_job_run

    assert workflow_migration_job_run(world_a.schema, job_id) == "succeeded"
    connection.set_schema_to_public()
    assert ticket_states(world_a) == [(f"CORE-{n}", "Done", 2, True) for n in range(1, 6)]
    assert len(status_history(world_a)) == 5


def test_a_stale_expected_version_answers_412_and_changes_nothing(admin_a, world_a, project_a):
    # given version 2 saved by another admin
    software = software_of(world_a, project_a)
    path = f"/api/v1/projects/CORE/workflows/{software.pk}"
    v1 = admin_a.get(path).json()
    qa = _definition_without(v1, add=[{"name": "QA", "category": "IN_PROGRESS"}])
    assert admin_a.put(path, {"definition": qa, "expected_version": 1}).json()["version"] == 2
    before = configuration(world_a)
    without_review = _definition_without(v1, "In Review")
    # when
    stale_body = admin_a.put(path, {"definition": without_review, "expected_version": 1})
    stale_header = admin_a.put(path, {"definition": without_review}, headers={"If-Match": '"1"'})
    garbage = admin_a.put(path, {"description": "x"}, headers={"If-Match": "yesterday"})
    # then
    assert [r.status_code for r in (stale_body, stale_header, garbage)] == [412, 412, 400]
    assert stale_body.json()["error"]["details"] == {"current_version": 2}
    assert stale_header.json()["error"]["code"] == "precondition_failed"
    assert configuration(world_a) == before
    # when the version seen is the current one
    fresh = admin_a.put(path, {"description": "Reviewed"}, headers={"If-Match": '"2"'})
    # then
    assert (fresh.status_code, fresh.json()["version"]) == (200, 2)


# Deleting ------------------------------------------------------------------------------------


def test_a_workflow_in_use_is_not_deleted_and_an_unused_one_is(
    admin_a, world_a, project_a, bug_workflow
):
    # given
    software = software_of(world_a, project_a)
    # when
    in_use = admin_a.delete(f"/api/v1/projects/CORE/workflows/{software.pk}")
    unused = admin_a.delete(f"/api/v1/projects/CORE/workflows/{bug_workflow.pk}")
    # then
    assert in_use.status_code == 409
    assert in_use.json()["error"]["details"] == {"used_by": ["default"]}
    assert unused.status_code == 204
    assert in_schema(world_a, lambda: list(Workflow.objects.values_list("name", flat=True))) == [
        "Software workflow"
    ]
    assert (
        in_schema(
            world_a, lambda: WorkflowVersion.objects.filter(workflow_id=bug_workflow.pk).exists()
        )
        is False
    )
    assert admin_a.get(f"/api/v1/projects/CORE/workflows/{bug_workflow.pk}").status_code == 404
    assert in_schema(
        world_a, lambda: AuditEntry.objects.get(action="workflow.deleted").changes
    ) == {
        "project": ["CORE", None],
        "name": ["Bugs", None],
    }


# Scheme --------------------------------------------------------------------------------------


def test_moving_an_issue_type_to_another_workflow_maps_its_tickets(
    lead_a, world_a, project_a, make_ticket, bug_workflow
):
    # given bugs in To Do and In Review, a task in review that stays on Software
    make_ticket(summary="bug 1", type="Bug")
    bug_review = make_ticket(summary="bug 2", type="Bug")
    task = make_ticket(summary="task")
    put_in_status(world_a, [bug_review, task], "In Review")
    before = configuration(world_a)
    software = software_of(world_a, project_a)
    # when no mapping is sent
    refused = lead_a.put(
        "/api/v1/projects/CORE/workflow-scheme", {"mappings": {"bug": bug_workflow.pk}}
    )
    # then
    assert refused.status_code == 422, refused.content
    assert [
        (d["status"], d["ticket_count"], d["workflow"]) for d in refused.json()["error"]["details"]
    ] == [
        ("In Review", 1, "Bugs"),
        ("To Do", 1, "Bugs"),
    ]
    assert configuration(world_a) == before
    # when the statuses are mapped
    response = lead_a.put(
        "/api/v1/projects/CORE/workflow-scheme",
        {
            "mappings": {"bug": bug_workflow.pk},
            "status_mapping": {"To Do": "Open", "In Review": "In Progress"},
        },
    )
    # then
    assert response.status_code == 200, response.content
    assert response.json() == {
        "default": {"id": software.pk, "name": "Software workflow"},
        "mappings": {"Bug": {"id": bug_workflow.pk, "name": "Bugs"}},
    }
    assert ticket_states(world_a) == [
        ("CORE-1", "Open", 2, False),
        ("CORE-2", "In Progress", 2, False),
        ("CORE-3", "In Review", 1, False),
    ]
    assert status_history(world_a) == [
        ("CORE-1", "To Do", "Open"),
        ("CORE-2", "In Review", "In Progress"),
    ]
    workflows = {
        w["name"]: w["used_by"]
        for w in lead_a.get("/api/v1/projects/CORE/workflows").json()["items"]
    }
    assert workflows == {"Bugs": ["Bug"], "Software workflow": ["default"]}
    assert in_schema(
        world_a, lambda: AuditEntry.objects.get(action="workflow_scheme.updated").changes
    ) == {
        "mappings.Bug": ["Software workflow", "Bugs"],
        "tickets_migrated": [None, 2],
        "tickets_to_migrate": [None, 2],
        "status_mapping": [None, {"To Do": "Open", "In Review": "In Progress"}],
        "job_id": [None, None],
    }
    # when bugs go back to the default: In Progress exists there, Open must be mapped
    back = lead_a.put(
        "/api/v1/projects/CORE/workflow-scheme",
        {"mappings": {"Bug": None}, "status_mapping": {"Open": "To Do"}},
    )
    # then
    assert back.status_code == 200, back.content
    assert back.json()["mappings"] == {}
    assert ticket_states(world_a)[:2] == [
        ("CORE-1", "To Do", 3, False),
        ("CORE-2", "In Progress", 2, False),
    ]


def test_changing_the_default_workflow_maps_the_tickets_of_unmapped_types(
    admin_a, world_a, project_a, make_ticket, bug_workflow
):
    # given a task in progress and a task to do
    progress, _ = make_ticket(summary="one"), make_ticket(summary="two")
    put_in_status(world_a, [progress], "In Progress")
    # when
    response = admin_a.put(
        "/api/v1/projects/CORE/workflow-scheme",
        {"default": bug_workflow.pk, "status_mapping": {"To Do": "Open"}},
    )
    # then
    assert response.status_code == 200, response.content
    assert response.json() == {"default": {"id": bug_workflow.pk, "name": "Bugs"}, "mappings": {}}
    assert ticket_states(world_a) == [
        ("CORE-1", "In Progress", 1, False),
        ("CORE-2", "Open", 2, False),
    ]


def test_a_scheme_change_moving_many_tickets_runs_as_a_job(
    admin_a,
    world_a,
    project_a,
    make_ticket,
    bug_workflow,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    # given three bugs to move, jobs above two tickets
    monkeypatch.setattr(workflow_services, "MIGRATION_SYNC_LIMIT", 2)
    for n in range(3):
        make_ticket(summary=f"bug {n}", type="Bug")
    # when
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_a.put(
            "/api/v1/projects/CORE/workflow-scheme",
            {"mappings": {"Bug": bug_workflow.pk}, "status_mapping": {"To Do": "Open"}},
        )
    # then the scheme is changed at once, the tickets by the job
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["mappings"] == {"Bug": {"id": bug_workflow.pk, "name": "Bugs"}}
    assert body["status_url"] == f"/api/v1/jobs/{body['job_id']}"
    assert {status for _, status, _, _ in ticket_states(world_a)} == {"To Do"}
    for callback in callbacks:
        callback()
    job = admin_a.get(body["status_url"]).json()
    assert (job["status"], job["total"], job["processed"]) == ("succeeded", 3, 3)
    assert ticket_states(world_a) == [(f"CORE-{n}", "Open", 2, False) for n in range(1, 4)]


def test_invalid_scheme_changes_are_listed_and_change_nothing(
    admin_a, world_a, project_a, ops_project
):
    # given a workflow of another project
    ops_workflow = software_of(world_a, ops_project)
    software_of(world_a, project_a)
    before = configuration(world_a)
    # when
    response = admin_a.put(
        "/api/v1/projects/CORE/workflow-scheme",
        {"default": ops_workflow.pk, "mappings": {"Saga": None, "Bug": 999_999_999}},
    )
    # then
    assert response.status_code == 422, response.content
    assert response.json()["error"]["details"] == [
        {"field": "default", "message": f"No workflow {ops_workflow.pk} in CORE."},
        {"field": "mappings.Saga", "message": "Unknown issue type 'Saga'."},
        {"field": "mappings.Bug", "message": "No workflow 999999999 in CORE."},
    ]
    assert configuration(world_a) == before


# Who may ------------------------------------------------------------------------------------


def test_members_who_do_not_administer_the_project_get_403_and_change_nothing(
    user_a, lead_a, admin_a, world_a, ops_project
):
    # given OPS, led by the admin, with its default workflow
    software = software_of(world_a, ops_project)
    path = f"/api/v1/projects/OPS/workflows/{software.pk}"
    before = configuration(world_a)
    for api in (user_a, lead_a):
        # when
        responses = [
            api.post("/api/v1/projects/OPS/workflows", {"name": "Mine", "template": "basic"}),
            api.put(path, {"name": "Renamed"}),
            api.delete(path),
            api.put("/api/v1/projects/OPS/workflow-scheme", {"default": software.pk}),
        ]
        # then
        assert [r.status_code for r in responses] == [403] * 4
        assert configuration(world_a) == before
        # reading is fine
        assert api.get("/api/v1/projects/OPS/workflows").json()["total"] == 1
        assert api.get(path).status_code == 200
        assert api.get(f"{path}/versions").json()["total"] == 1
        assert api.get("/api/v1/projects/OPS/workflow-scheme").status_code == 200


def test_a_private_projects_workflows_are_404_for_non_members(
    user_a, lead_a, world_a, private_project_a
):
    # given
    workflow = software_of(world_a, private_project_a)
    path = f"/api/v1/projects/SECRET/workflows/{workflow.pk}"
    before = configuration(world_a)
    # when
    responses = [
        user_a.get("/api/v1/projects/SECRET/workflows"),
        user_a.post("/api/v1/projects/SECRET/workflows", {"name": "x", "template": "basic"}),
        user_a.get(path),
        user_a.get(f"{path}/versions"),
        user_a.put(path, {"name": "Mine"}),
        user_a.delete(path),
        user_a.get("/api/v1/projects/SECRET/workflow-scheme"),
        user_a.put("/api/v1/projects/SECRET/workflow-scheme", {"default": workflow.pk}),
        user_a.get(f"/api/v1/projects/{private_project_a.pk}/workflows/{workflow.pk}"),
    ]
    # then
    assert [r.status_code for r in responses] == [404] * 9
    assert "Software workflow" not in "".join(r.content.decode() for r in responses)
    assert configuration(world_a) == before
    # a member sees them
    assert lead_a.get("/api/v1/projects/SECRET/workflows").json()["total"] == 1


def test_a_workflow_is_only_found_through_its_own_project(admin_a, world_a, project_a, ops_project):
    # given
    ops_workflow = software_of(world_a, ops_project)
    # when
    responses = [
        admin_a.get(f"/api/v1/projects/CORE/workflows/{ops_workflow.pk}"),
        admin_a.put(f"/api/v1/projects/CORE/workflows/{ops_workflow.pk}", {"name": "x"}),
        admin_a.delete(f"/api/v1/projects/CORE/workflows/{ops_workflow.pk}"),
    ]
    # then
    assert [r.status_code for r in responses] == [404] * 3
    assert responses[0].json()["error"]["code"] == "workflow_not_found"


# Bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix", "body", "status"),
    [
        ("GET", "/workflows/abc", None, 404),
        ("GET", "/workflows/99999999999999999999999", None, 404),
        ("GET", "/workflows/%C2%B2", None, 404),
        ("GET", "/workflows/1%00", None, 404),
        ("POST", "/workflows", {"name": "x", "definition": "not an object"}, 422),
        ("POST", "/workflows", {"name": "x", "definition": {"statuses": "many"}}, 422),
        ("POST", "/workflows", {"name": "x", "definition": {"statuses": [{"name": 5}]}}, 422),
        (
            "POST",
            "/workflows",
            {
                "name": "x",
                "definition": {
                    "initial": "A",
                    "statuses": [{"name": "A", "category": "TO_DO"}],
                    "transitions": [
                        {"name": "t", "to": "A", "conditions": [{"type": "role", "roles": [{}]}]}
                    ],
                },
            },
            422,
        ),
        (
            "POST",
            "/workflows",
            {"name": "x", "definition": {"statuses": [{"name": "A", "color": "blue"}]}},
            422,
        ),
        (
            "POST",
            "/workflows",
            {"name": "x", "definition": {"statuses": [{"name": "A" * 61}]}},
            422,
        ),
        ("POST", "/workflows", {"name": "x\u0000", "template": "basic"}, 422),
        ("POST", "/workflows", {"name": "x", "template": "basic", "colour": "red"}, 422),
        (
            "POST",
            "/workflows",
            {
                "name": "x",
                "definition": {
                    "initial": "A",
                    "statuses": [{"name": "A", "category": "SOMEDAY"}],
                    "transitions": [{"id": 2**40, "name": "t", "to": "A"}],
                },
            },
            422,
        ),
        (
            "POST",
            "/workflows",
            {
                "name": "x",
                "definition": {
                    "initial": "A",
                    "statuses": [{"name": "A", "category": "TO_DO"}],
                    "transitions": [
                        {
                            "name": "t",
                            "to": "A",
                            "conditions": [{"type": "permission", "permission": ["a"]}],
                            "post_functions": [{"type": ["assign"], "to": {"a": 1}}],
                        }
                    ],
                },
            },
            422,
        ),
        (
            "POST",
            "/workflows",
            {
                "name": "x",
                "definition": {
                    "initial": "A",
                    "statuses": [{"name": "A", "category": "SOMEDAY"}],
                    "transitions": [{"name": "t", "to": "A"}],
                },
            },
            422,
        ),
        ("PUT", "/workflow-scheme", {"mappings": {"Bug": "Bugs"}}, 422),
        ("PUT", "/workflow-scheme", {"default": 2**70}, 422),
        ("PUT", "/workflow-scheme", {"status_mapping": {"A": 1}}, 422),
    ],
)
def test_bad_input_is_answered_without_a_server_error(
    admin_a, world_a, project_a, method, suffix, body, status
):
    # given
    software_of(world_a, project_a)
    before = configuration(world_a)
    # when
    response = admin_a.request(method, f"/api/v1/projects/CORE{suffix}", body)
    # then
    assert response.status_code == status, response.content
    assert configuration(world_a) == before


def test_status_mapping_without_a_definition_is_refused(admin_a, world_a, project_a):
    # given
    software = software_of(world_a, project_a)
    # when
    response = admin_a.put(
        f"/api/v1/projects/CORE/workflows/{software.pk}", {"status_mapping": {"To Do": "Done"}}
    )
    # then
    assert response.status_code == 422
    assert response.json()["error"]["details"] == [
        {"field": "status_mapping", "message": "A status_mapping goes with a new definition."}
    ]


# Projects start with a workflow ------------------------------------------------------------


def test_a_new_project_gets_the_software_workflow_by_default(admin_a, world_a):
    # when
    created = admin_a.post("/api/v1/projects", {"key": "WEB", "name": "Website"})
    # then
    assert created.status_code == 201, created.content
    workflows = in_schema(
        world_a,
        lambda: list(
            WorkflowSchemeEntry.objects.filter(project__key="WEB").values_list(
                "issue_type_id", "workflow__name", "workflow__current__number"
            )
        ),
    )
    assert workflows == [(None, "Software workflow", 1)]


def test_a_project_can_start_from_another_workflow_template(world_a):
    # given
    def create(template: str) -> list[str]:
        actor = Membership.objects.select_related("user").get(user=world_a.admin)
        project = project_create(actor=actor, key="BUGS", name="Bugs", workflow_template=template)
        entry = WorkflowSchemeEntry.objects.select_related("workflow__current").get(
            project=project, issue_type=None
        )
        return [
            entry.workflow.name,
            *(s["name"] for s in entry.workflow.current.definition["statuses"]),
        ]

    # when
    made = in_schema(world_a, lambda: create("bug_tracking"))
    # then
    assert made == ["Bug tracking workflow", *BUG_TRACKING]

    # when the template does not exist
    def refused() -> Any:
        with pytest.raises(Invalid) as caught:
            create("kanban")
        return caught.value.details

    assert in_schema(world_a, refused) == [
        {
            "field": "workflow_template",
            "message": "Workflow templates are basic, software, bug_tracking.",
        }
    ]
