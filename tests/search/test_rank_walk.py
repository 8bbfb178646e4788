"""Queries sorted by a catalogue first (priority, status, type, resolution, project,
status category), read a value of that order at a time (RankWalk): the same tickets in
the same order as the one sorted read, for every page size, whichever way it goes."""

from typing import Any

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from search.jql.compile_postgres import CompiledJql, jql_compile
from search.jql.parser import jql_parse
from tenants.models import Tenant
from tests.search.test_jql_postgres import (  # noqa: F401
    _keys_of,
    _member,
    _totals_of,
    _windows_walked,
    search_api,
    search_world,
)
from tests.tickets.conftest import private_project_a, project_a  # noqa: F401 (fixtures)
from tickets.models import Priority, Ticket

pytestmark = pytest.mark.usefixtures("search_world", "search_api")

RANK_ORDERS = [
    "ORDER BY priority DESC",
    "ORDER BY priority ASC, key DESC",
    "project = CORE ORDER BY priority DESC, updated DESC",
    "labels = ui ORDER BY priority DESC",
    "ORDER BY status ASC, key DESC",
    "ORDER BY status DESC, created ASC",
    "ORDER BY type, created DESC",
    "ORDER BY resolution DESC, key",
    "ORDER BY resolution ASC, key DESC",
    "ORDER BY statusCategory DESC, key",
    "ORDER BY project DESC, key",
    "assignee is EMPTY ORDER BY priority",
]


def _compiled(world: Any, user: Any, jql: str) -> CompiledJql:
    member = _member(world, user)
    tenant = Tenant.objects.get(schema_name=world.schema)
    return jql_compile(jql_parse(jql), member=member, tenant=tenant)


def _first_keys(compiled: CompiledJql, count: int) -> tuple[list[str], list[str]]:
    """(the walk's first `count`, the sorted read's first `count`) as keys."""
    assert compiled.walk is not None
    keys = dict(Ticket.objects.values_list("pk", "key"))
    walked = [keys[pk] for pk in compiled.walk.first_ids(count)]
    return walked, list(compiled.tickets.values_list("key", flat=True)[:count])


@pytest.mark.parametrize("values", [1, 5], ids=["one value then the rest", "value by value"])
@pytest.mark.parametrize("jql", RANK_ORDERS)
def test_rank_walk_reads_the_matches_in_the_query_order(world_a, monkeypatch, jql, values):
    # given a walk of one value of the order before reading the rest sorted, or of
    # every value one by one
    from tickets import walks

    monkeypatch.setattr(walks, "WALK_VALUES", values)
    with schema_context(world_a.schema):
        compiled = _compiled(world_a, world_a.lead, jql)
        # when / then: the first 1, 2, ... of the walk are the sorted read's, SECRET-1
        # of the private project included (the lead may see it)
        everything = compiled.tickets.count()
        assert everything > 1
        for count in range(1, everything + 2):
            walked, sorted_read = _first_keys(compiled, count)
            assert walked == sorted_read, count
    connection.set_schema_to_public()


def test_rank_walk_reads_priorities_sharing_a_rank_as_one_value(world_a):
    # given Low ranked as Medium: their tickets (CORE-3 Low, CORE-2 Medium) tie on
    # priority and sort by key between them
    with schema_context(world_a.schema):
        medium = Priority.objects.get(name="Medium")
        Priority.objects.filter(name="Low").update(rank=medium.rank)
        compiled = _compiled(world_a, world_a.user, "ORDER BY priority DESC, key DESC")
        # when
        walked, sorted_read = _first_keys(compiled, 10)
    connection.set_schema_to_public()
    # then
    assert walked == sorted_read == ["CORE-4", "CORE-1", "CORE-3", "CORE-2", "CORE-5"]


@pytest.mark.parametrize(
    ("jql", "walks"),
    [
        ("ORDER BY priority DESC", True),
        ("ORDER BY status, priority", True),
        ("ORDER BY key, priority", False),
        ("ORDER BY updated DESC", False),
        ("ORDER BY assignee", False),
        ("ORDER BY Severity", False),
        ("", False),
        # matches given as ids are few: one sorted read
        ("component in (api, ui) ORDER BY priority DESC", False),
        ('status WAS "In Progress" ORDER BY priority DESC', False),
    ],
)
def test_compiler_walks_only_orders_led_by_a_catalogue(world_a, jql, walks):
    with schema_context(world_a.schema):
        compiled = _compiled(world_a, world_a.user, jql)
    connection.set_schema_to_public()
    assert (compiled.walk is not None) is walks


def test_many_tickets_of_a_component_sorted_by_priority_are_a_semi_join(world_a, monkeypatch):
    # given components whose tickets count as many
    from search.jql import compile_postgres

    monkeypatch.setattr(compile_postgres, "SEMI_JOIN_MIN", 1)
    jql = "component in (api, ui) ORDER BY priority DESC"
    with schema_context(world_a.schema):
        # when
        compiled = _compiled(world_a, world_a.user, jql)
        sql = str(compiled.tickets.query)
        walked, sorted_read = _first_keys(compiled, 5)
    connection.set_schema_to_public()
    # then their tickets are tested in place, not carried as ids, and the walk reads
    # them in order: CORE-1 (High, api), CORE-2 (Medium, ui)
    assert "EXISTS" in sql
    assert "ANY(" not in sql
    assert walked == sorted_read == ["CORE-1", "CORE-2"]


def test_advanced_search_pages_and_totals_are_the_same_when_walked(user_a, monkeypatch):
    # given every query walked by value, and a count cap below the number of matches
    from search.engine import execute
    from tickets import walks

    monkeypatch.setattr(walks, "WALK_MIN_MATCHES", 0)
    monkeypatch.setattr(execute, "COUNT_CAP", 2)
    walked = _windows_walked(monkeypatch, walks.RankWalk)
    jql = "ORDER BY priority DESC"
    # when
    pages = [
        user_a.get("/api/v1/search/advanced", jql=jql, limit=2),
        user_a.get("/api/v1/search/advanced", jql=jql, offset=2, limit=5),
    ]
    # then the pages were walked (the first 3, then the first 8) and are the table's
    # order (CORE-4 Highest, CORE-1 High, 2 Medium, 3 Low, 5 Lowest)
    assert walked == [3, 8]
    assert _keys_of(pages) == [
        ["CORE-4", "CORE-1"],
        ["CORE-2", "CORE-3", "CORE-5"],
    ]
    assert _totals_of(pages) == [
        (2, False),
        (5, True),
    ]
