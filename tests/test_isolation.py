"""The two-tenant isolation sweep, generic over every operation of the tenant API.

Every operation in the OpenAPI schema is called (1) with tenant A's credentials on
tenant B's host and (2) on A's host with ids of B's objects; list endpoints are read
with A's credentials and must show nothing of B. A new endpoint joins automatically;
a new path parameter must be given a B object in `B_OBJECTS` or this sweep fails.
"""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from accounts.members.models import ApiToken, Group, Invitation, Membership
from accounts.tokens import secret_hash
from saas.api import tenant_api
from tests.conftest import Api, TenantWorld, token_for
from tickets.models import Project, Ticket, TicketLink
from tickets.services import ticket_create

B_MARKER = "bravo"


def _b_group(world: TenantWorld) -> int:
    group = Group.objects.create(name="bravo secret group", description="bravo only")
    group.members.add(Membership.objects.get(user=world.user))
    return group.pk


def _b_invitation(world: TenantWorld) -> int:
    return Invitation.objects.create(
        email="invitee@bravo.test",
        role="USER",
        token_hash=secret_hash("bravo-invite"),
        expires_at=timezone.now() + timedelta(days=1),
    ).pk


def _b_api_token(world: TenantWorld) -> int:
    return ApiToken.objects.create(
        membership=Membership.objects.get(user=world.admin),
        name="bravo token",
        prefix="bravo0000001",
        token_hash=secret_hash("tkt_bravo0000001_x"),
    ).pk


def _b_project(world: TenantWorld) -> int:
    project = Project.objects.filter(key="BRV").first()
    if project is None:
        project = Project.objects.create(key="BRV", name="bravo project", lead=world.admin)
    return project.pk


def _b_ticket(world: TenantWorld, summary: str = "bravo secret ticket") -> Ticket:
    project = Project.objects.get(pk=_b_project(world))
    actor = Membership.objects.select_related("user").get(user=world.admin)
    return ticket_create(project=project, actor=actor, data={"summary": summary})


def _b_link(world: TenantWorld) -> int:
    source, target = _b_ticket(world, "bravo one"), _b_ticket(world, "bravo two")
    return TicketLink.objects.create(source=source, target=target, type="blocks").pk


def _b_comment(world: TenantWorld) -> int:
    ticket = _b_ticket(world, "bravo commented")
    return ticket.comments.create(author=world.admin, body="bravo secret comment").pk


def _b_attachment(world: TenantWorld) -> int:
    # a row is enough: the sweep only checks that A cannot reach it
    ticket = _b_ticket(world, "bravo attached")
    return ticket.attachments.create(
        filename="bravo.txt",
        original_filename="bravo.txt",
        content_type="text/plain",
        size=5,
        checksum_sha256="0" * 64,
        storage_key=f"tenants/{world.schema}/attachments/bravo/bravo.txt",
        uploader=world.admin,
    ).pk


def _b_custom_field(world: TenantWorld) -> int:
    from tickets.models import CustomField

    field = CustomField.objects.create(name="bravo severity", type="select", options=["bravo"])
    Project.objects.get(pk=_b_project(world)).custom_fields.add(field)
    return field.pk


def _b_job(world: TenantWorld) -> str:
    from eventlog.models import Job

    job = Job.objects.create(
        kind="bulk", created_by_id=world.admin.pk, params={"note": "bravo"}, total=1
    )
    return str(job.pk)


def _b_workflow(world: TenantWorld) -> int:
    from tickets.models import Workflow
    from tickets.workflow_definition import template_definition
    from tickets.workflow_engine import workflow_create

    project = Project.objects.get(pk=_b_project(world))
    workflow = Workflow.objects.filter(project=project, name="bravo workflow").first()
    if workflow is None:
        workflow = workflow_create(
            project=project, name="bravo workflow", definition=template_definition("basic")
        )
    return workflow.pk


def _b_saved_filter(world: TenantWorld) -> int:
    from search.models import SavedFilter

    saved = SavedFilter.objects.create(
        name="bravo secret filter", jql='summary ~ "bravo"', owner=world.admin, is_public=True
    )
    return saved.pk


# One existing object of tenant B per path parameter name (created in B's schema).
def _b_dashboard(world: TenantWorld) -> int:
    from reports.models import Dashboard

    return Dashboard.objects.create(name="bravo dashboard", owner=world.admin, is_public=True).pk


def _b_gadget(world: TenantWorld) -> int:
    from reports.models import Dashboard, Gadget

    dashboard = Dashboard.objects.create(name="bravo gadgets", owner=world.admin)
    return Gadget.objects.create(
        dashboard=dashboard, type="filter_results", title="bravo", config={"jql": ""}
    ).pk


