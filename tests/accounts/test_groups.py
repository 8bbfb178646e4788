"""Groups of a workspace: listing with member counts, creating, renaming, membership."""

import pytest
from django_tenants.utils import schema_context

from accounts.members.models import Group, Membership
from accounts.models import User
from eventlog.models import AuditEntry, OutboxEvent
from tests.conftest import Api, TenantWorld

# given helpers ---------------------------------------------------------------------------


def group_add(world: TenantWorld, name: str, *users: User, description: str = "") -> Group:
    with schema_context(world.schema):
        group = Group.objects.create(name=name, description=description)
        group.members.add(*Membership.objects.filter(user__in=users))
    return group


def group_state(world: TenantWorld, group_id: int) -> tuple | None:
    """(name, description, member identity ids) of a group, or None if it is gone."""
    with schema_context(world.schema):
        group = Group.objects.filter(pk=group_id).first()
        if group is None:
            return None
        ids = sorted(group.members.values_list("user_id", flat=True))
        return (group.name, group.description, ids)


def audit(world: TenantWorld, prefix: str = "group.") -> list[tuple]:
    with schema_context(world.schema):
        return list(
            AuditEntry.objects.filter(action__startswith=prefix)
            .order_by("id")
            .values_list("action", "actor_id", "target_id", "changes")
        )


def outbox(world: TenantWorld, prefix: str = "group.") -> list[tuple]:
    with schema_context(world.schema):
        return list(
            OutboxEvent.objects.filter(kind__startswith=prefix)
            .order_by("id")
            .values_list("kind", "aggregate_id", "actor_id", "payload")
        )


def member_ref(user: User, display_name: str, is_active: bool = True) -> dict:
    return {
        "id": user.pk,
        "username": user.username,
        "display_name": display_name,
        "is_active": is_active,
    }


# GET /groups -----------------------------------------------------------------------------


def test_members_list_groups_by_name_with_member_counts(world_a, user_a):
    # given
    ops = group_add(world_a, "ops", world_a.user, description="On call")
    devs = group_add(world_a, "Developers", world_a.user, world_a.lead, world_a.admin)
    empty = group_add(world_a, "Empty")
    # when
    response = user_a.get("/api/v1/groups")
    # then
    assert response.status_code == 200, response.content
    assert response.json() == {
        "items": [
            {"id": devs.pk, "name": "Developers", "description": "", "member_count": 3},
            {"id": empty.pk, "name": "Empty", "description": "", "member_count": 0},
            {"id": ops.pk, "name": "ops", "description": "On call", "member_count": 1},
        ],
        "total": 3,
        "offset": 0,
        "limit": 50,
    }


def test_group_list_filters_by_name(world_a, user_a):
    # given
    group_add(world_a, "Developers")
    ops = group_add(world_a, "DevOps")
    # when
    response = user_a.get("/api/v1/groups", q="OPS", limit=10)
    # then
    assert response.json() == {
        "items": [{"id": ops.pk, "name": "DevOps", "description": "", "member_count": 0}],
        "total": 1,
        "offset": 0,
        "limit": 10,
    }


def test_group_list_query_count_does_not_grow_with_groups(
    world_a, admin_a, django_assert_num_queries
):
    # given twelve groups with members
    users = [world_a.admin, world_a.lead, world_a.user]
    for n in range(12):
        group_add(world_a, f"Group {n:02}", *users[: n % 4])
    # when: SET search_path public, tenant lookup, SET search_path alpha, the caller's
    # membership, then count and page (with member counts)
    with django_assert_num_queries(6):
        response = admin_a.get("/api/v1/groups")
    # then
    assert response.status_code == 200
    assert response.json()["total"] == 12
    assert [g["member_count"] for g in response.json()["items"]] == [0, 1, 2, 3] * 3


# POST /groups ----------------------------------------------------------------------------


