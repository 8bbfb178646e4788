"""The search endpoints on an engine tenant answer exactly what they answer on
Postgres (pages, totals, simple search, export), apply permissions, never cross
tenants, and survive the engine being down."""

import json
import os

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from search.engine import execute
from search.engine.backend import index_alias
from search.engine.client import ELASTICSEARCH, OPENSEARCH
from tenants.models import Tenant
from tests.search.conftest import backend_set, engine_keys, index_rebuild, member_of
from tickets.models import Project
from tickets.services import ticket_create

PAGES = [
    {"jql": ""},
    {"jql": "ORDER BY priority DESC", "offset": 1, "limit": 2},
    {"jql": "labels = ui ORDER BY key", "offset": 1, "limit": 1},
    {"jql": 'text ~ "run" OR status WAS "In Progress" ORDER BY status, key DESC'},
    {"jql": "assignee in (EMPTY, currentUser()) ORDER BY updated DESC", "limit": 2},
    {"jql": "project = CORE", "offset": 4, "limit": 10},
    {"jql": "project = CORE", "offset": 50},
]
SIMPLE = [
    {"q": "checkout"},
    {"status": "To Do,Done", "priority": "high"},
    {"assignee": "unassigned"},
    {"created_after": "2026-01-20", "created_before": "2026-02-02"},
    {"status": "Limbo"},
]


def _answers(client, path: str, params: list[dict]) -> list[tuple[int, object]]:
    return [
        (response.status_code, response.json())
        for response in (client.get(path, **query) for query in params)
    ]


def _both_backends(world, client, path: str, params: list[dict]) -> tuple[list, list]:
    on_engine = _answers(client, path, params)
    backend_set(world, "postgres")
    on_postgres = _answers(client, path, params)
    backend_set(world, OPENSEARCH)
    return on_engine, on_postgres


def test_advanced_and_simple_search_answer_the_same_pages(
    world_a, search_world, engine_a, user_a, lead_a
):
    # given
    index_rebuild(world_a)
    for client in (user_a, lead_a):
        # when / then: same keys, items, totals and errors, whole responses compared
        on_engine, on_postgres = _both_backends(world_a, client, "/api/v1/search/advanced", PAGES)
        assert on_engine == on_postgres
        assert [status for status, _ in on_engine] == [200] * len(PAGES)
        on_engine, on_postgres = _both_backends(world_a, client, "/api/v1/search/tickets", SIMPLE)
        assert on_engine == on_postgres
    assert on_engine[-1][0] == 400


COUNTS = [
    {"jql": ""},
    {"jql": "labels = ui ORDER BY key"},
    {"jql": 'text ~ "run" OR status WAS "In Progress"'},
    {"jql": "project = CORE AND priority in (High, Highest)"},
    {"jql": "status = Limbo"},
]


def test_counts_are_the_same_on_both_backends_and_capped_alike(
    world_a, search_world, engine_a, user_a, lead_a, monkeypatch
):
    # given
    index_rebuild(world_a)
    for client in (user_a, lead_a):
        # when / then: same totals, exactness and errors
        on_engine, on_postgres = _both_backends(world_a, client, "/api/v1/search/count", COUNTS)
        assert on_engine == on_postgres
    assert [status for status, _ in on_engine] == [200, 200, 200, 200, 400]
    assert on_engine[0][1] == {"total": 6, "total_exact": True}  # the lead sees SECRET-1
    # and past the cap both stop at it
    monkeypatch.setattr(execute, "COUNT_MAX", 2)
    on_engine, on_postgres = _both_backends(world_a, lead_a, "/api/v1/search/count", COUNTS[:2])
    assert (
        on_engine
        == on_postgres
        == [
            (200, {"total": 2, "total_exact": False}),
            (200, {"total": 2, "total_exact": False}),
        ]
    )


