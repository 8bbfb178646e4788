"""Fixtures for the search engine backend: a real OpenSearch-compatible server.

`osmem-server` (PyPI) is started once per test session on a free loopback port; each
test that takes `engine_a` gets its own index prefix (so no index outlives its test)
and tenant alpha switched to the OpenSearch backend (rolled back with the test).
"""

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from accounts.members.models import Membership
from eventlog.dispatch import outbox_dispatch_pending
from search.engine.backend import search_engine_for
from search.engine.client import OPENSEARCH, SearchEngine
from search.engine.execute import engine_ids, search_plan
from search.engine.maintenance import search_index_rebuild
from search.jql.parser import jql_parse
from tenants.models import Tenant

# The JQL table's world (CORE-1..5, SECRET-1), shared with the engine tests.
from tests.search.test_jql_postgres import (  # noqa: F401 (fixtures)
    private_project_a,
    project_a,
    search_world,
)
from tickets.models import Ticket


@pytest.fixture(scope="session")
def osmem() -> Iterator[Any]:
    from osmem_server import OsmemServer

    server = OsmemServer.start(japanese=False, addr="127.0.0.1:0")
    yield server
    server.close()


@pytest.fixture
def engine_settings(settings, osmem) -> Iterator[Any]:
    """SEARCH_URL at the session's osmem, a fresh index prefix for this test."""
    settings.SEARCH_URL = osmem.url
    settings.SEARCH_INDEX_PREFIX = f"t{uuid.uuid4().hex[:10]}"
    yield settings
    from search.engine.client import search_engine

    search_engine(OPENSEARCH, osmem.url).client.indices.delete(
        index=f"{settings.SEARCH_INDEX_PREFIX}-*", ignore_unavailable=True
    )


def backend_set(world: Any, backend: str | None) -> None:
    Tenant.objects.filter(pk=world.tenant.pk).update(search_backend=backend)


@pytest.fixture
def engine_a(world_a, engine_settings) -> SearchEngine:
    """Tenant alpha searches on OpenSearch (osmem)."""
    backend_set(world_a, OPENSEARCH)
    tenant = Tenant.objects.get(pk=world_a.tenant.pk)
    engine = search_engine_for(tenant)
    assert engine is not None
    return engine


def index_rebuild(world: Any, **kwargs: Any) -> str:
    with schema_context(world.schema):
        tenant = Tenant.objects.get(schema_name=world.schema)
        name = search_index_rebuild(tenant=tenant, **kwargs)
    connection.set_schema_to_public()
    return name


# ORDER BY fields a ticket document cannot hold (per-caller data): such queries run
# on Postgres by design.
UNINDEXED_SORTS = ("lastviewed",)


def postgres_by_design(jql: str) -> bool:
    order = jql.lower().partition("order by")[2]
    return any(name in order for name in UNINDEXED_SORTS)


def engine_keys(world: Any, user: Any, jql: str, *, require_engine: bool = True) -> list[str]:
    """Keys of a JQL query run on the tenant's engine (the whole result, in order).
    With `require_engine`, only queries sorted by an unindexed field may run on
    Postgres instead."""
    with schema_context(world.schema):
        member = Membership.objects.select_related("user").get(user=user)
        tenant = Tenant.objects.get(schema_name=world.schema)
        plan = search_plan(query=jql_parse(jql), member=member, tenant=tenant)
        if plan.engine is None:
            assert postgres_by_design(jql) or not require_engine, f"{jql!r} ran on Postgres"
            keys = list(plan.tickets.values_list("key", flat=True))
        else:
            ids = list(engine_ids(plan))
            by_id = dict(Ticket.objects.filter(pk__in=ids).values_list("pk", "key"))
            keys = [by_id.get(pk, f"<gone {pk}>") for pk in ids]
    connection.set_schema_to_public()
    return keys


def indexed_documents(engine: SearchEngine, world: Any) -> dict[str, dict[str, Any]]:
    """key -> (version, source) of every document in the tenant's index."""
    from search.engine.backend import index_alias

    alias = index_alias(world.schema)
    engine.index_refresh(name=alias)
    body = {"query": {"match_all": {}}, "size": 1000, "version": True}
    hits = engine.search(index=alias, body=body)["hits"]["hits"]
    return {h["_source"]["key"]: {"_version": h["_version"], **h["_source"]} for h in hits}


@pytest.fixture
def committed(world_a, django_capture_on_commit_callbacks) -> Callable[..., Any]:
    """`committed(fn)`: run `fn` in tenant A's schema, then dispatch the outbox and run
    what was scheduled after commit (the indexing tasks, eager in tests), as a real
    commit followed by a worker would. The dispatch is called directly: the test's
    transaction never commits."""

    def run(fn: Callable[[], Any]) -> Any:
        with schema_context(world_a.schema), django_capture_on_commit_callbacks(execute=True):
            result = fn()
            while outbox_dispatch_pending():
                pass
        connection.set_schema_to_public()
        return result

    return run


def member_of(world: Any, user: Any) -> Membership:
    return Membership.objects.select_related("user").get(user=user)