def test_admin_creates_a_group_with_members(world_a, admin_a):
    # when
    response = admin_a.post(
        "/api/v1/groups",
        {
            "name": "  Support ",
            "description": "First line",
            "members": [world_a.user.pk, world_a.lead.pk, world_a.user.pk],
        },
    )
    # then
    assert response.status_code == 201, response.content
    with schema_context(world_a.schema):
        group = Group.objects.get(name="Support")
    assert response.json() == {
        "id": group.pk,
        "name": "Support",
        "description": "First line",
        "member_count": 2,
        "members": [
            member_ref(world_a.lead, "Lead Alpha"),
            member_ref(world_a.user, "User Alpha"),
        ],
    }
    members = sorted([world_a.lead.pk, world_a.user.pk])
    assert group_state(world_a, group.pk) == ("Support", "First line", members)
    assert audit(world_a) == [
        (
            "group.created",
            world_a.admin.pk,
            str(group.pk),
            {
                "name": [None, "Support"],
                "description": [None, "First line"],
                "members": [None, members],
            },
        )
    ]
    assert outbox(world_a) == [
        (
            "group.created",
            str(group.pk),
            world_a.admin.pk,
            {"group_id": group.pk, "name": "Support", "member_ids": members},
        )
    ]


def test_group_names_are_unique_regardless_of_case(world_a, admin_a):
    # given
    group_add(world_a, "Support")
    # when
    response = admin_a.post("/api/v1/groups", {"name": "SUPPORT"})
    # then
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "group_name_taken",
        "message": "A group named 'SUPPORT' already exists.",
        "details": {"name": "SUPPORT"},
    }
    with schema_context(world_a.schema):
        assert list(Group.objects.values_list("name", flat=True)) == ["Support"]
    assert audit(world_a) == []


def test_creating_a_group_with_non_members_lists_them_and_creates_nothing(
    world_a, world_b, admin_a
):
    # when
    response = admin_a.post(
        "/api/v1/groups",
        {"name": "Mixed", "members": [world_a.user.pk, world_b.admin.pk, 987654321]},
    )
    # then
    assert response.status_code == 422
    assert response.json()["error"] == {
        "code": "invalid",
        "message": "Some users are not members of this workspace.",
        "details": [
            {
                "field": "members",
                "message": "Not a member of this workspace.",
                "value": world_b.admin.pk,
            },
            {"field": "members", "message": "Not a member of this workspace.", "value": 987654321},
        ],
    }
    with schema_context(world_a.schema):
        assert not Group.objects.exists()
    assert audit(world_a) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "   "}, "name"),
        ({"name": "x" * 151}, "name"),
        ({"name": "nul\x00"}, "name"),
        ({}, "name"),
        ({"name": "Ok", "members": ["abc"]}, "members.0"),
        ({"name": "Ok", "members": [0]}, "members.0"),
    ],
)
def test_creating_a_group_validates_the_body(world_a, admin_a, body, field):
    # when
    response = admin_a.post("/api/v1/groups", body)
    # then
    assert response.status_code == 422
    assert [d["field"] for d in response.json()["error"]["details"]] == [field]
    with schema_context(world_a.schema):
        assert not Group.objects.exists()


@pytest.mark.parametrize("caller", ["lead_a", "user_a"])
def test_only_admins_create_groups(request, world_a, caller):
    # given
    api: Api = request.getfixturevalue(caller)
    # when
    response = api.post("/api/v1/groups", {"name": "Shadow IT"})
    # then
    assert response.status_code == 403
    assert response.json()["error"]["details"] == {"permission": "admin:users"}
    with schema_context(world_a.schema):
        assert not Group.objects.exists()
    assert audit(world_a) == []


# GET /groups/{groupId} -------------------------------------------------------------------


