"""The workflow engine: available transitions, conditions, validators, post-functions."""

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from accounts.members.models import Group, Membership
from eventlog.models import AuditEntry, OutboxEvent
from tickets.models import Comment, ProjectMember, Ticket, TicketHistory, WorkflowSchemeEntry
from tickets.workflow_definition import TEMPLATES, DefinitionProblems, definition_compile
from tickets.workflow_engine import project_workflow_ensure, workflow_create


@pytest.fixture
def use_workflow(world_a, project_a):
    """Make `definition` the default workflow of project CORE."""

    def use(definition):
        with schema_context(world_a.schema):
            workflow = workflow_create(project=project_a, name="Custom", definition=definition)
            WorkflowSchemeEntry.objects.update_or_create(
                project=project_a, issue_type=None, defaults={"workflow": workflow}
            )
        connection.set_schema_to_public()
        return workflow

    return use


def _flow(*transitions):
    names = {t["to"] for t in transitions}
    return {
        "statuses": [
            {"name": "To Do", "category": "TO_DO"},
            *(
                [{"name": "In Progress", "category": "IN_PROGRESS"}]
                if "In Progress" in names
                else []
            ),
            {"name": "Done", "category": "DONE"},
        ],
        "initial": "To Do",
        "transitions": [
            {"name": "Back", "from": None, "to": "To Do"},
            *transitions,
        ],
    }


def _ids(api, key):
    return {t["name"]: t["id"] for t in api.get(f"/api/v1/tickets/{key}/transitions").json()}


def _state(world, key):
    with schema_context(world.schema):
        t = Ticket.objects.select_related("status", "resolution", "assignee").get(key=key)
        state = (
            t.status.name,
            getattr(t.resolution, "name", None),
            getattr(t.assignee, "username", None),
            t.version,
        )
    connection.set_schema_to_public()
    return state


def test_software_template_lists_every_other_status(admin_a, make_ticket):
    # given the default (Software) workflow
    ticket = make_ticket()
    # when
    response = admin_a.get(f"/api/v1/tickets/{ticket.key}/transitions")
    # then
    assert response.status_code == 200
    assert [
        (t["name"], t["to"]["name"], t["to"]["category"], t["fields"]) for t in response.json()
    ] == [
        ("In Progress", "In Progress", "IN_PROGRESS", []),
        ("In Review", "In Review", "IN_PROGRESS", []),
        ("Done", "Done", "DONE", []),
    ]


def test_transition_to_done_resolves_and_back_reopens(admin_a, make_ticket, world_a):
    # given
    ticket = make_ticket()
    ids = _ids(admin_a, ticket.key)
    # when
    done = admin_a.post(
        f"/api/v1/tickets/{ticket.key}/transitions",
        {"id": ids["Done"], "comment": "Shipped in 1.2"},
        headers={"If-Match": '"1"'},
    )
    back = admin_a.post(
        f"/api/v1/tickets/{ticket.key}/transitions", {"id": _ids(admin_a, ticket.key)["To Do"]}
    )
    # then
    assert done.status_code == 200, done.content
    assert done["ETag"] == '"2"'
    assert done.json()["status"]["name"] == "Done"
    assert done.json()["resolution"]["name"] == "Done"
    assert done.json()["resolved_at"] is not None
    assert back.json()["status"]["name"] == "To Do"
    assert back.json()["resolution"] is None
    assert back.json()["resolved_at"] is None
    with schema_context(world_a.schema):
        assert list(Comment.objects.filter(ticket=ticket).values_list("body", flat=True)) == [
            "Shipped in 1.2"
        ]
        assert AuditEntry.objects.filter(action="ticket.transitioned").count() == 2
        assert OutboxEvent.objects.filter(kind="ticket.transitioned").count() == 2


def test_stale_if_match_on_a_transition_is_412_and_changes_nothing(admin_a, make_ticket, world_a):
    ticket = make_ticket()
    ids = _ids(admin_a, ticket.key)
    response = admin_a.post(
        f"/api/v1/tickets/{ticket.key}/transitions",
        {"id": ids["Done"]},
        headers={"If-Match": '"7"'},
    )
    assert response.status_code == 412
    assert _state(world_a, ticket.key) == ("To Do", None, None, 1)


