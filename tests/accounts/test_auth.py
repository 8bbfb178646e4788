"""Password login, throttling, refresh rotation, logout and tenant binding of tokens."""

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from accounts.members.models import ApiToken, Membership, RefreshToken
from accounts.models import User
from accounts.services import membership_deactivate
from accounts.tokens import jwt_read, secret_hash
from eventlog.models import AuditEntry, OutboxEvent
from tests.conftest import PASSWORD, Api

LOGIN = "/api/v1/auth/login"
INVALID = {
    "error": {
        "code": "invalid_credentials",
        "message": "Invalid email or password.",
        "details": None,
    }
}


def login(api: Api, email: str, password: str = PASSWORD):
    return api.post(LOGIN, {"email": email, "password": password})


def api_from(host: str, ip: str) -> Api:
    api = Api(host)
    api.client = Client(HTTP_HOST=host, REMOTE_ADDR=ip)
    return api


def refresh_tokens(world, user) -> list[RefreshToken]:
    with schema_context(world.schema):
        return list(RefreshToken.objects.filter(membership__user=user).order_by("id"))


def audit_actions(world) -> list[str]:
    with schema_context(world.schema):
        entries = AuditEntry.objects.filter(action__startswith="auth.").order_by("id")
        return list(entries.values_list("action", flat=True))


# --- login ---------------------------------------------------------------------------


def test_member_logs_in_and_the_access_token_works(anon_a, world_a):
    # when
    response = login(anon_a, "admin@alpha.test")
    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert sorted(body) == ["access", "expires_in", "refresh", "token_type"]
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    claims = jwt_read(body["access"], typ="access", tid=world_a.schema)
    assert claims["sub"] == str(world_a.admin.pk)
    assert claims["role"] == "ADMIN"
    me = Api(world_a.host, body["access"]).get("/api/v1/auth/me")
    assert me.status_code == 200
    assert me.json() == {
        "id": world_a.admin.pk,
        "email": "admin@alpha.test",
        "username": "admin",
        "display_name": "Alpha Admin",
        "role": "ADMIN",
        "groups": [],
        "mfa_enabled": False,
        "tenant": {"subdomain": "alpha", "name": "Alpha Corp"},
    }
    [token] = refresh_tokens(world_a, world_a.admin)
    assert token.ip == "127.0.0.1"
    assert token.revoked_at is None
    with schema_context(world_a.schema):
        entry = AuditEntry.objects.get(action="auth.login")
        assert (entry.actor_id, entry.target_type, entry.target_id) == (
            world_a.admin.pk,
            "member",
            str(world_a.admin.pk),
        )
        assert entry.changes == {"method": [None, "password"]}
        assert OutboxEvent.objects.filter(kind="auth.login").count() == 1
    world_a.admin.refresh_from_db()
    assert world_a.admin.last_login is not None


def test_login_email_is_case_and_space_insensitive(anon_a):
    # when
    response = login(anon_a, "  User@Alpha.TEST ")
    # then
    assert response.status_code == 200


def test_me_lists_groups_and_role(world_a, lead_a):
    # given
    from accounts.members.models import Group

    with schema_context(world_a.schema):
        member = Membership.objects.get(user=world_a.lead)
        for name in ("Ops", "Dev"):
            Group.objects.create(name=name).members.add(member)
        ids = dict(Group.objects.values_list("name", "id"))
    # when
    body = lead_a.get("/api/v1/auth/me").json()
    # then
    assert body["role"] == "PROJECT_LEAD"
    assert body["groups"] == [{"id": ids["Dev"], "name": "Dev"}, {"id": ids["Ops"], "name": "Ops"}]


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("admin@alpha.test", "Wrong-Password-123"),  # wrong password
        ("nobody@alpha.test", PASSWORD),  # no such identity
        ("admin@bravo.test", PASSWORD),  # an identity, but a member of another tenant
        ("", ""),  # empty
    ],
)
def test_login_failures_all_answer_the_same_401_and_issue_nothing(anon_a, world_a, email, password):
    # when
    response = login(anon_a, email, password)
    # then
    assert response.status_code == 401
    assert response.json() == INVALID
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    with schema_context(world_a.schema):
        assert not RefreshToken.objects.exists()
        assert not AuditEntry.objects.filter(action__startswith="auth.").exists()


