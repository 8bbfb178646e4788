"""Saved filters: `/api/v1/filters` (CRUD, sharing, favourites) and `filter = ...` in JQL."""

from typing import Any

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from accounts.members.models import Group, Membership
from eventlog.models import AuditEntry, OutboxEvent
from search.models import FilterFavourite, SavedFilter
from tests.tickets.conftest import make_ticket, project_a  # noqa: F401 (fixtures)

URL = "/api/v1/filters"


def _owner(user: Any) -> dict:
    return {"id": user.pk, "username": user.username, "display_name": user.name}


def _saved(world: Any, *, owner: Any, name: str, jql: str = "", **fields: Any) -> SavedFilter:
    with schema_context(world.schema):
        groups = fields.pop("groups", [])
        saved = SavedFilter.objects.create(name=name, jql=jql, owner=owner, **fields)
        saved.shared_with_groups.set(groups)
    connection.set_schema_to_public()
    return saved


def _group_with(world: Any, *users: Any) -> Group:
    with schema_context(world.schema):
        group = Group.objects.create(name="Support")
        group.members.add(*Membership.objects.filter(user__in=users))
    connection.set_schema_to_public()
    return group


def _kinds(world: Any) -> tuple[list[str], list[str]]:
    with schema_context(world.schema):
        audit = list(
            AuditEntry.objects.filter(action__startswith="filter.")
            .order_by("pk")
            .values_list("action", flat=True)
        )
        outbox = list(
            OutboxEvent.objects.filter(kind__startswith="filter.")
            .order_by("pk")
            .values_list("kind", flat=True)
        )
    connection.set_schema_to_public()
    return audit, outbox


# POST /filters -------------------------------------------------------------------------


def test_member_creates_a_filter(user_a, world_a, project_a):  # noqa: F811
    # when
    response = user_a.post(
        URL,
        {
            "name": "  My bugs ",
            "description": "Bugs in core",
            "jql": "project = CORE AND type = Bug ORDER BY created DESC",
            "shared_with_projects": [project_a.pk],
        },
    )
    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["created_at"]
    assert body["updated_at"]
    del body["created_at"], body["updated_at"]
    assert body == {
        "id": body["id"],
        "name": "My bugs",
        "description": "Bugs in core",
        "jql": "project = CORE AND type = Bug ORDER BY created DESC",
        "owner": _owner(world_a.user),
        "is_public": False,
        "shared_with_groups": [],
        "shared_with_projects": [{"id": project_a.pk, "key": "CORE", "name": "Core platform"}],
        "is_favourite": False,
    }
    assert _kinds(world_a) == (["filter.created"], ["filter.created"])


def test_invalid_jql_is_refused_with_its_position(user_a, world_a):
    # when
    response = user_a.post(URL, {"name": "Broken", "jql": "project = NOPE"})
    # then
    assert response.status_code == 422
    assert response.json()["error"] == {
        "code": "jql_invalid",
        "message": "The value 'NOPE' does not exist for the field 'project' at line 1, "
        "character 11",
        "details": {"line": 1, "column": 11},
    }
    with schema_context(world_a.schema):
        assert not SavedFilter.objects.exists()
    connection.set_schema_to_public()
    assert _kinds(world_a) == ([], [])


def test_syntax_error_is_refused(user_a):
    response = user_a.post(URL, {"name": "Broken", "jql": "status = "})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "jql_invalid"
    assert response.json()["error"]["details"]["line"] == 1


def test_names_are_unique_per_owner_ignoring_case(user_a, admin_a, world_a):
    _saved(world_a, owner=world_a.user, name="Mine")
    # when
    again = user_a.post(URL, {"name": "MINE", "jql": ""})
    other_owner = admin_a.post(URL, {"name": "mine", "jql": ""})
    # then
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "filter_name_taken"
    assert other_owner.status_code == 201


# GET /filters, GET /filters/{filterId} -------------------------------------------------


def test_visibility_private_shared_with_group_and_public(user_a, world_a):
    private = _saved(world_a, owner=world_a.admin, name="Admin private")
    group = _group_with(world_a, world_a.user)
    shared = _saved(world_a, owner=world_a.admin, name="Support queue", groups=[group])
    public = _saved(world_a, owner=world_a.admin, name="Everyone", is_public=True)
    other_group = _group_with_name(world_a, "Managers", world_a.lead)
    _saved(world_a, owner=world_a.admin, name="Managers only", groups=[other_group])
    # when
    listed = user_a.get(URL)
    # then
    assert user_a.get(f"{URL}/{private.pk}").status_code == 404
    assert user_a.get(f"{URL}/{shared.pk}").json()["name"] == "Support queue"
    assert user_a.get(f"{URL}/{public.pk}").json()["name"] == "Everyone"
    assert listed.status_code == 200
    assert [f["name"] for f in listed.json()["items"]] == ["Everyone", "Support queue"]
    assert listed.json()["total"] == 2


