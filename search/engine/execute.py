"""The one place the search endpoints choose a backend and run a query.

Parsing and validation are shared: every query is compiled by the Postgres compiler
first (which raises the JqlError the API turns into a 400), so both backends answer
the same errors. On a tenant whose backend is an engine the query then runs there and
only the page of tickets is read from Postgres (in the engine's order); a query the
engine cannot answer runs on Postgres.
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import QuerySet, Value

from accounts.members.models import Membership
from search.engine.backend import index_alias, search_engine_for
from search.engine.client import ENGINE_DOWN, SearchEngine
from search.engine.compile_dsl import EngineUnsupported, jql_compile_dsl
from search.jql import ast
from search.jql.compile_postgres import CreationWalk, LinkWalk, jql_compile
from tickets.models import Ticket
from tickets.selectors import tickets_by_ids
from tickets.walks import RankWalk, query_plan

logger = logging.getLogger(__name__)

# from/size up to the engine's max_result_window; deeper pages walk with search_after.
MAX_WINDOW = 10_000
WALK_BATCH = 1_000
# A page's total is exact up to this many matches (or to the end of the page); beyond
# it `total_exact` is false. Counting is most of a page's cost for a query matching many
# (the ids of every match up to the cap), so the page counts little and
# `GET /search/count` counts further on request (Jira Cloud's search returns no total
# at all, and a separate approximate count).
COUNT_CAP = 1_000
# `GET /search/count` counts exactly up to this many.
COUNT_MAX = 100_000


@dataclass
class SearchPlan:
    """A validated query: the Postgres queryset (and whether its plan must sort all the
    matches), and the engine body when the tenant's backend is an engine that can
    answer it."""

    tickets: QuerySet[Ticket]
    sorts_every_match: bool = False
    walk: RankWalk | LinkWalk | CreationWalk | None = None
    engine: SearchEngine | None = None
    body: dict[str, Any] | None = None
    index: str = ""


def search_plan(*, query: ast.Query, member: Membership, tenant: Any) -> SearchPlan:
    """Validate and compile `query` for the tenant's backend (raises JqlError)."""
    compiled = jql_compile(query, member=member, tenant=tenant)
    postgres = SearchPlan(compiled.tickets, compiled.sorts_every_match, compiled.walk)
    engine = search_engine_for(tenant)
    if engine is None:
        return postgres
    try:
        body = jql_compile_dsl(query, member=member, tenant=tenant)
    except EngineUnsupported:
        return postgres
    return replace(postgres, engine=engine, body=body, index=index_alias(tenant.schema_name))


def engine_ids(plan: SearchPlan, *, offset: int = 0, limit: int | None = None) -> Iterator[int]:
    """Ticket ids of the result in order from `offset` (at most `limit`), walking the
    whole result with `search_after` (stable: every sort ends with the id)."""
    assert plan.engine is not None
    assert plan.body is not None
    after: list[Any] | None = None
    skipped, yielded = 0, 0
    while limit is None or yielded < limit:
        body: dict[str, Any] = {
            **plan.body,
            "size": WALK_BATCH,
            "_source": False,
            "track_total_hits": False,
        }
        if after is not None:
            body["search_after"] = after
        hits = plan.engine.search(index=plan.index, body=body)["hits"]["hits"]
        for hit in hits:
            if skipped < offset:
                skipped += 1
                continue
            if limit is not None and yielded >= limit:
                return
            yielded += 1
            yield int(hit["_id"])
        if len(hits) < WALK_BATCH:
            return
        after = hits[-1]["sort"]


def postgres_page_ids(
    tickets: QuerySet[Ticket],
    offset: int,
    limit: int,
    *,
    sorts_every_match: bool = False,
    walk: RankWalk | LinkWalk | CreationWalk | None = None,
) -> tuple[list[int], int, bool]:
    """The page's ticket ids in order and the total, `(ids, total, exact)`. The total
    is exact up to COUNT_CAP (or to the end of the page asked for); beyond it the count
    stops there and `exact` is false, so a query matching millions costs what its first
    thousand do.

    How depends on the plan for the page. When it sorts the matches, it reads all of
    them before its first row anyway: then the ids of the first
    `max(COUNT_CAP, offset + limit) + 1` in order cost about what the page does, and
    give the count with them (a page and a separate count would read the matches
    twice). When it walks an index in the order asked for, stopping at the end of the
    page, the first thousand in that order could be as many random reads: then the
    page, and apart the count (which needs no order).

    `sorts_every_match`: the compiler knows the plan sorts (no index holds the order).
    Otherwise the planner is asked (EXPLAIN, which plans the query once more: about
    1 ms, 30-80 ms for a query carrying 100,000 ids).

    `walk`: the query sorts by a date alone under many tickets of components or
    versions (LinkWalk), or by creation through tickets given by id, a page of which is
    near the newest (CreationWalk), both always walked; or by a catalogue first
    (priority, status... RankWalk, walked when the planner expects many matches; fewer
    are sorted in one read). A walk reads the first `window` in order and stops there."""
    window = max(COUNT_CAP, offset + limit) + 1
    ordered = tickets.values_list("pk", flat=True)
    if walk is not None and (isinstance(walk, LinkWalk | CreationWalk) or walk.worth_walking()):
        first = walk.first_ids(window)
        ids, counted = first[offset : offset + limit], len(first)
    elif sorts_every_match or _sorts_every_match(ordered[offset : offset + limit]):
        first = list(ordered[:window])
        ids, counted = first[offset : offset + limit], len(first)
    else:
        ids = list(ordered[offset : offset + limit])
        # A first page shorter than the limit is all the matches.
        short = offset == 0 and len(ids) < limit
        counted = len(ids) if short else capped_count(tickets, window)
    exact = counted < window
    return ids, (counted if exact else window - 1), exact