def _b_notification(world: TenantWorld) -> int:
    from notifications.models import Notification

    return Notification.objects.create(
        recipient=world.admin, kind="system", title="bravo secret notice", event_id="bravo"
    ).pk


def _b_unsubscribe_token(world: TenantWorld) -> str:
    from notifications.preferences import unsubscribe_token

    return unsubscribe_token(user_id=world.admin.pk, event_type="assigned")


def _b_board(world: TenantWorld) -> int:
    from tickets.models import Board, BoardColumn

    board = Board.objects.create(name="bravo board", kind="scrum", project_id=_b_project(world))
    BoardColumn.objects.create(board=board, name="bravo column", position=0, status_ids=[])
    return board.pk


def _b_board_column(world: TenantWorld) -> int:
    from tickets.models import Board

    return Board.objects.get(pk=_b_board(world)).columns.get().pk


def _b_sprint(world: TenantWorld) -> int:
    from tickets.models import Sprint

    return Sprint.objects.create(project_id=_b_project(world), name="bravo sprint").pk


def _b_worklog(world: TenantWorld) -> int:
    return (
        _b_ticket(world, "bravo logged")
        .worklogs.create(
            author=world.admin, time_spent=60, started_at=timezone.now(), comment="bravo"
        )
        .pk
    )


def _b_webhook(world: TenantWorld) -> int:
    from notifications.webhooks.models import WebhookEndpoint
    from notifications.webhooks.signing import webhook_secret_encrypt

    endpoint = WebhookEndpoint.objects.filter(description="bravo hook").first()
    if endpoint is None:
        endpoint = WebhookEndpoint.objects.create(
            url="https://bravo.example.com/hook",
            description="bravo hook",
            secret_encrypted=webhook_secret_encrypt("whsec_bravo-secret"),
            event_types=["*"],
            created_by=world.admin,
        )
    return endpoint.pk


def _b_webhook_delivery(world: TenantWorld) -> int:
    import uuid

    from notifications.webhooks.models import WebhookDelivery

    now = timezone.now()
    return WebhookDelivery.objects.create(
        endpoint_id=_b_webhook(world),
        event_id=uuid.uuid4(),
        event_type="ping",
        payload={"type": "ping", "data": "bravo"},
        next_attempt_at=now,
        retry_until=now + timedelta(days=1),
    ).pk


B_OBJECTS: dict[str, Callable[[TenantWorld], Any]] = {
    "projectId": _b_project,
    "ticketId": lambda world: _b_ticket(world).key,
    "linkId": _b_link,
    "userId": lambda world: world.user.pk,  # global id; not a member of tenant A
    "groupId": _b_group,
    "invitationId": _b_invitation,
    "tokenId": _b_api_token,
    "jobId": _b_job,
    "commentId": _b_comment,
    "attachmentId": _b_attachment,
    "fieldId": _b_custom_field,
    "workflowId": _b_workflow,
    "filterId": _b_saved_filter,
    "webhookId": _b_webhook,
    "deliveryId": _b_webhook_delivery,
    "boardId": _b_board,
    "columnId": _b_board_column,
    "sprintId": _b_sprint,
    "worklogId": _b_worklog,
    "notificationId": _b_notification,
    "unsubscribeToken": _b_unsubscribe_token,
    "dashboardId": _b_dashboard,
    "gadgetId": _b_gadget,
}

# Operations that need no credentials, and why that is safe.
PUBLIC_OPERATIONS: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/notifications/unsubscribe/{unsubscribeToken}"): "signed, tenant-bound token",
    ("POST", "/api/v1/notifications/unsubscribe/{unsubscribeToken}"): "signed, tenant-bound token",
    ("POST", "/api/v1/auth/login"): "checks membership of this tenant",
    ("POST", "/api/v1/auth/refresh"): "refresh tokens live in the tenant schema",
    ("POST", "/api/v1/auth/register"): "invitations live in the tenant schema",
    ("POST", "/api/v1/auth/forgot-password"): "answers the same for everyone",
    ("POST", "/api/v1/auth/reset-password"): "reset tokens are bound to a tenant schema",
    ("POST", "/api/v1/auth/mfa"): "the mfa token is a JWT bound to the tenant",
}


def _operations() -> list[tuple[str, str, dict]]:
    schema = tenant_api.get_openapi_schema()
    found = []
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            found.append((method.upper(), path, operation))
    return found


OPERATIONS = _operations()
COMPONENTS = tenant_api.get_openapi_schema()["components"].get("schemas", {})


