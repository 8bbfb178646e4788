"""The ticket's dates on its component and fix-version links (kept by triggers), and
queries bounded by components or versions and sorted by a date, read along those links
(LinkWalk): the same tickets in the same order as the one sorted read."""

from typing import Any

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from search.jql.compile_postgres import CompiledJql, CreationWalk, LinkWalk, jql_compile
from search.jql.parser import jql_parse
from search.link_keys import link_keys_refresh
from tenants.models import Tenant
from tests.search.test_jql_postgres import (  # noqa: F401
    _keys_of,
    _member,
    _planner_asked,
    _totals_of,
    _windows_walked,
    search_api,
    search_world,
)
from tests.tickets.conftest import private_project_a, project_a  # noqa: F401 (fixtures)
from tickets.models import Component, Ticket
from tickets.services import ticket_update

pytestmark = pytest.mark.usefixtures("search_world", "search_api")


def _link_rows(ticket: Ticket) -> list[tuple[Any, ...]]:
    """(table, catalogue id, created, updated, the row's xmin) of a ticket's links."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'component', component_id, ticket_created_at, ticket_updated_at, xmin::text"
            "  FROM tickets_ticket_components WHERE ticket_id = %s"
            " UNION ALL SELECT 'version', version_id, ticket_created_at, ticket_updated_at,"
            "  xmin::text FROM tickets_ticket_fix_versions WHERE ticket_id = %s ORDER BY 1, 2",
            [ticket.pk, ticket.pk],
        )
        return cursor.fetchall()


def _dates(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [row[:4] for row in rows]


def test_links_carry_their_tickets_dates_as_the_ticket_changes(world_a):
    with schema_context(world_a.schema):
        admin = _member(world_a, world_a.admin)
        ticket = Ticket.objects.get(key="CORE-1")
        api, ui = (Component.objects.get(project=ticket.project, name=n).pk for n in ("api", "ui"))
        version = ticket.fix_versions.get().pk
        # when a component is added (a new link)
        ticket_update(ticket=ticket, actor=admin, data={"components": ["api", "ui"]})
        ticket.refresh_from_db()
        added = _link_rows(ticket)
        # when the ticket is edited (its updated time moves)
        ticket_update(ticket=ticket, actor=admin, data={"summary": "Checkout fails on iOS"})
        edited = Ticket.objects.get(pk=ticket.pk)
        after_edit = _link_rows(edited)
        # when its creation time is rewritten, as an import of history would
        Ticket.objects.filter(pk=ticket.pk).update(created_at=edited.updated_at)
        recreated = _link_rows(ticket)
        # when a column other than the dates changes
        Ticket.objects.filter(pk=ticket.pk).update(summary="Checkout fails everywhere")
        untouched = _link_rows(ticket)
    connection.set_schema_to_public()
    # then
    created, updated = ticket.created_at, ticket.updated_at
    assert _dates(added) == [
        ("component", api, created, updated),
        ("component", ui, created, updated),
        ("version", version, created, updated),
    ]
    assert edited.updated_at > updated
    assert _dates(after_edit) == [
        ("component", api, created, edited.updated_at),
        ("component", ui, created, edited.updated_at),
        ("version", version, created, edited.updated_at),
    ]
    assert _dates(recreated) == [
        ("component", api, edited.updated_at, edited.updated_at),
        ("component", ui, edited.updated_at, edited.updated_at),
        ("version", version, edited.updated_at, edited.updated_at),
    ]
    # (the links were not written again: same row versions)
    assert untouched == recreated


@pytest.mark.parametrize("every_ticket", [True, False], ids=["all", "some"])
def test_refresh_fills_links_written_with_triggers_off(world_a, every_ticket):
    with schema_context(world_a.schema):
        # given a link written as COPY with triggers off leaves it
        ticket = Ticket.objects.get(key="CORE-3")
        ui = Component.objects.get(project=ticket.project, name="ui")
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute(
                "INSERT INTO tickets_ticket_components (ticket_id, component_id) VALUES (%s, %s)",
                [ticket.pk, ui.pk],
            )
            cursor.execute("SET LOCAL session_replication_role = origin")
        before = _dates(_link_rows(ticket))
        # when
        link_keys_refresh(None if every_ticket else [ticket.pk])
        after = _dates(_link_rows(ticket))
    connection.set_schema_to_public()
    # then
    assert before == [("component", ui.pk, None, None)]
    assert after == [("component", ui.pk, ticket.created_at, ticket.updated_at)]


def _compiled(world: Any, user: Any, jql: str) -> CompiledJql:
    member = _member(world, user)
    tenant = Tenant.objects.get(schema_name=world.schema)
    return jql_compile(jql_parse(jql), member=member, tenant=tenant)


@pytest.fixture
def many_links(world_a, request, monkeypatch):
    """Links counted as many (a walk is possible), CORE-2 and CORE-4 in both `api` and
    `ui` (two links each, next to each other in the walk), and a private project's
    ticket with a component named `api` too."""
    from search.jql import compile_postgres

    request.getfixturevalue("search_world")

    monkeypatch.setattr(compile_postgres, "SEMI_JOIN_MIN", 1)
    with schema_context(world_a.schema):
        admin = _member(world_a, world_a.admin)
        for key in ("CORE-2", "CORE-4"):
            ticket = Ticket.objects.get(key=key)
            updated = ticket.updated_at
            ticket_update(ticket=ticket, actor=admin, data={"components": ["api", "ui"]})
            Ticket.objects.filter(pk=ticket.pk).update(updated_at=updated)
        secret = Ticket.objects.get(key="SECRET-1")
        hidden = Component.objects.create(project=secret.project, name="api")
        secret.components.add(hidden)
    connection.set_schema_to_public()


LINK_ORDERS = [
    ("component in (api, ui)", ["CORE-4", "CORE-2", "CORE-1"]),
    ("component in (api, ui) ORDER BY created ASC", ["CORE-1", "CORE-2", "CORE-4"]),
    ("component = ui ORDER BY updated DESC", ["CORE-4", "CORE-2"]),
    ("component in (api, ui) ORDER BY updated ASC", ["CORE-1", "CORE-2", "CORE-4"]),
    ("component = api AND labels = ui ORDER BY updated DESC", ["CORE-4", "CORE-2", "CORE-1"]),
    ('fixVersion = "1.0" ORDER BY updated DESC', ["CORE-1"]),
    ("priority = High AND component in (api, ui)", ["CORE-1"]),
]


@pytest.mark.usefixtures("many_links")
@pytest.mark.parametrize(("jql", "expected"), LINK_ORDERS, ids=[q for q, _ in LINK_ORDERS])
def test_link_walk_reads_the_matches_in_the_query_order(world_a, monkeypatch, jql, expected):
    from search.jql import compile_postgres

    monkeypatch.setattr(compile_postgres, "LINK_WALK_MIN_SHARE", 0)
    with schema_context(world_a.schema):
        compiled = _compiled(world_a, world_a.user, jql)
        keys = dict(Ticket.objects.values_list("pk", "key"))
        assert isinstance(compiled.walk, LinkWalk)
        # when the first 1, 2, ... are walked, the private project's ticket never among
        # them, nor a ticket twice
        walked = [
            [keys[pk] for pk in compiled.walk.first_ids(count)]
            for count in range(1, len(expected) + 2)
        ]
        sorted_read = list(compiled.tickets.values_list("key", flat=True))
    connection.set_schema_to_public()
    # then they are the sorted read's first ones
    assert sorted_read == expected
    assert walked == [expected[:count] for count in range(1, len(expected) + 2)]


@pytest.mark.usefixtures("many_links")
def test_a_rare_rest_of_the_query_is_sorted_on_the_links_ids(world_a, monkeypatch):
    # given a rest of the query that keeps too small a share of the tickets to walk
    from search.jql import compile_postgres

    monkeypatch.setattr(compile_postgres, "LINK_WALK_MIN_SHARE", 2)
    with schema_context(world_a.schema):
        # when
        compiled = _compiled(world_a, world_a.user, "component in (api, ui) ORDER BY updated")
        sql = str(compiled.tickets.query)
        keys = list(compiled.tickets.values_list("key", flat=True))
    connection.set_schema_to_public()
    # then the components' tickets are carried as ids, sorted off the date's index
    assert compiled.walk is None
    assert compiled.sorts_every_match is True
    assert "= ANY(" in sql
    assert keys == ["CORE-1", "CORE-2", "CORE-4"]


@pytest.mark.parametrize(
    "jql",
    [
        "component in (api, ui) ORDER BY updated DESC, key",  # a second key
        "component in (api, ui) ORDER BY priority",  # not a date
        "component in (api, ui) ORDER BY due",  # a date links do not carry
        "component in (api, EMPTY) ORDER BY updated",  # also the tickets without one
        "component != api ORDER BY updated",
        "component = api OR labels = ui ORDER BY updated",  # not the whole result
    ],
)
@pytest.mark.usefixtures("many_links")
def test_link_walk_only_for_a_date_its_links_carry(world_a, monkeypatch, jql):
    from search.jql import compile_postgres

    monkeypatch.setattr(compile_postgres, "LINK_WALK_MIN_SHARE", 0)
    with schema_context(world_a.schema):
        compiled = _compiled(world_a, world_a.user, jql)
    connection.set_schema_to_public()
    assert not isinstance(compiled.walk, LinkWalk)


@pytest.mark.usefixtures("many_links")
def test_advanced_search_pages_and_totals_are_the_same_along_the_links(
    user_a, world_a, monkeypatch
):
    # given a count cap below the number of matches
    from search.engine import execute
    from search.jql import compile_postgres

    monkeypatch.setattr(compile_postgres, "LINK_WALK_MIN_SHARE", 0)
    monkeypatch.setattr(execute, "COUNT_CAP", 2)
    walked = _windows_walked(monkeypatch, LinkWalk)
    jql = "component in (api, ui) ORDER BY updated DESC"
    # when
    pages = [
        user_a.get("/api/v1/search/advanced", jql=jql, limit=1),
        user_a.get("/api/v1/search/advanced", jql=jql, offset=1, limit=5),
    ]
    # then both pages were walked, and answer as a sorted read would
    assert walked == [3, 7]
    assert _keys_of(pages) == [
        ["CORE-4"],
        ["CORE-2", "CORE-1"],
    ]
    assert _totals_of(pages) == [
        (2, False),
        (3, True),
    ]


@pytest.mark.parametrize(
    ("walk_max", "jql", "sorted_apart", "expected"),
    [
        # the components' tickets are the newest few: creation order is walked (the
        # planner is asked), newest or oldest first
        (50_000, "component in (api, ui)", False, ["CORE-2", "CORE-1"]),
        (50_000, "component in (api, ui) ORDER BY created ASC", False, ["CORE-1", "CORE-2"]),
        # as if they were further back than a walk should go: sorted, off the index
        (0, "component in (api, ui)", True, ["CORE-2", "CORE-1"]),
        (0, "component in (api, ui) ORDER BY created ASC", True, ["CORE-1", "CORE-2"]),
        # other dates have no such measure: always sorted
        (50_000, "component in (api, ui) ORDER BY updated DESC", True, ["CORE-2", "CORE-1"]),
        # not given by id: the planner decides
        (0, "project = CORE AND labels = ui", False, ["CORE-4", "CORE-2", "CORE-1"]),
    ],
)
def test_creation_order_of_tickets_given_by_id_is_walked_only_near_the_ends(
    world_a, monkeypatch, walk_max, jql, sorted_apart, expected
):
    from search.jql import compile_postgres

    monkeypatch.setattr(compile_postgres, "CREATION_WALK_MAX", walk_max)
    with schema_context(world_a.schema):
        compiled = _compiled(world_a, world_a.user, jql)
        order_sql = str(compiled.tickets.query).split("ORDER BY")[-1]
        keys = list(compiled.tickets.values_list("key", flat=True))
        pk_by_key = dict(Ticket.objects.values_list("key", "pk"))
        walked = compiled.walk.first_ids(5) if compiled.walk is not None else None
    connection.set_schema_to_public()
    # then the date is sorted off its index (`+ 0 s`), or the tickets given by id are
    # walked in one read for page and count; the answer is the same either way
    assert compiled.sorts_every_match is sorted_apart
    assert ("+ 0:00:00" in order_sql) is sorted_apart, order_sql
    assert keys == expected
    given_by_id = jql.startswith("component")
    assert isinstance(compiled.walk, CreationWalk) is (given_by_id and not sorted_apart)
    if isinstance(compiled.walk, CreationWalk):
        assert walked == [pk_by_key[key] for key in expected]


def test_advanced_search_reads_a_short_creation_walk_once_for_page_and_count(user_a, monkeypatch):
    # given a count cap below the number of matches, and the planner's answers recorded
    from search.engine import execute

    monkeypatch.setattr(execute, "COUNT_CAP", 1)
    asked = _planner_asked(monkeypatch)
    jql = "component in (api, ui)"
    # when
    pages = [
        user_a.get("/api/v1/search/advanced", jql=jql, limit=1),
        user_a.get("/api/v1/search/advanced", jql=jql, offset=1, limit=5),
    ]
    # then newest first, counted from the same read, and the planner was never asked
    assert asked == []
    assert _keys_of(pages) == [
        ["CORE-2"],
        ["CORE-1"],
    ]
    assert _totals_of(pages) == [
        (1, False),
        (2, True),
    ]
