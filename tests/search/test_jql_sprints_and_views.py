# ruff: noqa: F811 (pytest fixtures imported from other test modules)
"""Sprints and recently viewed tickets in JQL, beyond the query table of
test_jql_postgres: sprints by id, views recorded by the ticket endpoint (per tenant
and user, capped at 50), and sprint suggestions."""

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from accounts.members.models import Membership
from saas.redis import redis_client
from search.jql.views import HISTORY_SIZE, ticket_view_record, tickets_viewed
from search.suggest import jql_suggestions
from tests.search.test_jql_postgres import _keys, search_world  # noqa: F401
from tests.tickets.conftest import private_project_a, project_a  # noqa: F401 (fixtures)
from tickets.models import Sprint, Ticket


def test_a_sprint_by_id(world_a, search_world):
    sprints = search_world["sprints"]
    # then
    assert _keys(world_a, world_a.user, f"sprint = {sprints['Sprint 1']}") == [
        "CORE-2",
        "CORE-1",
    ]
    assert _keys(world_a, world_a.user, f"sprint in ({sprints['Sprint 3']}, 'Sprint 2')") == [
        "CORE-4",
        "CORE-3",
        "CORE-2",
    ]


def test_a_sprint_of_a_private_project_is_found_by_its_members(world_a, search_world):
    with schema_context(world_a.schema):
        secret = Ticket.objects.get(key="SECRET-1")
        Ticket.objects.filter(pk=secret.pk).update(sprint_id=search_world["sprints"]["Hidden"])
        Sprint.objects.get(pk=search_world["sprints"]["Hidden"]).memberships.create(ticket=secret)
    connection.set_schema_to_public()
    # then the lead (a member of the private project) finds it; the user may not name it
    assert _keys(world_a, world_a.lead, 'sprint = "hidden SPRINT"') == ["SECRET-1"]
    assert _keys(world_a, world_a.lead, "sprint in futureSprints()") == ["CORE-4", "SECRET-1"]
    assert _keys(world_a, world_a.user, "sprint in futureSprints()") == ["CORE-4"]


def test_opening_a_ticket_records_it_in_the_callers_issue_history(user_a, world_a, search_world):
    # given nothing viewed by the lead
    assert _keys(world_a, world_a.lead, "issue in issueHistory()") == []
    # when the user opens CORE-5 (after CORE-3, SECRET-1 and CORE-1 in the fixture)
    response = user_a.get("/api/v1/tickets/CORE-5")
    # then
    assert response.status_code == 200
    assert _keys(world_a, world_a.user, "key in issueHistory() ORDER BY lastViewed DESC") == [
        "CORE-5",
        "CORE-1",
        "CORE-3",
    ]
    assert _keys(world_a, world_a.lead, "issue in issueHistory()") == []


def test_ordering_by_last_viewed_works_for_someone_who_viewed_nothing(world_a, search_world):
    # given the lead viewed nothing; when / then every ticket ties, the key decides
    assert _keys(world_a, world_a.lead, "project = CORE ORDER BY lastViewed DESC, key ASC") == [
        f"CORE-{n}" for n in range(1, 6)
    ]


def test_a_ticket_the_caller_may_not_see_is_not_recorded(user_a, world_a, search_world):
    # when the user asks for the private ticket
    response = user_a.get("/api/v1/tickets/SECRET-1")
    # then 404 and the history holds what the fixture put there only
    assert response.status_code == 404
    with schema_context(world_a.schema):
        keys = dict(
            Ticket.objects.filter(
                pk__in=tickets_viewed(schema=world_a.schema, user_id=world_a.user.pk)
            ).values_list("pk", "key")
        )
    connection.set_schema_to_public()
    assert sorted(keys.values()) == ["CORE-1", "CORE-3", "SECRET-1"]


def test_issue_history_keeps_the_last_50_per_tenant_and_user(world_a, world_b):
    # when 55 views are recorded in alpha and one in bravo for the same user id
    for n in range(1, 56):
        ticket_view_record(schema=world_a.schema, user_id=7, ticket_id=n, at=1_000_000 + n)
    ticket_view_record(schema=world_b.schema, user_id=7, ticket_id=999, at=2_000_000)
    # then alpha keeps the latest 50, newest first, under a key naming its schema
    viewed = tickets_viewed(schema=world_a.schema, user_id=7)
    assert HISTORY_SIZE == 50
    assert list(viewed) == list(range(55, 5, -1))
    assert list(tickets_viewed(schema=world_b.schema, user_id=7)) == [999]
    key = f"jql:viewed:{world_a.schema}:7"
    assert redis_client().zcard(key) == 50
    assert 0 < redis_client().ttl(key) <= 90 * 86_400


def test_sprint_suggestions_put_open_sprints_first(world_a, search_world):
    with schema_context(world_a.schema):
        user = Membership.objects.get(user=world_a.user)
        lead = Membership.objects.get(user=world_a.lead)
        as_user = jql_suggestions(text="sprint = ", cursor=None, member=user)
        as_lead = jql_suggestions(text="sprint in (", cursor=None, member=lead)
        typed = jql_suggestions(text="sprint in (spr", cursor=None, member=user)
    connection.set_schema_to_public()
    # then functions, then the active sprint, the future ones, the closed ones
    assert as_user["kind"] == "value"
    assert [(i["value"], i["display"]) for i in as_user["items"]] == [
        ("openSprints()", "openSprints()"),
        ("futureSprints()", "futureSprints()"),
        ("closedSprints()", "closedSprints()"),
        ('"Sprint 2"', "Sprint 2 (CORE, Active)"),
        ('"Sprint 3"', "Sprint 3 (CORE, Future)"),
        ('"Sprint 1"', "Sprint 1 (CORE, Closed)"),
    ]
    # the lead also sees the private project's sprint; a prefix filters both lists
    assert [i["value"] for i in as_lead["items"]][3:] == [
        '"Sprint 2"',
        '"Hidden sprint"',
        '"Sprint 3"',
        '"Sprint 1"',
    ]
    assert [i["value"] for i in typed["items"]] == ['"Sprint 2"', '"Sprint 3"', '"Sprint 1"']


@pytest.mark.parametrize("field", ["sprint", "lastViewed"])
def test_new_fields_are_suggested(world_a, search_world, field):
    with schema_context(world_a.schema):
        user = Membership.objects.get(user=world_a.user)
        fields = jql_suggestions(text=field[:4], cursor=None, member=user)
    connection.set_schema_to_public()
    assert field in [item["value"] for item in fields["items"]]