def _group_with_name(world: Any, name: str, *users: Any) -> Group:
    with schema_context(world.schema):
        group = Group.objects.create(name=name)
        group.members.add(*Membership.objects.filter(user__in=users))
    connection.set_schema_to_public()
    return group


def test_filter_shared_with_a_visible_project_is_visible(user_a, world_a, project_a):  # noqa: F811
    saved = _saved(world_a, owner=world_a.admin, name="Core work")
    with schema_context(world_a.schema):
        saved.shared_with_projects.add(project_a)
    connection.set_schema_to_public()
    assert user_a.get(f"{URL}/{saved.pk}").status_code == 200


def test_admin_sees_every_filter(admin_a, world_a):
    saved = _saved(world_a, owner=world_a.user, name="User private")
    assert admin_a.get(f"{URL}/{saved.pk}").status_code == 200
    assert admin_a.get(URL).json()["total"] == 1


def test_list_searches_names(user_a, world_a):
    _saved(world_a, owner=world_a.user, name="Open bugs")
    _saved(world_a, owner=world_a.user, name="Release blockers")
    response = user_a.get(URL, q="BUG")
    assert [f["name"] for f in response.json()["items"]] == ["Open bugs"]


# PUT / DELETE /filters/{filterId} ------------------------------------------------------


def test_owner_updates_their_filter(user_a, world_a):
    saved = _saved(world_a, owner=world_a.user, name="Mine", jql="status = Done")
    # when
    response = user_a.put(f"{URL}/{saved.pk}", {"name": "Mine, renamed", "jql": "priority = High"})
    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["name"], body["jql"], body["description"]) == (
        "Mine, renamed",
        "priority = High",
        "",
    )
    assert _kinds(world_a) == (["filter.updated"], ["filter.updated"])


def test_update_with_invalid_jql_changes_nothing(user_a, world_a):
    saved = _saved(world_a, owner=world_a.user, name="Mine", jql="status = Done")
    response = user_a.put(f"{URL}/{saved.pk}", {"jql": "status = Nowhere"})
    assert response.status_code == 422
    assert response.json()["error"]["message"] == (
        "The value 'Nowhere' does not exist for the field 'status' at line 1, character 10"
    )
    with schema_context(world_a.schema):
        assert SavedFilter.objects.get(pk=saved.pk).jql == "status = Done"
    connection.set_schema_to_public()


def test_only_the_owner_may_change_a_public_filter(user_a, world_a):
    saved = _saved(world_a, owner=world_a.admin, name="Everyone", jql="", is_public=True)
    # when
    put = user_a.put(f"{URL}/{saved.pk}", {"name": "Hijacked"})
    delete = user_a.delete(f"{URL}/{saved.pk}")
    # then
    assert put.status_code == 403
    assert put.json()["error"]["code"] == "filter_not_owner"
    assert delete.status_code == 403
    with schema_context(world_a.schema):
        assert SavedFilter.objects.get(pk=saved.pk).name == "Everyone"
    connection.set_schema_to_public()
    assert _kinds(world_a) == ([], [])


def test_owner_deletes_their_filter(user_a, world_a):
    saved = _saved(world_a, owner=world_a.user, name="Mine")
    # when
    response = user_a.delete(f"{URL}/{saved.pk}")
    # then
    assert response.status_code == 204
    assert user_a.get(f"{URL}/{saved.pk}").status_code == 404
    assert _kinds(world_a) == (["filter.deleted"], ["filter.deleted"])


# favourites -----------------------------------------------------------------------------