def _example(schema: dict, depth: int = 0) -> Any:
    """A value that satisfies `schema` well enough to get past body validation."""
    if "$ref" in schema:
        return _example(COMPONENTS[schema["$ref"].rsplit("/", 1)[1]], depth + 1)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return _example(options[0], depth + 1)
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {
            name: _example(prop, depth + 1)
            for name, prop in schema.get("properties", {}).items()
            if name in schema.get("required", []) or depth == 0
        }
    if kind == "array":
        return []
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return 1
    if kind == "boolean":
        return False
    if schema.get("format") == "email":
        return "someone@alpha.test"
    if schema.get("format") == "date-time":
        return "2026-01-01T00:00:00Z"
    return "x" * max(1, schema.get("minLength", 1))


def _body(operation: dict) -> Any:
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        return _example(content["application/json"]["schema"])
    return None


def _fill(path: str, values: dict[str, Any]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", str(value))
    assert "{" not in path, f"no B object registered for a parameter of {path}: add to B_OBJECTS"
    return path


@pytest.fixture
def b_ids(world_b) -> dict[str, Any]:
    with schema_context(world_b.schema):
        ids = {name: make(world_b) for name, make in B_OBJECTS.items()}
    connection.set_schema_to_public()
    return ids


def _b_fingerprint(world_b) -> dict[str, int]:
    """Row counts of every table in B's schema: a write anywhere changes it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", [world_b.schema]
        )
        tables = [row[0] for row in cursor.fetchall()]
        counts = {}
        for table in tables:
            cursor.execute(f'SELECT count(*) FROM "{world_b.schema}"."{table}"')
            counts[table] = cursor.fetchone()[0]
    return counts


def _label(op: tuple[str, str, dict]) -> str:
    return f"{op[0]} {op[1]}"


def test_every_path_parameter_has_a_b_object():
    params = {
        param["name"]
        for _, _, operation in OPERATIONS
        for param in operation.get("parameters", [])
        if param["in"] == "path"
    }
    assert params <= set(B_OBJECTS), f"register B objects for {sorted(params - set(B_OBJECTS))}"


def test_every_unauthenticated_operation_is_known():
    open_ops = {(m, p) for m, p, op in OPERATIONS if not op.get("security")}
    assert open_ops <= set(PUBLIC_OPERATIONS), sorted(open_ops - set(PUBLIC_OPERATIONS))


@pytest.mark.parametrize("op", [op for op in OPERATIONS if op[2].get("security")], ids=_label)
def test_a_token_of_tenant_a_is_refused_on_tenant_b(op, world_a, world_b, b_ids):
    method, path, operation = op
    before = _b_fingerprint(world_b)
    jwt_of_a = Api(world_b.host, token_for(world_a, world_a.admin))
    # when
    response = jwt_of_a.request(method, _fill(path, b_ids), _body(operation))
    # then
    assert response.status_code == 401, response.content
    assert response.json()["error"]["code"] == "token_wrong_tenant"
    assert B_MARKER not in response.content.decode()
    assert _b_fingerprint(world_b) == before


@pytest.mark.parametrize("op", [op for op in OPERATIONS if "{" in op[1]], ids=_label)
def test_ids_of_tenant_b_objects_answer_404_on_tenant_a(op, admin_a, world_b, b_ids):
    method, path, operation = op
    before = _b_fingerprint(world_b)
    # when
    response = admin_a.request(method, _fill(path, b_ids), _body(operation))
    # then
    assert response.status_code == 404, (response.status_code, response.content)
    assert B_MARKER not in response.content.decode()
    assert _b_fingerprint(world_b) == before


@pytest.mark.parametrize(
    "op", [op for op in OPERATIONS if op[0] == "GET" and "{" not in op[1]], ids=_label
)
def test_lists_on_tenant_a_show_nothing_of_tenant_b(op, admin_a, b_ids):
    method, path, _ = op
    # when
    response = admin_a.request(method, path)
    # then
    assert response.status_code == 200, response.content
    assert B_MARKER not in response.content.decode().lower()


def test_an_api_token_of_tenant_a_is_refused_on_tenant_b(world_a, world_b):
    # given a personal API token of A's admin
    raw = "tkt_alpha0000001_secret"
    with schema_context(world_a.schema):
        ApiToken.objects.create(
            membership=Membership.objects.get(user=world_a.admin),
            name="ci",
            prefix="alpha0000001",
            token_hash=secret_hash(raw),
        )
    connection.set_schema_to_public()
    # when
    on_a = Api(world_a.host, raw).get("/api/v1/audit")
    on_b = Api(world_b.host, raw).get("/api/v1/audit")
    # then
    assert on_a.status_code == 200
    assert on_b.status_code == 401