def test_member_reads_a_group_with_its_members_by_name(world_a, user_a):
    # given
    group = group_add(world_a, "Support", world_a.user, world_a.lead, description="Help")
    # when
    response = user_a.get(f"/api/v1/groups/{group.pk}")
    # then
    assert response.status_code == 200
    assert response.json() == {
        "id": group.pk,
        "name": "Support",
        "description": "Help",
        "member_count": 2,
        "members": [
            member_ref(world_a.lead, "Lead Alpha"),
            member_ref(world_a.user, "User Alpha"),
        ],
    }


def test_group_detail_lists_members_including_deactivated(world_a, admin_a):
    # given
    group = group_add(world_a, "Support", world_a.user, world_a.admin, description="Help")
    with schema_context(world_a.schema):
        Membership.objects.filter(user=world_a.user).update(is_active=False)
    # when
    response = admin_a.get(f"/api/v1/groups/{group.pk}")
    # then
    assert response.status_code == 200
    assert response.json() == {
        "id": group.pk,
        "name": "Support",
        "description": "Help",
        "member_count": 2,
        "members": [
            member_ref(world_a.admin, "Alpha Admin"),
            member_ref(world_a.user, "User Alpha", is_active=False),
        ],
    }


def test_group_of_another_workspace_is_not_found(world_b, admin_a):
    # given a group that exists only in B
    theirs = group_add(world_b, "Bravo Team")
    # when
    response = admin_a.get(f"/api/v1/groups/{theirs.pk}")
    missing = admin_a.get("/api/v1/groups/99999999999999999999")
    # then
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "not_found",
        "message": "No such group.",
        "details": None,
    }
    assert missing.status_code == 404


# PUT /groups/{groupId} -------------------------------------------------------------------


def test_admin_renames_a_group(world_a, admin_a):
    # given
    group = group_add(world_a, "Support", world_a.lead, description="Help")
    # when
    response = admin_a.put(f"/api/v1/groups/{group.pk}", {"name": "Customer Support"})
    # then
    assert response.status_code == 200, response.content
    assert response.json() == {
        "id": group.pk,
        "name": "Customer Support",
        "description": "Help",
        "member_count": 1,
        "members": [member_ref(world_a.lead, "Lead Alpha")],
    }
    assert group_state(world_a, group.pk) == ("Customer Support", "Help", [world_a.lead.pk])
    assert audit(world_a) == [
        (
            "group.updated",
            world_a.admin.pk,
            str(group.pk),
            {"name": ["Support", "Customer Support"]},
        )
    ]
    assert outbox(world_a) == [
        (
            "group.updated",
            str(group.pk),
            world_a.admin.pk,
            {"group_id": group.pk, "fields": ["name"]},
        )
    ]


def test_renaming_a_group_only_changing_case_is_allowed(world_a, admin_a):
    # given
    group = group_add(world_a, "support")
    # when
    response = admin_a.put(f"/api/v1/groups/{group.pk}", {"name": "Support", "description": ""})
    # then
    assert response.status_code == 200
    assert group_state(world_a, group.pk) == ("Support", "", [])
    assert audit(world_a) == [
        ("group.updated", world_a.admin.pk, str(group.pk), {"name": ["support", "Support"]})
    ]


def test_renaming_a_group_to_a_taken_name_is_a_conflict(world_a, admin_a):
    # given
    group_add(world_a, "Support")
    group = group_add(world_a, "Sales")
    # when
    response = admin_a.put(f"/api/v1/groups/{group.pk}", {"name": "support"})
    # then
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "group_name_taken"
    assert group_state(world_a, group.pk) == ("Sales", "", [])
    assert audit(world_a) == []


@pytest.mark.parametrize("caller", ["lead_a", "user_a"])
def test_only_admins_rename_groups(request, world_a, caller):
    # given
    api: Api = request.getfixturevalue(caller)
    group = group_add(world_a, "Support")
    # when
    response = api.put(f"/api/v1/groups/{group.pk}", {"name": "Mine"})
    # then
    assert response.status_code == 403
    assert group_state(world_a, group.pk) == ("Support", "", [])
    assert audit(world_a) == []


