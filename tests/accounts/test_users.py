"""Members of a workspace: the directory, creating accounts, changing and deactivating."""

import pytest
from django_tenants.utils import schema_context

from accounts.members.models import ApiToken, Group, Membership, Role
from accounts.models import User
from accounts.services import identity_create, membership_create
from accounts.tokens import secret_hash
from eventlog.models import AuditEntry, OutboxEvent
from tenants.models import Tenant
from tests.conftest import PASSWORD, Api, TenantWorld, token_for

NEW_PASSWORD = "Plum-Tree-Lantern-77"


# given helpers ---------------------------------------------------------------------------


def member_add(
    world: TenantWorld, *, name: str, role: str = Role.USER, display_name: str = ""
) -> User:
    with schema_context(world.schema):
        user = identity_create(
            email=f"{name}@{world.tenant.subdomain}.test",
            password=PASSWORD,
            username=name,
            display_name=display_name,
        )
        membership_create(user=user, role=role)
    return user


def group_add(world: TenantWorld, name: str, *users: User) -> Group:
    with schema_context(world.schema):
        group = Group.objects.create(name=name)
        group.members.add(*Membership.objects.filter(user__in=users))
    return group


def membership(world: TenantWorld, user: User) -> Membership:
    return world.member(user)


def group_names(world: TenantWorld, user: User) -> list[str]:
    with schema_context(world.schema):
        return sorted(Membership.objects.get(user=user).groups.values_list("name", flat=True))


def audit(world: TenantWorld, action: str) -> list[tuple]:
    with schema_context(world.schema):
        return list(
            AuditEntry.objects.filter(action=action)
            .order_by("id")
            .values_list("actor_id", "target_id", "changes")
        )


def outbox(world: TenantWorld, kind: str) -> list[tuple]:
    with schema_context(world.schema):
        return list(
            OutboxEvent.objects.filter(kind=kind)
            .order_by("id")
            .values_list("aggregate_id", "actor_id", "payload")
        )


def member_count(world: TenantWorld) -> int:
    return Tenant.objects.get(pk=world.tenant.pk).member_count


def admin_body(world: TenantWorld, groups: list[dict] | None = None) -> dict:
    return {
        "id": world.admin.pk,
        "username": "admin",
        "email": "admin@alpha.test",
        "display_name": "Alpha Admin",
        "role": "ADMIN",
        "is_active": True,
        "groups": groups or [],
    }


def lead_body(world: TenantWorld, groups: list[dict] | None = None) -> dict:
    return {
        "id": world.lead.pk,
        "username": "lead_alpha",
        "email": "lead@alpha.test",
        "display_name": "Lead Alpha",
        "role": "PROJECT_LEAD",
        "is_active": True,
        "groups": groups or [],
    }


def user_body(world: TenantWorld, groups: list[dict] | None = None, **changes) -> dict:
    return {
        "id": world.user.pk,
        "username": "user_alpha",
        "email": "user@alpha.test",
        "display_name": "User Alpha",
        "role": "USER",
        "is_active": True,
        "groups": groups or [],
        **changes,
    }


def ref(group: Group) -> dict:
    return {"id": group.pk, "name": group.name}


# GET /users ------------------------------------------------------------------------------


