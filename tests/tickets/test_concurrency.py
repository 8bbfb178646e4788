"""Real concurrent transactions, each on its own connection, in a throwaway tenant
(committed data cannot live in the shared tenants, whose tests roll back)."""

import threading

import pytest
from django.db import connection, connections
from django_tenants.utils import schema_context

from accounts.members.models import Membership
from accounts.models import User
from saas.errors import PreconditionFailed
from tenants.models import Tenant
from tenants.services import tenant_signup
from tests.conftest import PASSWORD
from tests.tickets.conftest import in_own_connection
from tickets.models import Project, Ticket, TicketHistory
from tickets.services import ticket_create, ticket_update
from tickets.workflow_engine import ticket_transition, transitions_available

WORKERS = 8


@pytest.fixture
def race_tenant():
    def provision():
        result = tenant_signup(
            company_name="Race",
            subdomain="race-test",
            admin_email="admin@race.test",
            admin_password=PASSWORD,
            admin_name="Race Admin",
        )
        with schema_context(result.tenant.schema_name):
            project = Project.objects.create(key="RACE", name="Race")
        return result.tenant.schema_name, result.admin.pk, project.pk

    schema, admin_id, project_id = in_own_connection(provision)
    yield schema, admin_id, project_id

    def drop():
        Tenant.objects.get(schema_name=schema).delete(force_drop=True)
        # The ORM's delete would look for memberships in every schema; the schema is gone.
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {User._meta.db_table} WHERE id = %s", [admin_id])

    in_own_connection(drop)


def _run_concurrently(fn, count):
    barrier = threading.Barrier(count)
    results, errors = [], []

    def work(i):
        try:
            barrier.wait()
            results.append(fn(i))
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def test_concurrent_creates_get_unique_gapless_keys(race_tenant):
    schema, admin_id, project_id = race_tenant

    def create(i):
        with schema_context(schema):
            actor = Membership.objects.select_related("user").get(user_id=admin_id)
            project = Project.objects.get(pk=project_id)
            return ticket_create(project=project, actor=actor, data={"summary": f"t{i}"}).key

    # when
    keys, errors = _run_concurrently(create, WORKERS)
    # then
    assert errors == []
    assert sorted(keys, key=lambda k: int(k.split("-")[1])) == [
        f"RACE-{n}" for n in range(1, WORKERS + 1)
    ]

    def stored():
        with schema_context(schema):
            return (
                sorted(Ticket.objects.values_list("number", flat=True)),
                Project.objects.get(pk=project_id).ticket_counter,
            )

    assert in_own_connection(stored) == (list(range(1, WORKERS + 1)), WORKERS)


def test_concurrent_edits_with_the_same_if_match_let_exactly_one_win(race_tenant):
    schema, admin_id, project_id = race_tenant

    def seed():
        with schema_context(schema):
            actor = Membership.objects.select_related("user").get(user_id=admin_id)
            return ticket_create(
                project=Project.objects.get(pk=project_id),
                actor=actor,
                data={"summary": "original"},
            ).pk

    ticket_id = in_own_connection(seed)

    def edit(i):
        with schema_context(schema):
            actor = Membership.objects.select_related("user").get(user_id=admin_id)
            ticket = Ticket.objects.get(pk=ticket_id)
            return ticket_update(
                ticket=ticket, actor=actor, data={"summary": f"edit {i}"}, expected_version=1
            ).summary

    # when
    winners, errors = _run_concurrently(edit, WORKERS)
    # then
    assert len(winners) == 1
    assert len(errors) == WORKERS - 1
    assert all(isinstance(e, PreconditionFailed) for e in errors)

    def stored():
        with schema_context(schema):
            ticket = Ticket.objects.get(pk=ticket_id)
            return ticket.summary, ticket.version

    assert in_own_connection(stored) == (winners[0], 2)


def test_concurrent_transitions_on_one_ticket_let_exactly_one_win(race_tenant):
    schema, admin_id, project_id = race_tenant

    def seed():
        with schema_context(schema):
            actor = Membership.objects.select_related("user").get(user_id=admin_id)
            ticket = ticket_create(
                project=Project.objects.get(pk=project_id),
                actor=actor,
                data={"summary": "contended"},
            )
            ids = {t.name: t.id for t in transitions_available(ticket=ticket, member=actor)}
            return ticket.pk, ids

    ticket_id, ids = in_own_connection(seed)
    targets = ["In Progress", "Done"] * (WORKERS // 2)

    def move(i):
        with schema_context(schema):
            actor = Membership.objects.select_related("user").get(user_id=admin_id)
            ticket = Ticket.objects.get(pk=ticket_id)
            return ticket_transition(
                ticket=ticket, actor=actor, transition_id=ids[targets[i]], expected_version=1
            ).status.name

    # when
    winners, errors = _run_concurrently(move, WORKERS)
    # then
    assert len(winners) == 1
    assert [type(e).__name__ for e in errors] == ["PreconditionFailed"] * (WORKERS - 1), errors

    def stored():
        with schema_context(schema):
            ticket = Ticket.objects.select_related("status").get(pk=ticket_id)
            return (
                ticket.status.name,
                ticket.version,
                TicketHistory.objects.filter(ticket=ticket, field="status").count(),
            )

    assert in_own_connection(stored) == (winners[0], 2, 2)
