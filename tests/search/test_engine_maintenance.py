"""Rebuilding an index with no downtime and no lost write; repairing drift."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django_tenants.utils import schema_context

from search.engine.backend import index_alias
from search.engine.indexing import search_index_tickets
from search.engine.maintenance import search_reconcile
from tenants.models import Tenant
from tests.search.conftest import engine_keys, index_rebuild, indexed_documents, member_of
from tickets.models import Ticket, Watcher
from tickets.services import ticket_create, ticket_update


def test_reindex_swaps_the_alias_and_keeps_writes_made_during_the_rebuild(
    world_a, search_world, engine_a
):
    # given an index built once
    alias = index_alias(world_a.schema)
    first = index_rebuild(world_a)
    assert engine_a.alias_targets(alias=alias) == [first]
    seen_during: list[list[str]] = []

    def meanwhile(new_index: str) -> None:
        # a write committed while the rebuild runs, indexed by its task as usual
        admin = member_of(world_a, world_a.admin)
        core2 = Ticket.objects.get(key="CORE-2")
        ticket_update(ticket=core2, actor=admin, data={"summary": "Dark mode everywhere"})
        created = ticket_create(
            project=core2.project, actor=admin, data={"summary": "Filed during the rebuild"}
        )
        search_index_tickets(ticket_ids=[core2.pk, created.pk])
        # searches still answer from the old index until the swap
        seen_during.append(engine_a.alias_targets(alias=alias))

    # when the index is rebuilt with two shards
    with schema_context(world_a.schema):
        tenant = Tenant.objects.get(schema_name=world_a.schema)
        from search.engine.maintenance import search_index_rebuild

        second = search_index_rebuild(tenant=tenant, shards=2, before_swap=meanwhile, batch=2)
    connection.set_schema_to_public()
    # then the alias moved atomically to the new index, the old one is gone
    assert seen_during == [[first]]
    assert second != first
    assert engine_a.alias_targets(alias=alias) == [second]
    settings = engine_a.client.indices.get_settings(index=second)[second]["settings"]
    assert int(settings["index"]["number_of_shards"]) == 2
    assert not engine_a.client.indices.exists(index=first)
    # and nothing written during the rebuild was lost
    docs = indexed_documents(engine_a, world_a)
    assert docs["CORE-2"]["summary"] == "Dark mode everywhere"
    assert docs["CORE-6"]["summary"] == "Filed during the rebuild"
    assert sorted(docs) == [*(f"CORE-{n}" for n in range(1, 7)), "SECRET-1"]
    assert engine_keys(world_a, world_a.user, 'summary ~ "everywhere"') == ["CORE-2"]


def test_reindex_command_rebuilds_a_tenant_with_a_progress_bar(world_a, search_world, engine_a):
    # given
    alias = index_alias(world_a.schema)
    first = index_rebuild(world_a)
    out, err = io.StringIO(), io.StringIO()
    # when
    call_command("search_reindex", tenant="alpha", shards=1, stdout=out, stderr=err)
    # then
    (current,) = engine_a.alias_targets(alias=alias)
    assert current != first
    assert out.getvalue() == f"{world_a.schema}: 6 tickets indexed into {current}\n"
    assert "6/6" in err.getvalue()
    assert sorted(indexed_documents(engine_a, world_a)) == [
        *(f"CORE-{n}" for n in range(1, 6)),
        "SECRET-1",
    ]


def test_reindex_command_refuses_a_tenant_on_postgres_and_bad_shards(world_a, engine_settings):
    with pytest.raises(CommandError, match="searches on Postgres"):
        call_command("search_reindex", tenant="alpha", stdout=io.StringIO())
    with pytest.raises(CommandError, match="No tenant 'nope'"):
        call_command("search_reindex", tenant="nope", stdout=io.StringIO())
    with pytest.raises(CommandError, match="--shards must be between 1 and 1024"):
        call_command("search_reindex", shards=0, stdout=io.StringIO())
    with pytest.raises(CommandError, match="--batch must be between 1 and 10000"):
        call_command("search_reindex", batch=0, stdout=io.StringIO())


def test_a_second_rebuild_of_the_same_tenant_is_refused(world_a, search_world, engine_a):
    from search.engine.indexing import rebuild_register

    # given a rebuild in progress
    first = index_rebuild(world_a)
    rebuild_register(world_a.schema, "tkt-in-progress")
    # when
    with pytest.raises(CommandError, match="is being rebuilt already"):
        call_command("search_reindex", tenant="alpha", stdout=io.StringIO(), stderr=io.StringIO())
    # then the live index is untouched
    assert engine_a.alias_targets(alias=index_alias(world_a.schema)) == [first]


def test_reconciliation_repairs_missing_stale_and_orphan_documents(world_a, search_world, engine_a):
    # given an index in step with Postgres
    index_rebuild(world_a)
    # and drift injected behind the outbox's back
    with schema_context(world_a.schema):
        admin = member_of(world_a, world_a.admin)
        core1 = Ticket.objects.get(key="CORE-1")
        core3 = Ticket.objects.get(key="CORE-3")
        missing = ticket_create(project=core1.project, actor=admin, data={"summary": "Lost event"})
        Ticket.objects.filter(pk=core1.pk).update(summary="Changed quietly")  # same version
        Ticket.objects.filter(pk=core1.pk).update(updated_at=core1.updated_at.replace(year=2027))
        Watcher.objects.create(ticket=core3, user=world_a.user)  # watchers: version unchanged
        Ticket.objects.filter(key="CORE-5").delete()  # orphan document
        # when
        found = search_reconcile()
        # then the drift was found and repaired
        assert found.as_dict() == {"missing": 1, "stale": 2, "orphans": 1}
        assert found.missing == [missing.pk]
        assert sorted(found.stale) == sorted([core1.pk, core3.pk])
        docs = indexed_documents(engine_a, world_a)
        assert sorted(docs) == ["CORE-1", "CORE-2", "CORE-3", "CORE-4", "CORE-6", "SECRET-1"]
        assert docs["CORE-1"]["summary"] == "Changed quietly"
        assert world_a.user.pk in docs["CORE-3"]["watcher_ids"]
        # and a second pass finds nothing
        assert search_reconcile().as_dict() == {"missing": 0, "stale": 0, "orphans": 0}
    connection.set_schema_to_public()


def test_the_beat_task_reconciles_only_tenants_on_an_engine(world_a, search_world, engine_a):
    from search.tasks import search_reconcile_all

    # given alpha's index missing a ticket whose event was lost
    index_rebuild(world_a)
    with schema_context(world_a.schema):
        core1 = Ticket.objects.get(key="CORE-1")
        ticket_create(
            project=core1.project,
            actor=member_of(world_a, world_a.admin),
            data={"summary": "Never indexed"},
        )
    connection.set_schema_to_public()
    assert "CORE-6" not in indexed_documents(engine_a, world_a)
    # when beat fans out (bravo searches on Postgres: skipped)
    count = search_reconcile_all()
    # then alpha alone was reconciled, and repaired
    assert count == 1
    assert indexed_documents(engine_a, world_a)["CORE-6"]["summary"] == "Never indexed"