def test_every_member_sees_the_directory_sorted_by_name_with_groups(world_a, user_a):
    # given
    ops = group_add(world_a, "ops", world_a.user)
    devs = group_add(world_a, "Developers", world_a.user, world_a.admin)
    # when
    response = user_a.get("/api/v1/users")
    # then
    assert response.status_code == 200, response.content
    assert response.json() == {
        "items": [
            admin_body(world_a, [ref(devs)]),
            lead_body(world_a),
            user_body(world_a, [ref(devs), ref(ops)]),
        ],
        "total": 3,
        "offset": 0,
        "limit": 50,
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"q": "ALPHA ADMIN"}, ["admin"]),
        ({"q": "lead_"}, ["lead"]),
        ({"q": "USER@alpha"}, ["user"]),
        ({"q": "@alpha.test"}, ["admin", "lead", "user", "gone"]),
        ({"role": "PROJECT_LEAD"}, ["lead"]),
        ({"active": "false"}, ["gone"]),
        ({"active": "true"}, ["admin", "lead", "user"]),
        ({"group": "developers"}, ["admin", "user"]),
        ({"group": "no such group"}, []),
        ({"role": "USER", "active": "true", "group": "Developers"}, ["user"]),
    ],
)
def test_directory_filters(world_a, admin_a, query, expected):
    # given a deactivated member and a group
    gone = member_add(world_a, name="gone", display_name="Zed Gone")
    with schema_context(world_a.schema):
        Membership.objects.filter(user=gone).update(is_active=False)
    group_add(world_a, "Developers", world_a.user, world_a.admin)
    ids = {"admin": world_a.admin.pk, "lead": world_a.lead.pk, "user": world_a.user.pk}
    ids["gone"] = gone.pk
    # when
    response = admin_a.get("/api/v1/users", **query)
    # then
    assert response.status_code == 200, response.content
    assert [item["id"] for item in response.json()["items"]] == [ids[k] for k in expected]


def test_directory_filters_by_group_id(world_a, admin_a):
    # given
    devs = group_add(world_a, "Developers", world_a.lead)
    # when
    response = admin_a.get("/api/v1/users", group=str(devs.pk))
    # then
    assert response.status_code == 200
    assert [item["id"] for item in response.json()["items"]] == [world_a.lead.pk]


def test_directory_paginates(world_a, admin_a):
    # when
    response = admin_a.get("/api/v1/users", offset=1, limit=1)
    # then
    assert response.json() == {"items": [lead_body(world_a)], "total": 3, "offset": 1, "limit": 1}


def test_directory_query_count_does_not_grow_with_members_or_groups(
    world_a, admin_a, django_assert_num_queries
):
    # given ten more members, each in two groups
    users = [member_add(world_a, name=f"extra{n}") for n in range(10)]
    group_add(world_a, "Red", *users)
    blue = group_add(world_a, "Blue", *users, world_a.admin)
    # when: SET search_path public, tenant lookup, SET search_path alpha, the caller's
    # membership, then count, page (with identities) and the page's groups
    with django_assert_num_queries(7):
        response = admin_a.get("/api/v1/users")
    # then
    assert response.status_code == 200
    assert response.json()["total"] == 13
    assert response.json()["items"][0] == admin_body(world_a, [ref(blue)])


@pytest.mark.parametrize(
    ("query", "field"),
    [({"role": "OWNER"}, "role"), ({"active": "maybe"}, "active"), ({"limit": 101}, "limit")],
)
def test_directory_refuses_invalid_filters(admin_a, query, field):
    # when
    response = admin_a.get("/api/v1/users", **query)
    # then
    assert response.status_code == 422
    assert [d["field"] for d in response.json()["error"]["details"]] == [field]


def test_directory_needs_authentication(anon_a):
    # when
    response = anon_a.get("/api/v1/users")
    # then
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


# POST /users -----------------------------------------------------------------------------


def test_admin_creates_an_account_and_membership(world_a, admin_a):
    # given
    devs = group_add(world_a, "Developers")
    ops = group_add(world_a, "Ops")
    before = member_count(world_a)
    # when
    response = admin_a.post(
        "/api/v1/users",
        {
            "username": "new.person",
            "email": " New.Person@Example.TEST ",
            "display_name": "New Person",
            "password": NEW_PASSWORD,
            "groups": ["DEVELOPERS", ops.pk],
            "role": "PROJECT_LEAD",
        },
    )
    # then
    assert response.status_code == 201, response.content
    user = User.objects.get(email="new.person@example.test")
    assert response.json() == {
        "id": user.pk,
        "username": "new.person",
        "email": "new.person@example.test",
        "display_name": "New Person",
        "role": "PROJECT_LEAD",
        "is_active": True,
        "groups": [ref(devs), ref(ops)],
    }
    assert user.check_password(NEW_PASSWORD)
    assert (user.first_name, user.last_name) == ("New", "Person")
    assert membership(world_a, user).role == Role.PROJECT_LEAD
    assert group_names(world_a, user) == ["Developers", "Ops"]
    assert member_count(world_a) == before + 1
    assert audit(world_a, "member.created")[-1] == (
        world_a.admin.pk,
        str(user.pk),
        {"role": [None, "PROJECT_LEAD"], "groups": [None, ["Developers", "Ops"]]},
    )
    assert outbox(world_a, "member.created")[-1] == (
        str(user.pk),
        world_a.admin.pk,
        {"user_id": user.pk, "role": "PROJECT_LEAD"},
    )


