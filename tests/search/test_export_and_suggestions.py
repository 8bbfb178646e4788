# ruff: noqa: F811 (pytest fixtures imported from other test modules)
"""Export of a JQL result (streamed CSV / JSON) and JQL autocomplete suggestions."""

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.utils import timezone
from django_tenants.utils import schema_context

from accounts.members.models import Membership
from tests.search.test_jql_postgres import search_api  # noqa: F401 (fixture)
from tests.tickets.conftest import private_project_a, project_a  # noqa: F401 (fixtures)
from tickets.models import Ticket
from tickets.services import ticket_create

HEADER = [
    "key",
    "summary",
    "type",
    "status",
    "priority",
    "assignee",
    "reporter",
    "labels",
    "created",
    "updated",
    "resolved",
    "due_date",
    "story_points",
]


def _create(world, project, created: str, **data: Any) -> Ticket:
    admin = Membership.objects.select_related("user").get(user=world.admin)
    ticket = ticket_create(project=project, actor=admin, data=data)
    when = datetime.fromisoformat(created).replace(tzinfo=UTC)
    Ticket.objects.filter(pk=ticket.pk).update(created_at=when, updated_at=when)
    return ticket


@pytest.fixture
def export_world(world_a, project_a, private_project_a):
    """CORE-1, CORE-2 in the open project; SECRET-1 in a private one the user can't see."""
    with schema_context(world_a.schema):
        _create(
            world_a,
            project_a,
            "2026-01-10T09:00:00",
            summary='Checkout fails, "badly"',
            type="Bug",
            priority="High",
            assignee="user_alpha",
            labels=["ui", "payments"],
            due_date="2026-02-10",
            story_points=3,
        )
        _create(
            world_a,
            project_a,
            "2026-01-20T12:00:00",
            summary="Add dark mode",
            type="Story",
            priority="Medium",
            labels=["ui"],
            story_points="2.5",
        )
        _create(world_a, private_project_a, "2026-01-25T08:00:00", summary="Secret plan")
    connection.set_schema_to_public()


CORE_1 = {
    "key": "CORE-1",
    "summary": 'Checkout fails, "badly"',
    "type": "Bug",
    "status": "To Do",
    "priority": "High",
    "assignee": "user_alpha",
    "reporter": "admin",
    "labels": "ui payments",
    "created": "2026-01-10T09:00:00+00:00",
    "updated": "2026-01-10T09:00:00+00:00",
    "resolved": None,
    "due_date": "2026-02-10",
    "story_points": 3,
}
CORE_2 = {
    "key": "CORE-2",
    "summary": "Add dark mode",
    "type": "Story",
    "status": "To Do",
    "priority": "Medium",
    "assignee": None,
    "reporter": "admin",
    "labels": "ui",
    "created": "2026-01-20T12:00:00+00:00",
    "updated": "2026-01-20T12:00:00+00:00",
    "resolved": None,
    "due_date": None,
    "story_points": 2.5,
}


def _body(response) -> str:
    return b"".join(response.streaming_content).decode()


def test_export_csv_streams_the_visible_result_in_query_order(
    user_a, world_a, export_world, search_api
):
    # when
    response = user_a.get("/api/v1/search/export", jql="ORDER BY key", format="csv")
    # then
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    day = timezone.now().strftime("%Y%m%d")
    assert response["Content-Disposition"] == f'attachment; filename="tickets-alpha-{day}.csv"'
    rows = list(csv.reader(io.StringIO(_body(response))))
    assert rows == [
        HEADER,
        [
            "CORE-1",
            'Checkout fails, "badly"',
            "Bug",
            "To Do",
            "High",
            "user_alpha",
            "admin",
            "ui payments",
            "2026-01-10T09:00:00+00:00",
            "2026-01-10T09:00:00+00:00",
            "",
            "2026-02-10",
            "3",
        ],
        [
            "CORE-2",
            "Add dark mode",
            "Story",
            "To Do",
            "Medium",
            "",
            "admin",
            "ui",
            "2026-01-20T12:00:00+00:00",
            "2026-01-20T12:00:00+00:00",
            "",
            "",
            "2.5",
        ],
    ]


def test_export_json_is_a_streamed_array_without_private_tickets(user_a, export_world, search_api):
    # when (default order: created DESC)
    response = user_a.get("/api/v1/search/export", jql="", format="json")
    # then
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"].endswith('.json"')
    assert json.loads(_body(response)) == [CORE_2, CORE_1]


def test_export_of_an_empty_result_is_an_empty_array(user_a, export_world, search_api):
    response = user_a.get("/api/v1/search/export", jql="labels = nothing", format="json")
    assert response.status_code == 200
    assert json.loads(_body(response)) == []


def test_export_rejects_bad_jql_before_streaming(user_a, export_world, search_api):
    # when
    response = user_a.get("/api/v1/search/export", jql="status = Limbo", format="csv")
    # then
    assert response.status_code == 400
    assert not response.streaming
    assert response.json()["error"]["code"] == "jql_invalid"
    assert response.json()["error"]["message"] == (
        "The value 'Limbo' does not exist for the field 'status' at line 1, character 10"
    )


def test_export_above_the_cap_answers_422(user_a, export_world, search_api, monkeypatch):
    monkeypatch.setattr("search.export.EXPORT_MAX_ROWS", 1)
    response = user_a.get("/api/v1/search/export", jql="", format="csv")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "export_too_large"


