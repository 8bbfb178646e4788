"""Indexing from the outbox into the tenant's OpenSearch index: every change lands,
stale writes never win, deleted tickets go, and Postgres tenants cost nothing."""

from datetime import timedelta

from django.db import connection
from django_tenants.utils import schema_context

from search.engine.backend import index_alias
from search.engine.client import OPENSEARCH, search_engine
from search.engine.documents import micros
from search.engine.indexing import engine_write, search_index_tickets
from tests.search.conftest import engine_keys, indexed_documents, member_of
from tickets.content_services import comment_create
from tickets.models import Ticket
from tickets.services import ticket_create, ticket_delete, ticket_update, watcher_add
from tickets.workflow_engine import ticket_move_to_status


def _ticket(world, key: str) -> Ticket:
    """Inside `committed` (the tenant's schema)."""
    return Ticket.objects.select_related("project").get(key=key)


def test_every_kind_of_change_reaches_the_index_through_the_outbox(
    world_a, project_a, engine_a, committed
):
    admin = lambda: member_of(world_a, world_a.admin)  # noqa: E731
    # when a ticket is created
    committed(
        lambda: ticket_create(
            project=project_a, actor=admin(), data={"summary": "Checkout fails", "labels": ["ui"]}
        )
    )
    # then its document is there, versioned by updated_at in microseconds
    docs = indexed_documents(engine_a, world_a)
    ticket = committed(lambda: _ticket(world_a, "CORE-1"))
    assert list(docs) == ["CORE-1"]
    assert docs["CORE-1"]["summary"] == "Checkout fails"
    assert docs["CORE-1"]["labels"] == ["ui"]
    assert docs["CORE-1"]["status_name"] == "To Do"
    assert docs["CORE-1"]["_version"] == micros(ticket.updated_at)

    # when it is edited, transitioned, commented and watched
    committed(
        lambda: ticket_update(
            ticket=_ticket(world_a, "CORE-1"), actor=admin(), data={"summary": "Payment fails"}
        )
    )
    committed(
        lambda: ticket_move_to_status(
            ticket=_ticket(world_a, "CORE-1"), actor=admin(), status_ref="In Progress"
        )
    )
    committed(
        lambda: comment_create(
            ticket=_ticket(world_a, "CORE-1"), actor=admin(), body="The indexes were rebuilt"
        )
    )
    committed(
        lambda: watcher_add(
            ticket=_ticket(world_a, "CORE-1"), actor=admin(), user_ref=world_a.user.pk
        )
    )
    # then the document follows each change
    doc = indexed_documents(engine_a, world_a)["CORE-1"]
    ticket = committed(lambda: _ticket(world_a, "CORE-1"))
    assert doc["summary"] == "Payment fails"
    assert doc["status_name"] == "In Progress"
    assert doc["comments"] == [{"body": "The indexes were rebuilt"}]
    assert doc["watcher_ids"] == sorted([world_a.admin.pk, world_a.user.pk])
    assert doc["_version"] == micros(ticket.updated_at)
    assert engine_keys(world_a, world_a.user, 'comment ~ "index" AND status = "In Progress"') == [
        "CORE-1"
    ]

    # when it is deleted
    committed(lambda: ticket_delete(ticket=_ticket(world_a, "CORE-1"), actor=admin()))
    # then so is its document
    assert indexed_documents(engine_a, world_a) == {}


def test_a_stale_write_is_refused_and_never_overwrites_a_newer_document(
    world_a, project_a, engine_a, committed
):
    # given a ticket indexed at its current version
    committed(
        lambda: ticket_create(
            project=project_a,
            actor=member_of(world_a, world_a.admin),
            data={"summary": "Current summary"},
        )
    )
    current = indexed_documents(engine_a, world_a)["CORE-1"]["_version"]
    # when a late task writes a state loaded before the last change (an older version)
    with schema_context(world_a.schema):
        stale = Ticket.objects.select_related("project", "issue_type", "status", "priority").get(
            key="CORE-1"
        )
        stale.summary = "Old summary"
        stale.updated_at -= timedelta(seconds=5)
        alias = index_alias(world_a.schema)
        engine_write(engine=engine_a, indices=[alias], tickets=[stale], deleted=[])
        # and the same current state is written twice (replayed event)
        search_index_tickets(ticket_ids=[stale.pk])
        search_index_tickets(ticket_ids=[stale.pk])
    connection.set_schema_to_public()
    # then the newer document stands (the engine answered 409, which is not an error)
    doc = indexed_documents(engine_a, world_a)["CORE-1"]
    assert (doc["summary"], doc["_version"]) == ("Current summary", current)


def test_a_tenant_searching_on_postgres_does_no_indexing_work(
    world_a, project_a, engine_settings, committed
):
    # given tenant alpha on the default backend (postgres), with an engine configured
    engine = search_engine(OPENSEARCH, engine_settings.SEARCH_URL)
    # when tickets change through the outbox
    committed(
        lambda: ticket_create(
            project=project_a, actor=member_of(world_a, world_a.admin), data={"summary": "x"}
        )
    )
    with schema_context(world_a.schema):
        written = search_index_tickets(ticket_ids=list(Ticket.objects.values_list("pk", flat=True)))
    connection.set_schema_to_public()
    # then nothing was written and no index exists
    assert written == 0
    assert engine.alias_targets(alias=index_alias(world_a.schema)) == []


def test_deleting_a_project_removes_its_documents(world_a, project_a, engine_a, committed):
    from tickets.project_services import project_delete

    # given two indexed tickets of CORE
    for summary in ("one", "two"):
        committed(
            lambda summary=summary: ticket_create(
                project=project_a,
                actor=member_of(world_a, world_a.admin),
                data={"summary": summary},
            )
        )
    assert sorted(indexed_documents(engine_a, world_a)) == ["CORE-1", "CORE-2"]
    # when the project is deleted
    committed(
        lambda: project_delete(
            project=project_a, actor=member_of(world_a, world_a.admin), confirm="CORE"
        )
    )
    # then
    assert indexed_documents(engine_a, world_a) == {}