def test_created_account_defaults_to_user_role_and_username_from_email(world_a, admin_a):
    # when
    response = admin_a.post(
        "/api/v1/users", {"email": "kim@example.test", "password": NEW_PASSWORD}
    )
    # then
    assert response.status_code == 201, response.content
    user = User.objects.get(email="kim@example.test")
    assert response.json() == {
        "id": user.pk,
        "username": "kim",
        "email": "kim@example.test",
        "display_name": "kim",
        "role": "USER",
        "is_active": True,
        "groups": [],
    }


def test_creating_an_account_for_someone_from_another_workspace_says_invite_them(
    world_a, world_b, admin_a
):
    # given world_b's admin has an identity (with a password) but no membership in A
    users_before = User.objects.count()
    # when
    response = admin_a.post(
        "/api/v1/users",
        {"username": "someone", "email": "ADMIN@bravo.test", "password": NEW_PASSWORD},
    )
    # then
    assert response.status_code == 409
    assert response.json() == {
        "error": {
            "code": "email_taken",
            "message": "An account with this email already exists; invite this person instead.",
            "details": {"email": "admin@bravo.test"},
        }
    }
    world_b.admin.refresh_from_db()
    assert world_b.admin.check_password(PASSWORD)
    assert not world_b.admin.check_password(NEW_PASSWORD)
    assert User.objects.count() == users_before
    with schema_context(world_a.schema):
        assert not Membership.objects.filter(user=world_b.admin).exists()


def test_creating_an_account_for_a_member_is_a_conflict(world_a, admin_a):
    # when
    response = admin_a.post("/api/v1/users", {"email": "lead@alpha.test", "password": NEW_PASSWORD})
    # then
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "already_member",
        "message": "This person is already a member of this workspace.",
        "details": {"user_id": world_a.lead.pk},
    }


def test_creating_an_account_with_a_taken_username_is_a_conflict(world_a, admin_a):
    # given
    before = member_count(world_a)
    # when
    response = admin_a.post(
        "/api/v1/users",
        {"username": "LEAD_alpha", "email": "fresh@example.test", "password": NEW_PASSWORD},
    )
    # then
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "username_taken"
    assert not User.objects.filter(email="fresh@example.test").exists()
    assert member_count(world_a) == before


def test_creating_an_account_lists_every_invalid_field(world_a, admin_a):
    # given
    audits_before = len(audit(world_a, "member.created"))
    # when
    response = admin_a.post(
        "/api/v1/users",
        {
            "username": "bad name!",
            "email": "not-an-email",
            "password": "zq8!",
            "groups": ["nope", 987654321],
        },
    )
    # then
    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "invalid",
            "message": "Invalid account details.",
            "details": [
                {
                    "field": "username",
                    "message": "Use letters, digits and the characters . @ + - _ only.",
                },
                {"field": "email", "message": "Enter a valid email address."},
                {
                    "field": "password",
                    "message": "This password is too short. "
                    "It must contain at least 10 characters.",
                },
                {"field": "groups", "message": "Unknown group 'nope'.", "value": "nope"},
                {
                    "field": "groups",
                    "message": "Unknown group 987654321.",
                    "value": 987654321,
                },
            ],
        }
    }
    assert not User.objects.filter(username="bad name!").exists()
    assert len(audit(world_a, "member.created")) == audits_before