# DELETE /groups/{groupId} ----------------------------------------------------------------


def test_admin_deletes_a_group_and_its_members_stay(world_a, admin_a):
    # given
    group = group_add(world_a, "Support", world_a.user)
    # when
    response = admin_a.delete(f"/api/v1/groups/{group.pk}")
    # then
    assert response.status_code == 204
    assert response.content == b""
    assert group_state(world_a, group.pk) is None
    assert world_a.member(world_a.user).is_active is True
    assert audit(world_a) == [
        (
            "group.deleted",
            world_a.admin.pk,
            str(group.pk),
            {"name": ["Support", None], "members": [[world_a.user.pk], None]},
        )
    ]
    assert outbox(world_a) == [
        (
            "group.deleted",
            str(group.pk),
            world_a.admin.pk,
            {"group_id": group.pk, "name": "Support"},
        )
    ]
    assert admin_a.get(f"/api/v1/groups/{group.pk}").status_code == 404


@pytest.mark.parametrize("caller", ["lead_a", "user_a"])
def test_only_admins_delete_groups(request, world_a, caller):
    # given
    api: Api = request.getfixturevalue(caller)
    group = group_add(world_a, "Support", world_a.user)
    # when
    response = api.delete(f"/api/v1/groups/{group.pk}")
    # then
    assert response.status_code == 403
    assert group_state(world_a, group.pk) == ("Support", "", [world_a.user.pk])
    assert audit(world_a) == []


# POST /groups/{groupId}/members ----------------------------------------------------------


def test_admin_adds_members_to_a_group(world_a, admin_a):
    # given
    group = group_add(world_a, "Support", world_a.user)
    # when
    response = admin_a.post(
        f"/api/v1/groups/{group.pk}/members",
        {"user_ids": [world_a.lead.pk, world_a.user.pk, world_a.admin.pk]},
    )
    # then
    assert response.status_code == 200, response.content
    assert response.json() == {
        "id": group.pk,
        "name": "Support",
        "description": "",
        "member_count": 3,
        "members": [
            member_ref(world_a.admin, "Alpha Admin"),
            member_ref(world_a.lead, "Lead Alpha"),
            member_ref(world_a.user, "User Alpha"),
        ],
    }
    added = sorted([world_a.admin.pk, world_a.lead.pk])
    assert audit(world_a) == [
        ("group.members_added", world_a.admin.pk, str(group.pk), {"members_added": [None, added]})
    ]
    assert outbox(world_a) == [
        (
            "group.members_added",
            str(group.pk),
            world_a.admin.pk,
            {"group_id": group.pk, "user_ids": added},
        )
    ]


def test_adding_members_already_in_the_group_records_nothing(world_a, admin_a):
    # given
    group = group_add(world_a, "Support", world_a.user)
    # when
    response = admin_a.post(f"/api/v1/groups/{group.pk}/members", {"user_ids": [world_a.user.pk]})
    # then
    assert response.status_code == 200
    assert response.json()["member_count"] == 1
    assert audit(world_a) == []


def test_adding_non_members_lists_them_and_adds_nobody(world_a, world_b, admin_a):
    # given
    group = group_add(world_a, "Support")
    # when
    response = admin_a.post(
        f"/api/v1/groups/{group.pk}/members",
        {"user_ids": [world_a.lead.pk, world_b.user.pk]},
    )
    # then
    assert response.status_code == 422
    assert response.json()["error"]["details"] == [
        {
            "field": "user_ids",
            "message": "Not a member of this workspace.",
            "value": world_b.user.pk,
        }
    ]
    assert group_state(world_a, group.pk) == ("Support", "", [])
    assert audit(world_a) == []


def test_adding_nobody_changes_nothing(world_a, admin_a):
    # given
    group = group_add(world_a, "Support", world_a.lead)
    # when
    response = admin_a.post(f"/api/v1/groups/{group.pk}/members", {"user_ids": []})
    # then
    assert response.status_code == 200
    assert response.json()["member_count"] == 1
    assert group_state(world_a, group.pk) == ("Support", "", [world_a.lead.pk])
    assert audit(world_a) == []