def test_deactivated_member_cannot_log_in(anon_a, world_a):
    # given
    with schema_context(world_a.schema):
        membership_deactivate(
            member=Membership.objects.get(user=world_a.user),
            actor=Membership.objects.get(user=world_a.admin),
        )
    # when
    response = login(anon_a, "user@alpha.test")
    # then
    assert response.status_code == 401
    assert response.json() == INVALID
    assert refresh_tokens(world_a, world_a.user) == []


def test_deactivated_identity_cannot_log_in(anon_a, world_a):
    # given the person's global identity is switched off
    User.objects.filter(pk=world_a.user.pk).update(is_active=False)
    # when
    response = login(anon_a, "user@alpha.test")
    # then
    assert response.status_code == 401
    assert response.json() == INVALID
    assert refresh_tokens(world_a, world_a.user) == []


def test_login_rejects_malformed_input_without_500(anon_a):
    # when
    malformed = anon_a.post(LOGIN, raw=b'{"email": ')
    missing = anon_a.post(LOGIN, {"email": "admin@alpha.test"})
    wrong_type = anon_a.post(LOGIN, {"email": ["x"], "password": 5})
    too_long = anon_a.post(LOGIN, {"email": "a" * 300, "password": "x"})
    nul = anon_a.post(LOGIN, {"email": "admin\u0000@alpha.test", "password": "x"})
    # then
    assert malformed.status_code == 400
    assert missing.status_code == 422
    assert missing.json()["error"]["details"][0]["field"] == "password"
    assert wrong_type.status_code == 422
    assert {d["field"] for d in wrong_type.json()["error"]["details"]} == {"email", "password"}
    assert too_long.status_code == 422
    assert nul.status_code == 422
    assert nul.json()["error"]["details"][0]["field"] == "email"


# --- throttling ----------------------------------------------------------------------


def test_account_is_locked_after_too_many_failures_even_for_the_right_password(
    settings, anon_a, world_a
):
    # given
    settings.LOGIN_MAX_FAILURES_PER_ACCOUNT = 3
    failures = [login(anon_a, "user@alpha.test", "Wrong-Pass-1").status_code for _ in range(3)]
    # when the right password comes, from another address
    locked = login(api_from(world_a.host, "203.0.113.9"), "user@alpha.test")
    other_account = login(anon_a, "lead@alpha.test")
    # then
    assert failures == [401, 401, 401]
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "rate_limited"
    assert int(locked["Retry-After"]) in range(1, settings.LOGIN_FAILURE_WINDOW_SECONDS + 1)
    assert refresh_tokens(world_a, world_a.user) == []
    assert other_account.status_code == 200


def test_account_lock_counts_unknown_emails_too(settings, anon_a):
    # given (the same answer for unknown emails: no enumeration through the lock either)
    settings.LOGIN_MAX_FAILURES_PER_ACCOUNT = 2
    for _ in range(2):
        login(anon_a, "ghost@alpha.test")
    # when
    response = login(anon_a, "ghost@alpha.test")
    # then
    assert response.status_code == 429


def test_address_is_locked_after_too_many_failures_in_that_tenant_only(settings, world_a, world_b):
    # given
    settings.LOGIN_MAX_FAILURES_PER_IP = 3
    attacker_a = api_from(world_a.host, "198.51.100.7")
    for n in range(3):
        assert login(attacker_a, f"guess{n}@alpha.test", "nope-nope-nope").status_code == 401
    # when
    same_address = login(attacker_a, "user@alpha.test")
    other_address = login(api_from(world_a.host, "198.51.100.8"), "user@alpha.test")
    other_tenant = login(api_from(world_b.host, "198.51.100.7"), "user@bravo.test")
    # then
    assert same_address.status_code == 429
    assert int(same_address["Retry-After"]) in range(1, settings.LOGIN_FAILURE_WINDOW_SECONDS + 1)
    assert other_address.status_code == 200
    assert other_tenant.status_code == 200


