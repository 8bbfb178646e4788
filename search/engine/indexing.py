"""Writing tickets to the tenant's index: idempotent, ordered by external versions.

`search_index_tickets(ticket_ids=...)` loads the tickets' current state from Postgres
and writes it with one `_bulk` request; ids that no longer exist are deleted. Every
write carries the document's external version (documents.ticket_version) with
`external_gte`, so a task that loaded an older state and writes late gets 409 and
never overwrites a newer document; deletes carry the current time in microseconds,
above every version the ticket ever had.

While `search_reindex` rebuilds a tenant's index, writes go to the alias *and* to the
index being built (dual-write, registered in Redis): with external versions the
newest state wins in the new index whichever of the bulk load and the live write
lands first, so nothing written during the rebuild is lost.
"""

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.utils import timezone

from saas.redis import redis_client
from saas.tenancy import current_schema
from search.engine.backend import index_alias, search_engine_for, search_shards_for
from search.engine.client import EngineError, SearchEngine
from search.engine.documents import (
    custom_fields_by_id,
    index_body,
    micros,
    ticket_document,
    ticket_version,
    tickets_for_indexing,
)


def _rebuild_key(schema_name: str) -> str:
    return f"search:rebuilding:{schema_name}"


def rebuild_targets(schema_name: str) -> list[str]:
    """Indices being built for the tenant right now (they receive every write too)."""
    return sorted(redis_client().smembers(_rebuild_key(schema_name)))  # type: ignore[arg-type]


def rebuild_register(schema_name: str, index: str) -> None:
    key = _rebuild_key(schema_name)
    redis_client().sadd(key, index)
    redis_client().expire(key, 24 * 3600)  # a crashed rebuild stops dual-writing in a day


def rebuild_unregister(schema_name: str, index: str) -> None:
    redis_client().srem(_rebuild_key(schema_name), index)


def index_name_new(alias: str) -> str:
    return f"{alias}-{micros(timezone.now())}"


def search_index_ensure(*, engine: SearchEngine, schema_name: str, tenant: Any = None) -> str:
    """The tenant's alias, creating an empty index behind it the first time (a write
    to a missing alias would otherwise create an index with guessed mappings)."""
    alias = index_alias(schema_name)
    if not engine.alias_targets(alias=alias):
        name = index_name_new(alias)
        engine.index_create(
            name=name,
            body=index_body(shards=search_shards_for(tenant), replicas=settings.SEARCH_REPLICAS),
        )
        engine.alias_swap(alias=alias, new=name, old=[])
    return alias


def document_actions(tickets: Iterable[Any], *, index: str) -> list[dict[str, Any]]:
    fields = custom_fields_by_id()
    return [
        {
            "_op_type": "index",
            "_index": index,
            "_id": str(ticket.pk),
            "version": ticket_version(ticket),
            "version_type": "external_gte",
            "_source": ticket_document(ticket, fields),
        }
        for ticket in tickets
    ]


def delete_actions(ids: Iterable[int], *, index: str) -> list[dict[str, Any]]:
    version = micros(timezone.now())
    return [
        {
            "_op_type": "delete",
            "_index": index,
            "_id": str(pk),
            "version": version,
            "version_type": "external_gte",
        }
        for pk in ids
    ]


def engine_write(
    *, engine: SearchEngine, indices: list[str], tickets: list[Any], deleted: Iterable[int]
) -> None:
    """One `_bulk` of the tickets' documents and deletions to every index given."""
    deleted = list(deleted)
    actions: list[dict[str, Any]] = []
    for index in indices:
        actions += document_actions(tickets, index=index)
        actions += delete_actions(deleted, index=index)
    failed = engine.bulk(actions)
    if failed:
        raise EngineError(f"{len(failed)} search index writes failed: {failed[:3]!r}")


def _indexed_in_sprints(engine: SearchEngine, alias: str, sprint_ids: Iterable[int]) -> set[int]:
    """Tickets the index holds in these sprints (Postgres may no longer say so)."""
    sprints = sorted({int(pk) for pk in sprint_ids})
    if not sprints:
        return set()
    engine.index_refresh(name=alias)
    query = {"terms": {"sprint_id": sprints}}
    return {pk for hits in engine.scan_versions(index=alias, query=query) for pk, _, _ in hits}


def search_index_tickets(
    *,
    ticket_ids: Iterable[int] = (),
    deleted_keys: Iterable[str] = (),
    project_ids: Iterable[int] = (),
    project_keys: Iterable[str] = (),
    sprint_ids: Iterable[int] = (),
    refresh: bool = False,
) -> int:
    """Bring the documents of these tickets in line with Postgres (current schema):
    write the existing ones, delete the others; also delete the documents of tickets
    gone with `deleted_keys` / the deleted projects (`project_ids`, `project_keys`); reindex the
    tickets indexed in `sprint_ids` (a sprint changed or was deleted). Safe to run
    twice, in any order.
    Returns the number of documents written or deleted; 0 when the tenant searches
    on Postgres."""
    engine = search_engine_for()
    if engine is None:
        return 0
    schema = current_schema()
    alias = search_index_ensure(engine=engine, schema_name=schema)
    wanted = sorted({int(pk) for pk in ticket_ids} | _indexed_in_sprints(engine, alias, sprint_ids))
    tickets = list(tickets_for_indexing(wanted)) if wanted else []
    gone = sorted(set(wanted) - {t.pk for t in tickets})
    # Read the rebuild registry after loading: a rebuild that started later reads
    # Postgres after this task did, so it has at least this state.
    indices = [alias, *rebuild_targets(schema)]
    engine_write(engine=engine, indices=indices, tickets=tickets, deleted=gone)
    gone_by: list[tuple[str, list[Any]]] = [
        ("key", sorted(set(deleted_keys))),
        ("project_id", sorted({int(pk) for pk in project_ids})),
        ("project_key", sorted(set(project_keys))),
    ]
    gone_with = [{"terms": {field: values}} for field, values in gone_by if values]
    for index in indices:
        for query in gone_with:
            engine.delete_by_query(index=index, query=query)
    if refresh:
        for index in indices:
            engine.index_refresh(name=index)
    return len(tickets) + len(gone)
