"""The OpenSearch backend answers every JQL query exactly as the Postgres backend does:
the whole table of tests/search/test_jql_postgres.py, random queries (Hypothesis) and
the API endpoints (same keys, same order, same totals, same errors)."""

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search.jql.ast import JqlError
from tenants.models import Tenant
from tests.search.conftest import engine_keys, index_rebuild, postgres_by_design
from tests.search.test_jql_postgres import ERRORS, QUERIES, _keys


def _mismatches(world: Any, user: Any, queries: list[str]) -> list[tuple[str, list, list]]:
    found = []
    # (queries sorted by per-caller data run on Postgres by design: nothing to compare)
    for jql in [q for q in queries if not postgres_by_design(q)]:
        on_postgres = _keys(world, user, jql)
        on_engine = engine_keys(world, user, jql)
        if on_postgres != on_engine:
            found.append((jql, on_postgres, on_engine))
    return found


def test_every_table_query_answers_the_same_keys_in_the_same_order(world_a, search_world, engine_a):
    # given the search world indexed
    index_rebuild(world_a)
    # when every query of the table runs on both backends, as the user and as the lead
    queries = [jql for jql, _ in QUERIES]
    # then
    assert _mismatches(world_a, world_a.user, queries) == []
    assert _mismatches(world_a, world_a.lead, queries) == []
    # and the engine's answers are the table's
    wrong = [
        (jql, keys)
        for jql, expected in QUERIES
        if (keys := engine_keys(world_a, world_a.user, jql)) != expected
    ]
    assert wrong == []


def test_dates_follow_the_tenant_time_zone_on_the_engine(world_a, search_world, engine_a):
    # given a tenant in New York: CORE-4 (02:00 UTC Feb 1) was created on Jan 31 there
    Tenant.objects.filter(pk=world_a.tenant.pk).update(time_zone="America/New_York")
    index_rebuild(world_a)
    # then
    assert engine_keys(world_a, world_a.user, "created = 2026-01-31") == ["CORE-4", "CORE-3"]
    assert engine_keys(world_a, world_a.user, "created > 2026-01-31") == ["CORE-5"]
    assert engine_keys(world_a, world_a.user, "due = 2026-01-31") == ["CORE-3"]


# -- random queries ----------------------------------------------------------------------

ATOMS = [
    "project = CORE",
    "type = Bug",
    "type in (Story, Task)",
    'status = "To Do"',
    "status != Done",
    'status not in ("To Do", Done)',
    "statusCategory != Done",
    "priority > Medium",
    "priority <= Low",
    "priority in (High, Lowest)",
    "resolution = Unresolved",
    "resolution is not EMPTY",
    "assignee = user_alpha",
    "assignee != lead_alpha",
    "assignee is EMPTY",
    "assignee in (EMPTY, lead_alpha)",
    "assignee = currentUser()",
    "reporter = admin_alpha",
    "watcher = currentUser()",
    "summary ~ checkout",
    'summary ~ "check*"',
    "summary !~ dark",
    "description ~ crash",
    "description is EMPTY",
    'comment ~ "index"',
    "text ~ run",
    'text ~ "dark mode"',
    "text !~ run",
    "labels = ui",
    "labels != payments",
    "labels in (payments, nothing)",
    "labels is EMPTY",
    "component = api",
    "component != api",
    "component is empty",
    'fixVersion = "1.0"',
    "created >= 2026-01-31",
    "created < 2026-01-20",
    "created = 2026-02-01",
    "created > -1d",
    "updated >= startOfMonth(-10)",
    "due <= 2026-02-10",
    "due is EMPTY",
    "resolved >= 2026-01-15",
    '"story points" > 2',
    '"story points" != 8',
    '"story points" is empty',
    "Severity = S1",
    "Severity != S1",
    "Severity is EMPTY",
    "Customer ~ globex",
    "Customer !~ globex",
    "Severity in (S1, S2)",
    "key > CORE-2",
    "issue in (CORE-1, CORE-3)",
    "parent is EMPTY",
    # evaluated in Postgres and joined by id
    'status WAS "In Progress"',
    "status CHANGED",
    "assignee WAS user_alpha",
    'issue in linkedIssues("CORE-1")',
]
ORDERS = [
    "",
    " ORDER BY priority DESC",
    " ORDER BY status ASC, key DESC",
    " ORDER BY assignee ASC",
    ' ORDER BY "story points" DESC',
    " ORDER BY severity DESC",
    " ORDER BY due ASC, created DESC",
    " ORDER BY summary",
    " ORDER BY updated DESC",
    " ORDER BY type, resolution",
    " ORDER BY reporter, priority ASC",
]


def _clauses() -> st.SearchStrategy[str]:
    atom = st.sampled_from(ATOMS)

    def combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        pair = st.tuples(children, children)
        return st.one_of(
            pair.map(lambda p: f"({p[0]} AND {p[1]})"),
            pair.map(lambda p: f"({p[0]} OR {p[1]})"),
            children.map(lambda c: f"NOT ({c})"),
        )

    return st.recursive(atom, combine, max_leaves=4)


@pytest.fixture
def indexed_world(world_a, search_world, engine_a):
    index_rebuild(world_a)
    return world_a


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(where=st.one_of(st.just(""), _clauses()), order=st.sampled_from(ORDERS))
def test_random_queries_answer_the_same_on_both_backends(indexed_world, where, order):
    # the world is only read here, so one fixture serves every example
    jql = f"{where}{order}".strip()
    user = indexed_world.user
    assert engine_keys(indexed_world, user, jql) == _keys(indexed_world, user, jql)


# -- errors ------------------------------------------------------------------------------


def test_invalid_queries_answer_the_same_400_on_the_engine(world_a, search_world, engine_a, user_a):
    # given
    index_rebuild(world_a)
    # when every invalid query of the table is sent to the API of an engine tenant
    answers = {}
    for jql, _ in ERRORS:
        response = user_a.get("/api/v1/search/advanced", jql=jql)
        answers[jql] = (response.status_code, response.json().get("error", {}).get("message"))
    # then they are the Postgres backend's 400s, message for message
    assert answers == {jql: (400, _postgres_error(world_a, jql)) for jql, _ in ERRORS}


def _postgres_error(world: Any, jql: str) -> str | None:
    try:
        _keys(world, world.user, jql)
    except JqlError as exc:
        return exc.message
    return None