def test_creating_an_account_refuses_a_weak_password(admin_a):
    # when
    response = admin_a.post(
        "/api/v1/users",
        {"email": "weak@example.test", "password": "password123", "display_name": "Weak"},
    )
    # then
    assert response.status_code == 422
    assert response.json()["error"]["details"] == [
        {"field": "password", "message": "This password is too common."}
    ]
    assert not User.objects.filter(email="weak@example.test").exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "x@example.test", "password": NEW_PASSWORD, "role": "OWNER"}, "role"),
        ({"password": NEW_PASSWORD}, "email"),
        ({"email": "x@example.test", "password": NEW_PASSWORD, "groups": [True]}, "groups.0"),
        ({"email": "x@example.test", "password": NEW_PASSWORD, "username": "a\x00b"}, "username"),
        ({"email": "x@example.test", "password": "p" * 513}, "password"),
    ],
)
def test_creating_an_account_validates_the_body(admin_a, body, field):
    # when
    response = admin_a.post("/api/v1/users", body)
    # then
    assert response.status_code == 422
    assert {d["field"].split(".")[0] for d in response.json()["error"]["details"]} == {
        field.split(".")[0]
    }
    assert not User.objects.filter(email="x@example.test").exists()


def test_creating_an_account_with_malformed_json_is_a_bad_request(admin_a):
    # when
    response = admin_a.post("/api/v1/users", raw="{not json")
    # then
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


@pytest.mark.parametrize("caller", ["lead_a", "user_a"])
def test_only_admins_create_accounts(request, world_a, caller):
    # given
    api: Api = request.getfixturevalue(caller)
    before = member_count(world_a)
    audits_before = len(audit(world_a, "member.created"))
    # when
    response = api.post(
        "/api/v1/users",
        {"username": "sneaky", "email": "sneaky@example.test", "password": NEW_PASSWORD},
    )
    # then
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "forbidden",
        "message": "You need the 'admin:users' permission for this.",
        "details": {"permission": "admin:users"},
    }
    assert not User.objects.filter(email="sneaky@example.test").exists()
    assert member_count(world_a) == before
    assert len(audit(world_a, "member.created")) == audits_before


# GET /users/{userId} ---------------------------------------------------------------------


def test_member_reads_another_member(world_a, user_a):
    # when
    response = user_a.get(f"/api/v1/users/{world_a.lead.pk}")
    # then
    assert response.status_code == 200
    assert response.json() == lead_body(world_a)


def test_identity_of_another_workspace_is_not_found(world_a, world_b, admin_a):
    # when
    response = admin_a.get(f"/api/v1/users/{world_b.admin.pk}")
    # then
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": "not_found",
            "message": "No such user in this workspace.",
            "details": None,
        }
    }


def test_other_workspace_admin_cannot_read_our_members(world_a, admin_b):
    # when
    response = admin_b.get(f"/api/v1/users/{world_a.lead.pk}")
    # then
    assert response.status_code == 404


@pytest.mark.parametrize(("user_id", "status"), [("0", 404), ("-3", 404), (str(2**64), 404)])
def test_out_of_range_ids_are_not_found(admin_a, user_id, status):
    # when
    response = admin_a.get(f"/api/v1/users/{user_id}")
    # then
    assert response.status_code == status


def test_non_numeric_id_is_invalid(admin_a):
    # when
    response = admin_a.get("/api/v1/users/abc")
    # then
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "userId"


# PUT /users/{userId} ---------------------------------------------------------------------


def test_admin_changes_role_and_groups(world_a, admin_a, user_a):
    # given
    devs = group_add(world_a, "Developers")
    ops = group_add(world_a, "Ops", world_a.user)
    group_add(world_a, "QA", world_a.user)
    generation = membership(world_a, world_a.user).token_generation
    # when
    response = admin_a.put(
        f"/api/v1/users/{world_a.user.pk}",
        {"role": "PROJECT_LEAD", "groups": [devs.pk, "ops"]},
    )
    # then
    assert response.status_code == 200, response.content
    assert response.json() == user_body(world_a, [ref(devs), ref(ops)], role="PROJECT_LEAD")
    member = membership(world_a, world_a.user)
    assert member.role == Role.PROJECT_LEAD
    assert member.token_generation == generation + 1
    assert group_names(world_a, world_a.user) == ["Developers", "Ops"]
    assert audit(world_a, "member.updated") == [
        (
            world_a.admin.pk,
            str(world_a.user.pk),
            {
                "role": ["USER", "PROJECT_LEAD"],
                "groups": [["Ops", "QA"], ["Developers", "Ops"]],
            },
        )
    ]
    assert outbox(world_a, "member.updated") == [
        (
            str(world_a.user.pk),
            world_a.admin.pk,
            {"user_id": world_a.user.pk, "fields": ["groups", "role"]},
        )
    ]