def test_adding_members_needs_the_list_of_ids(world_a, admin_a):
    # given
    group = group_add(world_a, "Support")
    # when
    response = admin_a.post(f"/api/v1/groups/{group.pk}/members", {"user_ids": "all"})
    # then
    assert response.status_code == 422
    assert [d["field"] for d in response.json()["error"]["details"]] == ["user_ids"]


@pytest.mark.parametrize("caller", ["lead_a", "user_a"])
def test_only_admins_add_members(request, world_a, caller):
    # given
    api: Api = request.getfixturevalue(caller)
    group = group_add(world_a, "Support")
    # when
    response = api.post(f"/api/v1/groups/{group.pk}/members", {"user_ids": [world_a.user.pk]})
    # then
    assert response.status_code == 403
    assert group_state(world_a, group.pk) == ("Support", "", [])
    assert audit(world_a) == []


def test_adding_members_to_an_unknown_group_is_not_found(admin_a, world_a):
    # when
    response = admin_a.post("/api/v1/groups/424242/members", {"user_ids": [world_a.user.pk]})
    # then
    assert response.status_code == 404


# DELETE /groups/{groupId}/members/{userId} -----------------------------------------------


def test_admin_removes_a_member_from_a_group(world_a, admin_a):
    # given
    group = group_add(world_a, "Support", world_a.user, world_a.lead)
    # when
    response = admin_a.delete(f"/api/v1/groups/{group.pk}/members/{world_a.user.pk}")
    # then
    assert response.status_code == 204
    assert group_state(world_a, group.pk) == ("Support", "", [world_a.lead.pk])
    assert audit(world_a) == [
        (
            "group.members_removed",
            world_a.admin.pk,
            str(group.pk),
            {"members_removed": [[world_a.user.pk], None]},
        )
    ]
    assert outbox(world_a) == [
        (
            "group.members_removed",
            str(group.pk),
            world_a.admin.pk,
            {"group_id": group.pk, "user_ids": [world_a.user.pk]},
        )
    ]


def test_removing_someone_not_in_the_group_is_a_no_op(world_a, admin_a):
    # given
    group = group_add(world_a, "Support", world_a.lead)
    # when
    response = admin_a.delete(f"/api/v1/groups/{group.pk}/members/{world_a.user.pk}")
    # then
    assert response.status_code == 204
    assert group_state(world_a, group.pk) == ("Support", "", [world_a.lead.pk])
    assert audit(world_a) == []


def test_removing_a_non_member_of_the_workspace_is_not_found(world_a, world_b, admin_a):
    # given
    group = group_add(world_a, "Support")
    # when
    response = admin_a.delete(f"/api/v1/groups/{group.pk}/members/{world_b.user.pk}")
    # then
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "No such user in this workspace."


@pytest.mark.parametrize("caller", ["lead_a", "user_a"])
def test_only_admins_remove_members(request, world_a, caller):
    # given
    api: Api = request.getfixturevalue(caller)
    group = group_add(world_a, "Support", world_a.user)
    # when
    response = api.delete(f"/api/v1/groups/{group.pk}/members/{world_a.user.pk}")
    # then
    assert response.status_code == 403
    assert group_state(world_a, group.pk) == ("Support", "", [world_a.user.pk])
    assert audit(world_a) == []


def test_groups_are_isolated_per_workspace(world_a, world_b, admin_b):
    # given a group in A
    ours = group_add(world_a, "Alpha only", world_a.user)
    # when B's admin lists and reads groups on B's host
    listed = admin_b.get("/api/v1/groups")
    read = admin_b.get(f"/api/v1/groups/{ours.pk}")
    # then
    assert listed.json()["total"] == 0
    assert read.status_code == 404