def test_deep_pages_walk_the_result_with_search_after(
    world_a, search_world, engine_a, user_a, monkeypatch
):
    # given a tiny result window so that every page past the first walks
    index_rebuild(world_a)
    monkeypatch.setattr(execute, "MAX_WINDOW", 1)
    monkeypatch.setattr(execute, "WALK_BATCH", 2)
    pages = [{"jql": "ORDER BY key DESC", "offset": n, "limit": 2} for n in range(6)]
    # when
    on_engine, on_postgres = _both_backends(world_a, user_a, "/api/v1/search/advanced", pages)
    # then
    assert on_engine == on_postgres
    assert [[i["key"] for i in body["items"]] for _, body in on_engine[:3]] == [
        ["CORE-5", "CORE-4"],
        ["CORE-4", "CORE-3"],
        ["CORE-3", "CORE-2"],
    ]


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_streams_the_same_file(world_a, search_world, engine_a, lead_a, monkeypatch, fmt):
    # given
    index_rebuild(world_a)
    monkeypatch.setattr(execute, "WALK_BATCH", 2)
    params = [{"jql": "ORDER BY priority DESC, key", "format": fmt}]

    def export(client):
        response = client.get("/api/v1/search/export", **params[0])
        return response.status_code, response.content

    # when
    on_engine = export(lead_a)
    backend_set(world_a, "postgres")
    on_postgres = export(lead_a)
    # then
    assert on_engine == on_postgres
    assert on_engine[0] == 200
    assert b"SECRET-1" in on_engine[1]


def test_users_only_find_tickets_of_projects_they_may_see(
    world_a, search_world, engine_a, user_a, lead_a
):
    # given
    index_rebuild(world_a)
    # when
    as_user = user_a.get("/api/v1/search/advanced", jql="summary ~ checkout").json()
    as_lead = user_a.get("/api/v1/search/advanced", jql="project = SECRET")
    lead = lead_a.get("/api/v1/search/advanced", jql="summary ~ checkout").json()
    # then
    assert (as_user["total"], [i["key"] for i in as_user["items"]]) == (1, ["CORE-1"])
    assert as_lead.status_code == 400  # the user may not even name the project
    assert (lead["total"], [i["key"] for i in lead["items"]]) == (2, ["SECRET-1", "CORE-1"])


def test_one_tenants_index_never_answers_another(
    world_a, world_b, search_world, engine_a, user_a, admin_b
):
    # given tenant bravo on the engine too, with a ticket of its own
    backend_set(world_b, OPENSEARCH)
    with schema_context(world_b.schema):
        project = Project.objects.create(key="CORE", name="Bravo core", lead=world_b.admin)
        ticket_create(
            project=project,
            actor=member_of(world_b, world_b.admin),
            data={"summary": "Checkout of bravo"},
        )
    connection.set_schema_to_public()
    index_rebuild(world_a)
    index_rebuild(world_b)
    # when each tenant searches for the same words
    in_a = user_a.get("/api/v1/search/advanced", jql="summary ~ checkout").json()
    in_b = admin_b.get("/api/v1/search/advanced", jql="summary ~ checkout").json()
    # then each index answers for its own tenant only
    assert index_alias(world_a.schema) != index_alias(world_b.schema)
    assert [(i["key"], i["summary"]) for i in in_a["items"]] == [
        ("CORE-1", "Checkout fails on Safari")
    ]
    assert [(i["key"], i["summary"]) for i in in_b["items"]] == [("CORE-1", "Checkout of bravo")]


def test_an_unreachable_engine_falls_back_to_postgres(
    world_a, search_world, engine_a, engine_settings, user_a
):
    # given the engine's address points at nothing
    engine_settings.SEARCH_URL = "http://127.0.0.1:9"
    # when
    response = user_a.get("/api/v1/search/advanced", jql="labels = ui ORDER BY key")
    exported = user_a.get("/api/v1/search/export", jql="labels = ui ORDER BY key", format="json")
    # then Postgres answered
    assert response.status_code == 200
    assert [i["key"] for i in response.json()["items"]] == ["CORE-1", "CORE-2", "CORE-4"]
    assert [row["key"] for row in json.loads(exported.content)] == ["CORE-1", "CORE-2", "CORE-4"]


@pytest.mark.skipif(not os.environ.get("ES_URL"), reason="needs an Elasticsearch at ES_URL")
def test_elasticsearch_answers_like_postgres(world_a, search_world, engine_settings, settings):
    # given tenant alpha on a real Elasticsearch 8
    from tests.search.test_jql_postgres import QUERIES, _keys

    settings.SEARCH_URL = os.environ["ES_URL"]
    Tenant.objects.filter(pk=world_a.tenant.pk).update(search_backend=ELASTICSEARCH)
    try:
        index_rebuild(world_a)
        # when / then
        wrong = [
            jql
            for jql, _ in QUERIES
            if engine_keys(world_a, world_a.user, jql) != _keys(world_a, world_a.user, jql)
        ]
        assert wrong == []
    finally:
        from search.engine.client import search_engine

        search_engine(ELASTICSEARCH, settings.SEARCH_URL).client.indices.delete(
            index=f"{settings.SEARCH_INDEX_PREFIX}-*", ignore_unavailable=True
        )