def capped_count(tickets: QuerySet[Ticket], cap: int) -> int:
    """How many tickets match, counting no further than `cap`. The rows counted select
    a constant, not the id (as Django's count of a slice does), so an index holding the
    query's columns without the id (search_ticket_status_priority) counts them
    index-only."""
    try:
        sql, params = tickets.order_by().values(one=Value(1))[:cap].query.sql_with_params()
    except EmptyResultSet:
        return 0
    with connection.cursor() as cursor:
        # `sql` is Django's compiled query; its values are in `params`.
        cursor.execute(f"SELECT count(*) FROM ({sql}) AS capped", params)  # noqa: S608
        return int(cursor.fetchone()[0])


def _sorts_every_match(ordered: QuerySet[Any]) -> bool:
    """Whether the planner's plan for `ordered` sorts the matches (rather than reading
    them in order from an index and stopping at its LIMIT)."""
    node = query_plan(ordered)
    if node is None:
        return False
    while node["Node Type"] in ("Limit", "Gather Merge") and node.get("Plans"):
        node = node["Plans"][0]
    return node["Node Type"] == "Sort"


def _postgres_page(plan: SearchPlan, offset: int, limit: int) -> dict[str, Any]:
    # Ids first: the sort reads only the sort keys, then the page's rows (with their
    # relations) are loaded by primary key, instead of sorting wide joined rows.
    ids, total, exact = postgres_page_ids(
        plan.tickets, offset, limit, sorts_every_match=plan.sorts_every_match, walk=plan.walk
    )
    return {
        "total": total,
        "total_exact": exact,
        "offset": offset,
        "limit": limit,
        "items": tickets_by_ids(ids),
    }


def search_page(
    *, query: ast.Query, member: Membership, tenant: Any, offset: int, limit: int
) -> dict[str, Any]:
    """`{"total", "offset", "limit", "items"}` for the API, on the tenant's backend.
    An engine that cannot be reached is not an error: Postgres answers the same."""
    plan = search_plan(query=query, member=member, tenant=tenant)
    if plan.engine is None:
        return _postgres_page(plan, offset, limit)
    try:
        return _engine_page(plan, offset, limit)
    except ENGINE_DOWN:
        logger.warning("search engine unavailable; answering from Postgres", exc_info=True)
        return _postgres_page(plan, offset, limit)


def search_count(*, query: ast.Query, member: Membership, tenant: Any) -> dict[str, Any]:
    """`{"total", "total_exact"}`: the matches the member may see, counted exactly up to
    COUNT_MAX, on the tenant's backend (Postgres when the engine cannot be reached)."""
    plan = search_plan(query=query, member=member, tenant=tenant)
    if plan.engine is not None:
        assert plan.body is not None
        body = {"query": plan.body["query"], "size": 0, "track_total_hits": COUNT_MAX}
        try:
            return _engine_total(plan.engine.search(index=plan.index, body=body))
        except ENGINE_DOWN:
            logger.warning("search engine unavailable; counting on Postgres", exc_info=True)
    counted = capped_count(plan.tickets, COUNT_MAX + 1)
    return {"total": min(counted, COUNT_MAX), "total_exact": counted <= COUNT_MAX}


def _engine_page(plan: SearchPlan, offset: int, limit: int) -> dict[str, Any]:
    assert plan.engine is not None
    assert plan.body is not None
    body = {**plan.body, "_source": False, "track_total_hits": COUNT_CAP}
    if offset + limit <= MAX_WINDOW:
        result = plan.engine.search(index=plan.index, body={**body, "from": offset, "size": limit})
        ids = [int(hit["_id"]) for hit in result["hits"]["hits"]]
    else:
        result = plan.engine.search(index=plan.index, body={**body, "size": 0})
        ids = list(engine_ids(plan, offset=offset, limit=limit))
    return {
        **_engine_total(result),
        "offset": offset,
        "limit": limit,
        "items": tickets_by_ids(ids),
    }


def _engine_total(result: dict[str, Any]) -> dict[str, Any]:
    """`{"total", "total_exact"}` of an engine's answer (counted up to its
    `track_total_hits`)."""
    hits_total = result["hits"]["total"]
    return {
        "total": hits_total["value"],
        "total_exact": hits_total.get("relation", "eq") == "eq",
    }


def search_export_ids(plan: SearchPlan, *, max_rows: int) -> list[int] | None:
    """The ordered ids of an export (at most `max_rows`) when an engine runs the
    query; None when Postgres does (no engine, or the engine cannot be reached)."""
    if plan.engine is None:
        return None
    try:
        return list(engine_ids(plan, limit=max_rows))
    except ENGINE_DOWN:
        logger.warning("search engine unavailable; exporting from Postgres", exc_info=True)
        return None