def test_favourites(user_a, world_a):
    starred = _saved(world_a, owner=world_a.user, name="Starred")
    _saved(world_a, owner=world_a.user, name="Plain")
    # when
    first = user_a.post(f"{URL}/{starred.pk}/favourite")
    again = user_a.post(f"{URL}/{starred.pk}/favourite")
    # then
    assert first.status_code == 200
    assert first.json()["is_favourite"] is True
    assert again.json()["is_favourite"] is True
    assert [f["name"] for f in user_a.get(URL, favourite="true").json()["items"]] == ["Starred"]
    assert [f["name"] for f in user_a.get(URL, favourite="false").json()["items"]] == ["Plain"]
    assert _kinds(world_a) == (["filter.favourited"], ["filter.favourited"])
    # when unstarred
    removed = user_a.delete(f"{URL}/{starred.pk}/favourite")
    # then
    assert removed.json()["is_favourite"] is False
    assert user_a.get(URL, favourite="true").json()["items"] == []
    with schema_context(world_a.schema):
        assert not FilterFavourite.objects.exists()
    connection.set_schema_to_public()


def test_cannot_star_an_invisible_filter(user_a, world_a):
    private = _saved(world_a, owner=world_a.admin, name="Admin private")
    assert user_a.post(f"{URL}/{private.pk}/favourite").status_code == 404


# filter = ... in JQL ---------------------------------------------------------------------


@pytest.fixture
def tickets(make_ticket):  # noqa: F811
    high = make_ticket(summary="High one", priority="High")
    low = make_ticket(summary="Low one", priority="Low")
    other = make_ticket(summary="High two", priority="High")
    return high, low, other


def _search(api: Any, jql: str) -> Any:
    return api.get("/api/v1/search/advanced", jql=jql)


def _keys(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["key"] for item in response.json()["items"]]


def test_filter_by_name_in_jql(user_a, world_a, tickets):
    high, low, other = tickets
    _saved(world_a, owner=world_a.user, name="High stuff", jql="priority = High ORDER BY key")
    # then
    assert _keys(_search(user_a, 'filter = "high stuff" ORDER BY key ASC')) == [
        high.key,
        other.key,
    ]
    assert _keys(_search(user_a, 'filter != "High stuff"')) == [low.key]
    assert _keys(_search(user_a, 'summary ~ two AND filter IN ("High stuff")')) == [other.key]


def test_filter_by_id_and_nested(user_a, world_a, tickets):
    high, _low, other = tickets
    inner = _saved(world_a, owner=world_a.user, name="High", jql="priority = High")
    _saved(
        world_a, owner=world_a.user, name="High two", jql=f"filter = {inner.pk} AND summary ~ two"
    )
    assert _keys(_search(user_a, f"filter = {inner.pk} ORDER BY key")) == [high.key, other.key]
    assert _keys(_search(user_a, 'filter = "High two"')) == [other.key]


def test_unknown_or_invisible_filter_in_jql(user_a, world_a, tickets):
    _saved(world_a, owner=world_a.admin, name="Admin private", jql="")
    response = _search(user_a, 'status = Done OR filter = "Admin private"')
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "The value 'Admin private' does not exist for the field 'filter' at line 1, character 27"
    )


def test_a_filter_referring_to_itself_is_refused(user_a, world_a, tickets):
    first = _saved(world_a, owner=world_a.user, name="Base", jql="priority = High")
    second = _saved(world_a, owner=world_a.user, name="Derived", jql="filter = Base")
    # when Base is changed to refer to Derived (which refers to Base)
    indirect = user_a.put(f"{URL}/{first.pk}", {"jql": "status = Done OR filter = Derived"})
    direct = user_a.put(f"{URL}/{second.pk}", {"jql": "filter = Derived"})
    # then
    assert indirect.status_code == 422
    assert indirect.json()["error"] == {
        "code": "jql_invalid",
        "message": "The filter 'Base' refers to itself (Base -> Derived -> Base) at line 1, "
        "character 27",
        "details": {"line": 1, "column": 27},
    }
    assert direct.status_code == 422
    assert direct.json()["error"]["message"] == (
        "The filter 'Derived' refers to itself (Derived -> Derived) at line 1, character 10"
    )


def test_a_cycle_already_stored_fails_the_search_not_the_server(user_a, world_a, tickets):
    _saved(world_a, owner=world_a.user, name="Loop", jql="filter = Loop")
    response = _search(user_a, "filter = Loop")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "The filter 'Loop' refers to itself (Loop -> Loop) at line 1, character 10"
    )


def test_a_broken_stored_filter_is_reported_where_it_is_used(user_a, world_a, tickets):
    _saved(world_a, owner=world_a.user, name="Broken", jql="status = Gone")
    response = _search(user_a, "filter = Broken")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "The filter 'Broken' is not valid (The value 'Gone' does not exist for the field "
        "'status' at line 1, character 10) at line 1, character 10"
    )
