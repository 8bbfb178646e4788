import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections
from django_tenants.utils import schema_context

from accounts.members.models import Membership
from tickets.models import Component, CustomField, Project, ProjectMember, Version
from tickets.services import ticket_create


@pytest.fixture
def project_a(world_a) -> Project:
    with schema_context(world_a.schema):
        project = Project.objects.create(
            key="CORE", name="Core platform", lead=world_a.lead, owner=world_a.admin
        )
        Component.objects.create(project=project, name="api")
        Component.objects.create(project=project, name="ui")
        Version.objects.create(project=project, name="1.0")
        severity = CustomField.objects.create(
            name="Severity", type="select", options=["S1", "S2", "S3"]
        )
        customer = CustomField.objects.create(name="Customer", type="text")
        project.custom_fields.add(severity, customer)
    connection.set_schema_to_public()
    return project


@pytest.fixture
def private_project_a(world_a) -> Project:
    """A private project where only the lead is a member."""
    with schema_context(world_a.schema):
        project = Project.objects.create(
            key="SECRET", name="Secret plans", is_private=True, lead=world_a.lead
        )
        ProjectMember.objects.create(project=project, user=world_a.lead, role="ADMIN")
    connection.set_schema_to_public()
    return project


@pytest.fixture
def make_ticket(world_a, project_a) -> Callable[..., Any]:
    def make(project: Project | None = None, as_user=None, **data: Any):
        with schema_context(world_a.schema):
            actor = Membership.objects.select_related("user").get(user=as_user or world_a.admin)
            data.setdefault("summary", "Something is broken")
            ticket = ticket_create(project=project or project_a, actor=actor, data=data)
        connection.set_schema_to_public()
        return ticket

    return make


def in_own_connection(fn: Callable[[], Any]) -> Any:
    """Run `fn` in a thread with its own database connection, outside the test's
    transaction: what it writes is committed."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = fn()
        except BaseException as exc:
            result["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")