def test_successful_login_clears_the_account_failure_counter(settings, anon_a):
    # given
    settings.LOGIN_MAX_FAILURES_PER_ACCOUNT = 3
    for _ in range(2):
        login(anon_a, "user@alpha.test", "Wrong-Pass-1")
    assert login(anon_a, "user@alpha.test").status_code == 200
    for _ in range(2):
        login(anon_a, "user@alpha.test", "Wrong-Pass-1")
    # when (4 failures in the window, but never 3 in a row)
    response = login(anon_a, "user@alpha.test")
    # then
    assert response.status_code == 200


# --- refresh -------------------------------------------------------------------------


def test_refresh_rotates_the_refresh_token(anon_a, world_a):
    # given
    first = login(anon_a, "user@alpha.test").json()
    # when
    response = anon_a.post("/api/v1/auth/refresh", {"refresh": first["refresh"]})
    # then
    assert response.status_code == 200
    second = response.json()
    assert second["refresh"] != first["refresh"]
    assert second["access"] != first["access"]
    assert Api(world_a.host, second["access"]).get("/api/v1/auth/me").status_code == 200
    old, new = refresh_tokens(world_a, world_a.user)
    assert old.used_at is not None
    assert new.used_at is None
    assert old.family == new.family


def test_reusing_a_spent_refresh_token_revokes_the_whole_family(anon_a, world_a):
    # given a login whose refresh token was rotated once
    first = login(anon_a, "user@alpha.test").json()
    other_login = login(anon_a, "user@alpha.test").json()
    second = anon_a.post("/api/v1/auth/refresh", {"refresh": first["refresh"]}).json()
    # when the spent token is presented again (someone copied it)
    reuse = anon_a.post("/api/v1/auth/refresh", {"refresh": first["refresh"]})
    newest = anon_a.post("/api/v1/auth/refresh", {"refresh": second["refresh"]})
    unrelated = anon_a.post("/api/v1/auth/refresh", {"refresh": other_login["refresh"]})
    # then
    assert reuse.status_code == 401
    assert reuse.json()["error"]["code"] == "token_reused"
    assert newest.status_code == 401
    assert newest.json()["error"]["code"] == "token_reused"
    assert unrelated.status_code == 200
    with schema_context(world_a.schema):
        family = RefreshToken.objects.get(token_hash=secret_hash(first["refresh"])).family
        assert not RefreshToken.objects.filter(family=family, revoked_at__isnull=True).exists()


def test_refresh_with_unknown_or_malformed_token_is_401_or_422(anon_a):
    # when
    unknown = anon_a.post("/api/v1/auth/refresh", {"refresh": "not-a-token"})
    missing = anon_a.post("/api/v1/auth/refresh", {})
    # then
    assert unknown.status_code == 401
    assert unknown.json()["error"]["code"] == "token_invalid"
    assert missing.status_code == 422


def test_refresh_token_of_tenant_a_is_unknown_on_tenant_b(anon_a, world_b):
    # given
    pair = login(anon_a, "user@alpha.test").json()
    # when
    response = Api(world_b.host).post("/api/v1/auth/refresh", {"refresh": pair["refresh"]})
    # then
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_invalid"


# --- logout --------------------------------------------------------------------------


def test_logout_denylists_the_access_token_and_revokes_the_refresh_family(anon_a, world_a):
    # given two logins of the same person
    pair = login(anon_a, "user@alpha.test").json()
    other = login(anon_a, "user@alpha.test").json()
    session = Api(world_a.host, pair["access"])
    # when
    response = session.post("/api/v1/auth/logout", {"refresh": pair["refresh"]})
    # then
    assert response.status_code == 204
    again = session.get("/api/v1/auth/me")
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "token_revoked"
    refreshed = anon_a.post("/api/v1/auth/refresh", {"refresh": pair["refresh"]})
    assert refreshed.status_code == 401
    # and the other login lives on
    assert Api(world_a.host, other["access"]).get("/api/v1/auth/me").status_code == 200
    assert anon_a.post("/api/v1/auth/refresh", {"refresh": other["refresh"]}).status_code == 200
    assert audit_actions(world_a) == ["auth.login", "auth.login", "auth.logout"]