def test_role_change_revokes_the_members_access_tokens(world_a, admin_a, user_a):
    # given the user's token works
    assert user_a.get("/api/v1/users").status_code == 200
    # when
    admin_a.put(f"/api/v1/users/{world_a.user.pk}", {"role": "PROJECT_LEAD"})
    # then
    response = user_a.get("/api/v1/users")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_revoked"
    fresh = Api(world_a.host, token_for(world_a, world_a.user))
    assert fresh.get("/api/v1/users").status_code == 200


def test_unchanged_values_record_nothing(world_a, admin_a):
    # given
    generation = membership(world_a, world_a.user).token_generation
    # when
    response = admin_a.put(
        f"/api/v1/users/{world_a.user.pk}", {"role": "USER", "groups": [], "is_active": True}
    )
    # then
    assert response.status_code == 200
    assert response.json() == user_body(world_a)
    assert membership(world_a, world_a.user).token_generation == generation
    assert audit(world_a, "member.updated") == []
    assert audit(world_a, "member.reactivated") == []


def test_member_changes_their_own_display_name(world_a, user_a):
    # when
    response = user_a.put(f"/api/v1/users/{world_a.user.pk}", {"display_name": "  Ursula A. "})
    # then
    assert response.status_code == 200, response.content
    assert response.json() == user_body(world_a, display_name="Ursula A.")
    assert User.objects.get(pk=world_a.user.pk).display_name == "Ursula A."
    assert audit(world_a, "member.updated") == [
        (world_a.user.pk, str(world_a.user.pk), {"display_name": ["User Alpha", "Ursula A."]})
    ]


@pytest.mark.parametrize(
    ("caller", "target", "body"),
    [
        ("user_a", "user", {"role": "ADMIN"}),
        ("user_a", "user", {"display_name": "Ursula", "groups": []}),
        ("user_a", "user", {"is_active": False}),
        ("user_a", "lead", {"display_name": "Hacked"}),
        ("lead_a", "user", {"role": "PROJECT_LEAD"}),
        ("lead_a", "user", {"is_active": False}),
        ("admin_a", "user", {"display_name": "Renamed by admin"}),
    ],
)
def test_forbidden_changes_change_nothing(request, world_a, caller, target, body):
    # given
    api: Api = request.getfixturevalue(caller)
    target_user = getattr(world_a, target)
    before = membership(world_a, target_user)
    # when
    response = api.put(f"/api/v1/users/{target_user.pk}", body)
    # then
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    after = membership(world_a, target_user)
    assert (after.role, after.is_active, after.token_generation) == (
        before.role,
        before.is_active,
        before.token_generation,
    )
    assert after.user.display_name == before.user.display_name
    assert group_names(world_a, target_user) == []
    assert audit(world_a, "member.updated") == []
    assert audit(world_a, "member.deactivated") == []


@pytest.mark.parametrize("body", [{"role": "USER"}, {"role": "PROJECT_LEAD"}, {"is_active": False}])
def test_last_admin_cannot_be_demoted_or_deactivated(world_a, admin_a, body):
    # given the admin is the only admin
    generation = membership(world_a, world_a.admin).token_generation
    # when
    response = admin_a.put(f"/api/v1/users/{world_a.admin.pk}", body)
    # then
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "last_admin",
        "message": "A workspace needs at least one active admin.",
        "details": None,
    }
    member = membership(world_a, world_a.admin)
    assert (member.role, member.is_active, member.token_generation) == (
        Role.ADMIN,
        True,
        generation,
    )
    assert audit(world_a, "member.updated") == []
    assert audit(world_a, "member.deactivated") == []


def test_last_admin_refusal_rolls_back_the_other_changes_of_the_request(world_a, admin_a):
    # given
    group_add(world_a, "Ops")
    # when
    response = admin_a.put(
        f"/api/v1/users/{world_a.admin.pk}", {"groups": ["Ops"], "is_active": False}
    )
    # then
    assert response.status_code == 409
    assert group_names(world_a, world_a.admin) == []
    assert audit(world_a, "member.updated") == []