@pytest.mark.parametrize(
    ("condition", "allowed", "refused"),
    [
        ({"type": "role", "roles": ["ADMIN"]}, "admin_a", "user_a"),
        ({"type": "group", "groups": ["release-managers"]}, "lead_a", "user_a"),
        ({"type": "project_role", "roles": ["ADMIN"]}, "lead_a", "user_a"),
        ({"type": "assignee"}, "user_a", "admin_a"),
        ({"type": "reporter"}, "lead_a", "user_a"),
        ({"type": "permission", "permission": "admin:project"}, "lead_a", "user_a"),
    ],
)
def test_conditions_decide_who_sees_and_takes_a_transition(
    request, use_workflow, make_ticket, world_a, project_a, condition, allowed, refused
):
    # given a guarded transition, a group with the lead, the lead as project admin and
    # reporter, and the user as assignee
    with schema_context(world_a.schema):
        group = Group.objects.create(name="Release-Managers")
        group.members.add(Membership.objects.get(user=world_a.lead))
        ProjectMember.objects.create(project=project_a, user=world_a.lead, role="ADMIN")
    connection.set_schema_to_public()
    use_workflow(
        _flow({"name": "Ship", "from": ["To Do"], "to": "Done", "conditions": [condition]})
    )
    ticket = make_ticket(as_user=world_a.lead, assignee="user_alpha")
    yes, no = request.getfixturevalue(allowed), request.getfixturevalue(refused)
    # when
    seen_by_refused = _ids(no, ticket.key)
    refused_attempt = no.post(
        f"/api/v1/tickets/{ticket.key}/transitions", {"id": _ids(yes, ticket.key)["Ship"]}
    )
    state_after_refusal = _state(world_a, ticket.key)
    taken = yes.post(
        f"/api/v1/tickets/{ticket.key}/transitions", {"id": _ids(yes, ticket.key)["Ship"]}
    )
    # then
    assert "Ship" not in seen_by_refused
    assert refused_attempt.status_code == 403
    assert refused_attempt.json()["error"]["code"] == "transition_forbidden"
    assert state_after_refusal[0] == "To Do"
    assert state_after_refusal[3] == 1
    assert taken.status_code == 200, taken.content
    assert taken.json()["status"]["name"] == "Done"


def test_required_fields_validator_lists_missing_fields_and_accepts_them_with_the_transition(
    admin_a, use_workflow, make_ticket, world_a
):
    # given
    use_workflow(
        _flow(
            {
                "name": "Resolve",
                "from": ["To Do"],
                "to": "Done",
                "validators": [
                    {"type": "required_fields", "fields": ["resolution", "assignee"]},
                    {"type": "comment_required"},
                ],
            }
        )
    )
    ticket = make_ticket()
    transition = next(
        t
        for t in admin_a.get(f"/api/v1/tickets/{ticket.key}/transitions").json()
        if t["name"] == "Resolve"
    )
    # when
    refused = admin_a.post(f"/api/v1/tickets/{ticket.key}/transitions", {"id": transition["id"]})
    after_refusal = _state(world_a, ticket.key)
    accepted = admin_a.post(
        f"/api/v1/tickets/{ticket.key}/transitions",
        {
            "id": transition["id"],
            "fields": {"resolution": "Won't Do", "assignee": "lead_alpha"},
            "comment": "Not reproducible on 2.0",
        },
    )
    # then
    assert transition["fields"] == ["resolution", "assignee", "comment"]
    assert refused.status_code == 422
    assert refused.json()["error"]["details"] == [
        {"field": "resolution", "message": "resolution is required."},
        {"field": "assignee", "message": "assignee is required."},
        {"field": "comment", "message": "A comment is required."},
    ]
    assert after_refusal == ("To Do", None, None, 1)
    assert accepted.status_code == 200, accepted.content
    assert _state(world_a, ticket.key) == ("Done", "Won't Do", "lead_alpha", 2)
    with schema_context(world_a.schema):
        fields = list(
            TicketHistory.objects.filter(ticket=ticket)
            .order_by("id")
            .values_list("field", flat=True)
        )
    assert fields[-4:] == ["assignee", "resolution", "status", "comment"]


def test_field_matches_and_subtasks_done_validators(admin_a, use_workflow, make_ticket, world_a):
    # given
    use_workflow(
        _flow(
            {
                "name": "Close",
                "from": ["To Do"],
                "to": "Done",
                "validators": [
                    {"type": "field_matches", "field": "priority", "value": "High"},
                    {"type": "subtasks_done"},
                ],
            }
        )
    )
    parent = make_ticket(summary="parent")
    child = make_ticket(summary="child", type="Sub-task", parent=parent.key)
    close = _ids(admin_a, parent.key)["Close"]
    # when
    refused = admin_a.post(f"/api/v1/tickets/{parent.key}/transitions", {"id": close})
    admin_a.post(
        f"/api/v1/tickets/{child.key}/transitions", {"id": close, "fields": {"priority": "High"}}
    )
    accepted = admin_a.post(
        f"/api/v1/tickets/{parent.key}/transitions", {"id": close, "fields": {"priority": "high"}}
    )
    # then
    assert refused.json()["error"]["details"] == [
        {"field": "priority", "message": "priority must be High."},
        {"field": "subtasks", "message": f"Sub-tasks are not done: {child.key}."},
    ]
    assert accepted.status_code == 200, accepted.content