def test_logout_without_body_still_denylists_the_access_token(anon_a, world_a):
    # given
    pair = login(anon_a, "user@alpha.test").json()
    session = Api(world_a.host, pair["access"])
    # when
    response = session.post("/api/v1/auth/logout")
    # then
    assert response.status_code == 204
    assert session.get("/api/v1/auth/me").status_code == 401
    [token] = refresh_tokens(world_a, world_a.user)
    assert token.revoked_at is None  # only the access token was presented


def test_logout_does_not_revoke_someone_elses_refresh_token(anon_a, world_a):
    # given
    victim = login(anon_a, "lead@alpha.test").json()
    attacker = login(anon_a, "user@alpha.test").json()
    # when
    Api(world_a.host, attacker["access"]).post(
        "/api/v1/auth/logout", {"refresh": victim["refresh"]}
    )
    # then
    [token] = refresh_tokens(world_a, world_a.lead)
    assert token.revoked_at is None


def test_logout_requires_authentication(anon_a):
    # when
    response = anon_a.post("/api/v1/auth/logout", {})
    # then
    assert response.status_code == 401


def test_logout_all_ends_every_login_of_the_member_only(anon_a, world_a):
    # given
    first = login(anon_a, "user@alpha.test").json()
    second = login(anon_a, "user@alpha.test").json()
    colleague = login(anon_a, "lead@alpha.test").json()
    generation = world_a.member(world_a.user).token_generation
    # when
    response = Api(world_a.host, first["access"]).post("/api/v1/auth/logout-all")
    # then
    assert response.status_code == 204
    for pair in (first, second):
        assert Api(world_a.host, pair["access"]).get("/api/v1/auth/me").status_code == 401
        assert anon_a.post("/api/v1/auth/refresh", {"refresh": pair["refresh"]}).status_code == 401
    assert world_a.member(world_a.user).token_generation == generation + 1
    assert Api(world_a.host, colleague["access"]).get("/api/v1/auth/me").status_code == 200
    assert audit_actions(world_a) == ["auth.login"] * 3 + ["auth.logout_all"]


# --- tenant binding and deactivation -------------------------------------------------


def test_access_token_of_tenant_a_is_refused_on_tenant_b(admin_a, world_b):
    # when
    response = Api(world_b.host, admin_a.token).get("/api/v1/auth/me")
    # then
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_wrong_tenant"


def test_me_requires_authentication(anon_a):
    # when
    response = anon_a.get("/api/v1/auth/me")
    garbage = Api(anon_a.host, "garbage").get("/api/v1/auth/me")
    # then
    assert response.status_code == 401
    assert garbage.status_code == 401
    assert garbage.json()["error"]["code"] == "token_invalid"


def test_deactivation_stops_access_refresh_and_api_tokens_at_once(anon_a, world_a):
    # given a member with a login and an API token
    pair = login(anon_a, "user@alpha.test").json()
    session = Api(world_a.host, pair["access"])
    raw_api_token = session.post("/api/v1/auth/tokens", {"name": "ci"}).json()["token"]
    assert Api(world_a.host, raw_api_token).get("/api/v1/auth/me").status_code == 200
    # when an admin deactivates them
    with schema_context(world_a.schema):
        membership_deactivate(
            member=Membership.objects.get(user=world_a.user),
            actor=Membership.objects.get(user=world_a.admin),
        )
    # then
    assert session.get("/api/v1/auth/me").status_code == 401
    assert anon_a.post("/api/v1/auth/refresh", {"refresh": pair["refresh"]}).status_code == 401
    api_token = Api(world_a.host, raw_api_token).get("/api/v1/auth/me")
    assert api_token.status_code == 401
    assert api_token.json()["error"]["code"] == "token_invalid"
    with schema_context(world_a.schema):
        assert not ApiToken.objects.filter(revoked_at__isnull=True).exists()
        assert not RefreshToken.objects.filter(revoked_at__isnull=True).exists()