def test_admin_may_step_down_when_another_admin_remains(world_a, admin_a):
    # given
    member_add(world_a, name="second", role=Role.ADMIN, display_name="Second Admin")
    # when
    response = admin_a.put(f"/api/v1/users/{world_a.admin.pk}", {"role": "USER"})
    # then
    assert response.status_code == 200
    assert response.json()["role"] == "USER"
    assert membership(world_a, world_a.admin).role == Role.USER


def test_admin_deactivates_and_reactivates_a_member(world_a, admin_a, user_a):
    # given
    before = member_count(world_a)
    # when
    deactivated = admin_a.put(f"/api/v1/users/{world_a.user.pk}", {"is_active": False})
    # then
    assert deactivated.status_code == 200, deactivated.content
    assert deactivated.json() == user_body(world_a, is_active=False)
    assert member_count(world_a) == before - 1
    assert user_a.get("/api/v1/users").status_code == 401
    # when
    reactivated = admin_a.put(f"/api/v1/users/{world_a.user.pk}", {"is_active": True})
    # then
    assert reactivated.status_code == 200
    assert reactivated.json() == user_body(world_a)
    member = membership(world_a, world_a.user)
    assert (member.is_active, member.deactivated_at) == (True, None)
    assert member_count(world_a) == before
    assert audit(world_a, "member.deactivated") == [
        (world_a.admin.pk, str(world_a.user.pk), {"is_active": [True, False]})
    ]
    assert audit(world_a, "member.reactivated") == [
        (world_a.admin.pk, str(world_a.user.pk), {"is_active": [False, True]})
    ]
    assert [kind for kind, *_ in outbox_kinds(world_a, world_a.user)] == [
        "member.deactivated",
        "member.reactivated",
    ]
    # tokens issued before the deactivation stay revoked
    assert user_a.get("/api/v1/users").status_code == 401


def outbox_kinds(world: TenantWorld, user: User) -> list[tuple]:
    with schema_context(world.schema):
        return list(
            OutboxEvent.objects.filter(aggregate_type="member", aggregate_id=str(user.pk))
            .exclude(kind="member.created")
            .order_by("id")
            .values_list("kind", "actor_id")
        )


@pytest.mark.parametrize(
    ("body", "details"),
    [
        (
            {"groups": ["nope"]},
            [{"field": "groups", "message": "Unknown group 'nope'.", "value": "nope"}],
        ),
        (
            {"display_name": ""},
            [
                {
                    "field": "display_name",
                    "message": "String should have at least 1 character",
                    "type": "string_too_short",
                }
            ],
        ),
        (
            {"display_name": "bad\x00name"},
            [
                {
                    "field": "display_name",
                    "message": "Value error, must not contain NUL characters",
                    "type": "value_error",
                }
            ],
        ),
    ],
)
def test_invalid_changes_are_refused_and_change_nothing(world_a, user_a, admin_a, body, details):
    # given
    api = user_a if "display_name" in body else admin_a
    # when
    response = api.put(f"/api/v1/users/{world_a.user.pk}", body)
    # then
    assert response.status_code == 422
    assert response.json()["error"]["details"] == details
    assert User.objects.get(pk=world_a.user.pk).display_name == "User Alpha"
    assert group_names(world_a, world_a.user) == []
    assert audit(world_a, "member.updated") == []


def test_updating_a_non_member_is_not_found(world_b, admin_a):
    # when
    response = admin_a.put(f"/api/v1/users/{world_b.user.pk}", {"role": "ADMIN"})
    # then
    assert response.status_code == 404
    with schema_context(world_b.schema):
        assert Membership.objects.get(user=world_b.user).role == Role.USER


# DELETE /users/{userId} ------------------------------------------------------------------