def test_post_functions_assign_set_fields_comment_and_resolution(
    user_a, use_workflow, make_ticket, world_a
):
    # given
    use_workflow(
        _flow(
            {
                "name": "Take",
                "from": ["To Do"],
                "to": "In Progress",
                "post_functions": [
                    {"type": "assign", "to": "current_user"},
                    {"type": "set_field", "field": "priority", "value": "Highest"},
                    {"type": "add_comment", "body": "Picked up."},
                ],
            },
            {
                "name": "Hand back",
                "from": ["In Progress"],
                "to": "To Do",
                "post_functions": [{"type": "assign", "to": "reporter"}],
            },
            {
                "name": "Drop",
                "from": ["To Do"],
                "to": "Done",
                "post_functions": [
                    {"type": "assign", "to": "unassigned"},
                    {"type": "set_resolution", "value": "Duplicate"},
                ],
            },
        )
    )
    ticket = make_ticket(as_user=world_a.lead)
    # when / then
    user_a.post(
        f"/api/v1/tickets/{ticket.key}/transitions", {"id": _ids(user_a, ticket.key)["Take"]}
    )
    assert _state(world_a, ticket.key) == ("In Progress", None, "user_alpha", 2)
    with schema_context(world_a.schema):
        assert Ticket.objects.get(pk=ticket.pk).priority.name == "Highest"
        assert list(Comment.objects.filter(ticket=ticket).values_list("body", "author_id")) == [
            ("Picked up.", world_a.user.pk)
        ]
    connection.set_schema_to_public()
    user_a.post(
        f"/api/v1/tickets/{ticket.key}/transitions", {"id": _ids(user_a, ticket.key)["Hand back"]}
    )
    assert _state(world_a, ticket.key) == ("To Do", None, "lead_alpha", 3)
    user_a.post(
        f"/api/v1/tickets/{ticket.key}/transitions", {"id": _ids(user_a, ticket.key)["Drop"]}
    )
    assert _state(world_a, ticket.key) == ("Done", "Duplicate", None, 4)


def test_unknown_and_unavailable_transitions(admin_a, use_workflow, make_ticket, world_a):
    # given
    workflow = use_workflow(
        _flow(
            {"name": "Finish", "from": ["In Progress"], "to": "Done"},
            {"name": "Start", "from": ["To Do"], "to": "In Progress"},
        )
    )
    ticket = make_ticket()
    finish = next(
        t["id"] for t in workflow.current.definition["transitions"] if t["name"] == "Finish"
    )
    # when
    unknown = admin_a.post(f"/api/v1/tickets/{ticket.key}/transitions", {"id": 999})
    unavailable = admin_a.post(f"/api/v1/tickets/{ticket.key}/transitions", {"id": finish})
    # then
    assert unknown.status_code == 404
    assert unavailable.status_code == 422
    assert unavailable.json()["error"]["code"] == "transition_unavailable"
    assert [t["name"] for t in unavailable.json()["error"]["details"]["allowed"]] == ["Start"]
    assert _state(world_a, ticket.key) == ("To Do", None, None, 1)


def test_patch_status_needs_exactly_one_transition(admin_a, use_workflow, make_ticket, world_a):
    # given two ways into Done and none into In Progress from To Do
    use_workflow(
        _flow(
            {"name": "Fix", "from": ["To Do"], "to": "Done"},
            {"name": "Wontfix", "from": ["To Do"], "to": "Done"},
            {"name": "Start", "from": ["Done"], "to": "In Progress"},
        )
    )
    ticket = make_ticket()
    # when
    ambiguous = admin_a.patch(f"/api/v1/tickets/{ticket.key}/status", {"status": "Done"})
    unreachable = admin_a.patch(f"/api/v1/tickets/{ticket.key}/status", {"status": "In Progress"})
    # then
    assert ambiguous.status_code == 422
    assert ambiguous.json()["error"]["code"] == "status_not_reachable"
    assert [t["name"] for t in ambiguous.json()["error"]["details"]["allowed"]] == [
        "Fix",
        "Wontfix",
    ]
    assert unreachable.status_code == 422
    assert _state(world_a, ticket.key) == ("To Do", None, None, 1)


