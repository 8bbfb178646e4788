"""Rebuilding a tenant's index with no downtime, and repairing drift.

Rebuild: create a new concrete index, register it for dual-writes (indexing.py),
bulk-load every ticket from Postgres, then point the alias at it and away from the
old index in one atomic `_aliases` request, and delete the old index. Searches use
the old index until the swap; writes during the rebuild reach both.

Reconcile: walk Postgres and the index in id batches and compare ids, versions and
watchers (the one part of a document that changes without moving its version);
write missing and stale tickets, delete orphan documents.
"""

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from saas.tenancy import current_schema
from search.engine.backend import index_alias, search_engine_for, search_shards_for
from search.engine.client import EngineError, SearchEngine
from search.engine.documents import index_body, micros, tickets_for_indexing
from search.engine.indexing import (
    engine_write,
    index_name_new,
    rebuild_register,
    rebuild_targets,
    rebuild_unregister,
    search_index_ensure,
)
from tickets.models import Ticket, Watcher

BATCH = 500


def _engine(tenant: Any) -> SearchEngine:
    engine = search_engine_for(tenant)
    if engine is None:
        raise EngineError(f"Tenant {current_schema()} searches on Postgres: it has no index.")
    return engine


def search_index_rebuild(
    *,
    tenant: Any = None,
    shards: int | None = None,
    progress: Callable[[int], None] | None = None,
    batch: int = BATCH,
    before_swap: Callable[[str], None] | None = None,
) -> str:
    """Build a new index of the current schema's tickets, swap the alias to it and
    delete the old one; returns the new index name. `progress(n)` is called after
    each batch of n tickets; `before_swap(index)` is a hook for tests and tooling."""
    engine = _engine(tenant)
    schema = current_schema()
    if rebuild_targets(schema):
        raise EngineError(f"The index of {schema} is being rebuilt already.")
    alias = index_alias(schema)
    new = index_name_new(alias)
    body = index_body(shards=shards or search_shards_for(tenant), replicas=settings.SEARCH_REPLICAS)
    engine.index_create(name=new, body=body)
    rebuild_register(schema, new)
    try:
        ids = list(Ticket.objects.order_by("pk").values_list("pk", flat=True))
        for start in range(0, len(ids), batch):
            chunk = list(tickets_for_indexing(ids[start : start + batch]))
            engine_write(engine=engine, indices=[new], tickets=chunk, deleted=())
            if progress:
                progress(len(chunk))
        engine.index_refresh(name=new)
        if before_swap:
            before_swap(new)
        old = engine.alias_targets(alias=alias)
        engine.alias_swap(alias=alias, new=new, old=old)
    except BaseException:
        rebuild_unregister(schema, new)
        engine.index_delete(name=new)
        raise
    rebuild_unregister(schema, new)
    for name in old:
        engine.index_delete(name=name)
    return new


@dataclass
class Drift:
    missing: list[int] = field(default_factory=list)
    stale: list[int] = field(default_factory=list)
    orphans: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {
            "missing": len(self.missing),
            "stale": len(self.stale),
            "orphans": len(self.orphans),
        }


def _postgres_batch(low: int | None, high: int | None) -> dict[int, tuple[int, list[int]]]:
    tickets = Ticket.objects.order_by("pk")
    if low is not None:
        tickets = tickets.filter(pk__gt=low)
    if high is not None:
        tickets = tickets.filter(pk__lte=high)
    rows: dict[int, tuple[int, list[int]]] = {
        pk: (micros(updated) or 1, []) for pk, updated in tickets.values_list("pk", "updated_at")
    }
    watchers = Watcher.objects.filter(ticket_id__in=list(rows)).order_by("user_id")
    for ticket_id, user_id in watchers.values_list("ticket_id", "user_id"):
        rows[ticket_id][1].append(user_id)
    return rows


def _index_batch(
    engine: SearchEngine, alias: str, low: int | None, high: int | None
) -> dict[int, tuple[int, list[int]]]:
    bounds: dict[str, int] = {}
    if low is not None:
        bounds["gt"] = low
    if high is not None:
        bounds["lte"] = high
    query = {"range": {"id": bounds}} if bounds else {"match_all": {}}
    found: dict[int, tuple[int, list[int]]] = {}
    for hits in engine.scan_versions(index=alias, query=query):
        for pk, version, source in hits:
            found[pk] = (version, sorted(source.get("watcher_ids") or []))
    return found


def search_reconcile(*, tenant: Any = None, batch: int = 1000, repair: bool = True) -> Drift:
    """Compare Postgres and the current schema's index and (by default) repair them."""
    engine = _engine(tenant)
    schema = current_schema()
    alias = search_index_ensure(engine=engine, schema_name=schema, tenant=tenant)
    engine.index_refresh(name=alias)
    drift = Drift()
    ids = list(Ticket.objects.order_by("pk").values_list("pk", flat=True))
    # Consecutive id ranges covering everything: (None, b1], (b1, b2], ... (bn, None).
    edges: list[int | None] = [None, *ids[batch - 1 :: batch], None]
    for low, high in itertools.pairwise(edges):
        expected = _postgres_batch(low, high)
        indexed = _index_batch(engine, alias, low, high)
        drift.missing += sorted(set(expected) - set(indexed))
        drift.orphans += sorted(set(indexed) - set(expected))
        drift.stale += sorted(
            pk for pk in set(expected) & set(indexed) if expected[pk] != indexed[pk]
        )
    if repair and (drift.missing or drift.stale or drift.orphans):
        repair_ids = drift.missing + drift.stale
        for start in range(0, max(len(repair_ids), len(drift.orphans)), BATCH):
            chunk = list(tickets_for_indexing(repair_ids[start : start + BATCH]))
            orphans = drift.orphans[start : start + BATCH]
            engine_write(engine=engine, indices=[alias], tickets=chunk, deleted=orphans)
        engine.index_refresh(name=alias)
    return drift