def test_export_query_count_is_pinned(
    admin_a,
    world_a,
    project_a,
    search_api,
    django_assert_num_queries,
):
    # given 20 tickets with assignees, labels and catalogue values
    with schema_context(world_a.schema):
        for n in range(20):
            _create(
                world_a,
                project_a,
                f"2026-01-{n + 1:02d}T09:00:00",
                summary=f"Ticket {n}",
                assignee="lead_alpha" if n % 2 else None,
                labels=[f"l{n % 3}"],
            )
    connection.set_schema_to_public()
    # when: auth and tenant routing, the status lookup, the cap check, one SELECT
    with django_assert_num_queries(7):
        response = admin_a.get("/api/v1/search/export", jql='status = "To Do"', format="json")
        items = json.loads(_body(response))
    # then
    assert len(items) == 20
    assert items[0]["key"] == "CORE-20"


# -- suggestions ---------------------------------------------------------------------------


@pytest.fixture
def suggest_world(world_a, export_world):
    with schema_context(world_a.schema):
        project = Ticket.objects.get(key="CORE-1").project
        _create(world_a, project, "2026-01-21T12:00:00", summary="Third", labels=["ui", "api"])
    connection.set_schema_to_public()


def _suggest(api, q: str, **extra: Any) -> dict:
    response = api.get("/api/v1/search/suggestions", q=q, **extra)
    assert response.status_code == 200, response.content
    return response.json()


def _values(body: dict) -> list[str]:
    return [item["value"] for item in body["items"]]


def test_empty_query_suggests_fields(user_a, suggest_world, search_api):
    body = _suggest(user_a, "")
    assert (body["kind"], body["prefix"]) == ("field", "")
    assert _values(body)[:4] == ["project", "key", "issuetype", "status"]
    assert len(body["items"]) == 20


def test_a_partial_field_name_suggests_matching_fields(user_a, suggest_world, search_api):
    body = _suggest(user_a, "stat")
    assert body == {
        "kind": "field",
        "prefix": "stat",
        "items": [
            {"value": "status", "display": "status", "type": "ref"},
            {"value": "statusCategory", "display": "statusCategory", "type": "statuscategory"},
        ],
    }


def test_after_a_field_its_operators_are_suggested(user_a, suggest_world, search_api):
    body = _suggest(user_a, "status ")
    assert (body["kind"], body["prefix"]) == ("operator", "")
    assert _values(body) == [
        "=",
        "!=",
        "IN",
        "NOT IN",
        "IS",
        "IS NOT",
        "WAS",
        "WAS IN",
        "WAS NOT",
        "WAS NOT IN",
        "CHANGED",
    ]


def test_after_an_operator_the_status_values_are_suggested(user_a, suggest_world, search_api):
    body = _suggest(user_a, "status = ")
    assert (body["kind"], body["prefix"]) == ("value", "")
    assert _values(body) == ['"To Do"', '"In Progress"', "Done", '"In Review"']


def test_status_values_are_prefix_matched_and_quoted(user_a, suggest_world, search_api):
    body = _suggest(user_a, "status = In")
    assert (body["kind"], body["prefix"]) == ("value", "In")
    assert body["items"] == [
        {"value": '"In Progress"', "display": "In Progress", "type": "status"},
        {"value": '"In Review"', "display": "In Review", "type": "status"},
    ]


def test_the_cursor_decides_what_is_suggested(user_a, suggest_world, search_api):
    body = _suggest(user_a, "stat = Done", cursor=4)
    assert (body["kind"], body["prefix"]) == ("field", "stat")


def test_user_values_are_members_and_current_user(user_a, suggest_world, search_api):
    body = _suggest(user_a, "assignee = ")
    assert body["kind"] == "value"
    assert _values(body) == [
        "currentUser()",
        "membersOf()",
        "admin",
        "lead_alpha",
        "user_alpha",
    ]
    assert body["items"][4]["display"] == "User Alpha (user_alpha)"


def test_label_values_are_ordered_by_use(user_a, suggest_world, search_api):
    body = _suggest(user_a, "labels = ")
    assert body["items"] == [
        {"value": "ui", "display": "ui (3)", "type": "label"},
        {"value": "api", "display": "api (1)", "type": "label"},
        {"value": "payments", "display": "payments (1)", "type": "label"},
    ]


def test_after_a_value_keywords_are_suggested(user_a, suggest_world, search_api):
    body = _suggest(user_a, "priority = High ")
    assert (body["kind"], _values(body)) == ("keyword", ["AND", "OR", "ORDER BY"])


def test_a_value_list_suggests_only_visible_projects(user_a, suggest_world, search_api):
    body = _suggest(user_a, "project in (")
    assert body["items"] == [
        {"value": "CORE", "display": "Core platform (CORE)", "type": "project"},
        {"value": "projectsLeadByUser()", "display": "projectsLeadByUser()", "type": "function"},
    ]


def test_an_unterminated_string_does_not_fail(user_a, suggest_world, search_api):
    body = _suggest(user_a, '"unterminated')
    assert body["kind"] == "field"
    assert body["prefix"] == "unterminated"
    assert body["items"] == []


def test_an_unterminated_value_is_the_prefix(user_a, suggest_world, search_api):
    body = _suggest(user_a, 'status = "in r')
    assert _values(body) == ['"In Review"']


@pytest.mark.parametrize("q", ["status = #", "((", "cf[", ")) or", "a = b ORDER BY x DESC,"])
def test_garbage_never_fails(user_a, suggest_world, search_api, q):
    _suggest(user_a, q)