def test_project_viewers_get_no_transitions(user_a, make_ticket, world_a, project_a):
    with schema_context(world_a.schema):
        ProjectMember.objects.create(project=project_a, user=world_a.user, role="VIEWER")
    connection.set_schema_to_public()
    ticket = make_ticket()
    assert user_a.get(f"/api/v1/tickets/{ticket.key}/transitions").json() == []


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_every_template_compiles_and_new_tickets_start_in_its_initial_status(
    template, world_a, project_a, make_ticket
):
    # given
    with schema_context(world_a.schema):
        WorkflowSchemeEntry.objects.filter(project=project_a).delete()
        workflow = project_workflow_ensure(project=project_a, template=template)
        initial = workflow.current.definition["initial"]
    connection.set_schema_to_public()
    # when
    ticket = make_ticket()
    # then
    assert ticket.status_id == initial


def test_bug_tracking_resolve_needs_a_resolution(admin_a, world_a, project_a, make_ticket):
    with schema_context(world_a.schema):
        WorkflowSchemeEntry.objects.filter(project=project_a).delete()
        project_workflow_ensure(project=project_a, template="bug_tracking")
    connection.set_schema_to_public()
    ticket = make_ticket()
    ids = _ids(admin_a, ticket.key)
    assert sorted(ids) == ["Close Issue", "Resolve Issue", "Start Progress"]
    refused = admin_a.post(
        f"/api/v1/tickets/{ticket.key}/transitions", {"id": ids["Resolve Issue"]}
    )
    resolved = admin_a.post(
        f"/api/v1/tickets/{ticket.key}/transitions",
        {"id": ids["Resolve Issue"], "fields": {"resolution": "Done"}},
    )
    assert refused.status_code == 422
    assert resolved.json()["status"]["name"] == "Resolved"
    assert resolved.json()["resolution"]["name"] == "Done"


def test_invalid_definitions_list_every_problem(world_a):
    with schema_context(world_a.schema), pytest.raises(DefinitionProblems) as caught:
        definition_compile(
            {
                "statuses": [
                    {"name": "Open", "category": "TO_DO"},
                    {"name": "Open"},
                    {"name": "Limbo", "category": "IN_PROGRESS"},
                ],
                "initial": "Nowhere",
                "transitions": [
                    {"name": "Go", "from": ["Open"], "to": "Elsewhere"},
                    {
                        "name": "Check",
                        "from": ["Open"],
                        "to": "Open",
                        "validators": [{"type": "required_fields", "fields": ["colour"]}],
                        "conditions": [{"type": "moon_phase"}],
                    },
                ],
            }
        )
    assert caught.value.problems == [
        {"field": "statuses.1.name", "message": "Status 'Open' is listed twice."},
        {"field": "initial", "message": "The initial status 'Nowhere' is not one of the statuses."},
        {
            "field": "transitions.0.to",
            "message": "Transition 'Go' goes to unknown status 'Elsewhere'.",
        },
        {"field": "transitions.1.conditions.0", "message": "Unknown condition 'moon_phase'."},
        {
            "field": "transitions.1.validators.0",
            "message": "Validator on fields that do not exist: colour.",
        },
    ]


@pytest.mark.parametrize(
    ("rule_kind", "rule", "message"),
    [
        ("conditions", {"type": ["role"]}, "Unknown condition None."),
        (
            "conditions",
            {"type": "role", "roles": [{"x": 1}]},
            "Roles must be a list among ADMIN, PROJECT_LEAD, USER.",
        ),
        (
            "conditions",
            {"type": "permission", "permission": ["admin:tenant"]},
            "Unknown permission ['admin:tenant'].",
        ),
        (
            "post_functions",
            {"type": "assign", "to": ["reporter"]},
            "`to` must be one of current_user, reporter, unassigned.",
        ),
        (
            "post_functions",
            {"type": "set_resolution", "value": "Fixed-ish"},
            "Unknown resolution 'Fixed-ish'.",
        ),
    ],
)
def test_malformed_rules_are_problems_not_crashes(world_a, rule_kind, rule, message):
    definition = _flow({"name": "Go", "from": ["To Do"], "to": "Done", rule_kind: [rule]})
    with schema_context(world_a.schema), pytest.raises(DefinitionProblems) as caught:
        definition_compile(definition)
    assert caught.value.problems == [{"field": f"transitions.1.{rule_kind}.0", "message": message}]


def test_unreachable_statuses_are_listed_with_the_other_problems(world_a):
    with schema_context(world_a.schema), pytest.raises(DefinitionProblems) as caught:
        definition_compile(
            {
                "statuses": [
                    {"name": "To Do", "category": "TO_DO"},
                    {"name": "Island", "category": "DONE"},
                ],
                "initial": "To Do",
                "transitions": [{"name": "Nowhere", "from": ["To Do"], "to": "Atlantis"}],
            }
        )
    assert caught.value.problems == [
        {
            "field": "transitions.0.to",
            "message": "Transition 'Nowhere' goes to unknown status 'Atlantis'.",
        },
        {"field": "statuses", "message": "Status 'Island' cannot be reached from 'To Do'."},
    ]