def test_admin_deactivates_a_member_and_their_tokens_stop_working_at_once(world_a, admin_a, user_a):
    # given the user also has a personal API token, and both credentials work
    raw = "tkt_abc123_0123456789secret"
    with schema_context(world_a.schema):
        ApiToken.objects.create(
            membership=Membership.objects.get(user=world_a.user),
            name="ci",
            prefix="abc123",
            token_hash=secret_hash(raw),
        )
    api_token_client = Api(world_a.host, raw)
    assert user_a.get("/api/v1/users").status_code == 200
    assert api_token_client.get("/api/v1/users").status_code == 200
    before = member_count(world_a)
    # when
    response = admin_a.delete(f"/api/v1/users/{world_a.user.pk}")
    # then
    assert response.status_code == 204
    assert response.content == b""
    refused = user_a.get("/api/v1/users")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "token_revoked"
    assert api_token_client.get("/api/v1/users").status_code == 401
    member = membership(world_a, world_a.user)
    assert member.is_active is False
    assert member.deactivated_at is not None
    assert member_count(world_a) == before - 1
    assert audit(world_a, "member.deactivated") == [
        (world_a.admin.pk, str(world_a.user.pk), {"is_active": [True, False]})
    ]
    assert outbox(world_a, "member.deactivated") == [
        (str(world_a.user.pk), world_a.admin.pk, {"user_id": world_a.user.pk})
    ]
    # the person is still in the directory, marked inactive
    listed = admin_a.get(f"/api/v1/users/{world_a.user.pk}")
    assert listed.json() == user_body(world_a, is_active=False)


def test_deactivating_twice_records_once(world_a, admin_a):
    # given
    before = member_count(world_a)
    admin_a.delete(f"/api/v1/users/{world_a.user.pk}")
    # when
    response = admin_a.delete(f"/api/v1/users/{world_a.user.pk}")
    # then
    assert response.status_code == 204
    assert member_count(world_a) == before - 1
    assert len(audit(world_a, "member.deactivated")) == 1


def test_last_admin_cannot_deactivate_themselves(world_a, admin_a):
    # when
    response = admin_a.delete(f"/api/v1/users/{world_a.admin.pk}")
    # then
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "last_admin"
    assert membership(world_a, world_a.admin).is_active is True
    assert audit(world_a, "member.deactivated") == []


@pytest.mark.parametrize("caller", ["lead_a", "user_a"])
def test_only_admins_deactivate(request, world_a, caller):
    # given
    api: Api = request.getfixturevalue(caller)
    before = member_count(world_a)
    # when
    response = api.delete(f"/api/v1/users/{world_a.user.pk}")
    # then
    assert response.status_code == 403
    assert membership(world_a, world_a.user).is_active is True
    assert member_count(world_a) == before
    assert audit(world_a, "member.deactivated") == []


def test_deactivating_a_non_member_is_not_found(world_b, admin_a):
    # when
    response = admin_a.delete(f"/api/v1/users/{world_b.user.pk}")
    # then
    assert response.status_code == 404
    with schema_context(world_b.schema):
        assert Membership.objects.get(user=world_b.user).is_active is True


# GET /users/{userId}/groups --------------------------------------------------------------


def test_member_groups_are_listed_by_name(world_a, user_a):
    # given
    ops = group_add(world_a, "ops", world_a.lead)
    devs = group_add(world_a, "Developers", world_a.lead)
    group_add(world_a, "Other", world_a.user)
    # when
    response = user_a.get(f"/api/v1/users/{world_a.lead.pk}/groups")
    # then
    assert response.status_code == 200
    assert response.json() == {
        "items": [ref(devs), ref(ops)],
        "total": 2,
        "offset": 0,
        "limit": 50,
    }


def test_groups_of_a_non_member_are_not_found(world_b, user_a):
    # when
    response = user_a.get(f"/api/v1/users/{world_b.admin.pk}/groups")
    # then
    assert response.status_code == 404


def test_a_retried_account_creation_with_the_same_idempotency_key_is_replayed(world_a, admin_a):
    # given
    body = {"email": "retry@example.test", "password": NEW_PASSWORD, "display_name": "Re Try"}
    headers = {"Idempotency-Key": "create-retry-1"}
    audits_before = len(audit(world_a, "member.created"))
    first = admin_a.post("/api/v1/users", body, headers=headers)
    # when
    retry = admin_a.post("/api/v1/users", body, headers=headers)
    # then
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    assert User.objects.filter(email="retry@example.test").count() == 1
    assert len(audit(world_a, "member.created")) == audits_before + 1
