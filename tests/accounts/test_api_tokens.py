"""Personal API tokens: created once-visible, stored hashed, listed, used, revoked."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from accounts.members.models import ApiToken
from accounts.tokens import secret_hash
from eventlog.models import AuditEntry, OutboxEvent
from tests.conftest import Api

TOKENS = "/api/v1/auth/tokens"
RAW_TOKEN = re.compile(r"^tkt_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$")


def stored(world) -> list[ApiToken]:
    with schema_context(world.schema):
        return list(ApiToken.objects.select_related("membership").order_by("id"))


def audit(world) -> list[tuple[str, str, dict]]:
    with schema_context(world.schema):
        entries = AuditEntry.objects.filter(target_type="api_token").order_by("id")
        return [(e.action, e.target_id, e.changes) for e in entries]


def test_create_shows_the_raw_token_once_and_stores_only_its_hash(user_a, world_a):
    # when
    response = user_a.post(TOKENS, {"name": "  CI pipeline  "})
    # then
    assert response.status_code == 201, response.content
    body = response.json()
    match = RAW_TOKEN.match(body["token"])
    assert match is not None
    [token] = stored(world_a)
    assert token.membership.user_id == world_a.user.pk
    assert token.prefix == match.group(1)
    assert token.token_hash == secret_hash(body["token"])
    assert token.expires_at is None
    assert body == {
        "id": token.pk,
        "name": "CI pipeline",
        "prefix": token.prefix,
        "created_at": body["created_at"],
        "expires_at": None,
        "last_used_at": None,
        "revoked_at": None,
        "token": body["token"],
    }
    assert audit(world_a) == [
        (
            "auth.api_token_created",
            str(token.pk),
            {
                "name": [None, "CI pipeline"],
                "prefix": [None, token.prefix],
                "expires_at": [None, None],
            },
        )
    ]
    with schema_context(world_a.schema):
        assert OutboxEvent.objects.filter(kind="auth.api_token_created").count() == 1


def test_the_token_authenticates_as_its_member_and_records_use(user_a, world_a):
    # given
    raw = user_a.post(TOKENS, {"name": "script"}).json()["token"]
    # when
    response = Api(world_a.host, raw).get("/api/v1/auth/me")
    # then
    assert response.status_code == 200
    assert response.json()["email"] == "user@alpha.test"
    [token] = stored(world_a)
    assert token.last_used_at is not None


def test_list_shows_own_tokens_newest_first_without_secrets(user_a, lead_a, world_a):
    # given
    first = user_a.post(TOKENS, {"name": "first"}).json()
    second = user_a.post(TOKENS, {"name": "second", "expires_in_days": 30}).json()
    lead_a.post(TOKENS, {"name": "someone else's"})
    # when
    response = user_a.get(TOKENS)
    # then
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 2
    assert [item["id"] for item in body["items"]] == [second["id"], first["id"]]
    assert all(set(item) == set(first) - {"token"} for item in body["items"])
    assert first["token"] not in response.content.decode()
    assert second["token"] not in response.content.decode()


def test_expiring_token_expires(user_a, world_a):
    # given
    body = user_a.post(TOKENS, {"name": "temp", "expires_in_days": 7}).json()
    [token] = stored(world_a)
    assert timedelta(days=7) - (token.expires_at - token.created_at) < timedelta(seconds=5)
    with schema_context(world_a.schema):
        ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now())
    # when
    response = Api(world_a.host, body["token"]).get("/api/v1/auth/me")
    # then
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_expired"


def test_revoke_stops_the_token_at_once(user_a, world_a):
    # given
    body = user_a.post(TOKENS, {"name": "script"}).json()
    # when
    response = user_a.delete(f"{TOKENS}/{body['id']}")
    again = user_a.delete(f"{TOKENS}/{body['id']}")
    # then
    assert response.status_code == 204
    assert again.status_code == 204
    assert Api(world_a.host, body["token"]).get("/api/v1/auth/me").status_code == 401
    [token] = stored(world_a)
    assert token.revoked_at is not None
    assert [action for action, _, _ in audit(world_a)] == [
        "auth.api_token_created",
        "auth.api_token_revoked",
    ]


def test_cannot_revoke_another_members_token(user_a, lead_a, world_a):
    # given
    body = lead_a.post(TOKENS, {"name": "lead's"}).json()
    # when
    response = user_a.delete(f"{TOKENS}/{body['id']}")
    # then
    assert response.status_code == 404
    [token] = stored(world_a)
    assert token.revoked_at is None
    assert Api(world_a.host, body["token"]).get("/api/v1/auth/me").status_code == 200
    assert [action for action, _, _ in audit(world_a)] == ["auth.api_token_created"]


def test_token_of_tenant_a_is_unknown_on_tenant_b(user_a, admin_b, world_a, world_b):
    # given
    body = user_a.post(TOKENS, {"name": "script"}).json()
    # when
    used_on_b = Api(world_b.host, body["token"]).get("/api/v1/auth/me")
    revoked_from_b = admin_b.delete(f"{TOKENS}/{body['id']}")
    # then
    assert used_on_b.status_code == 401
    assert revoked_from_b.status_code == 404
    [token] = stored(world_a)
    assert token.revoked_at is None


def test_an_api_token_cannot_create_more_tokens(user_a, world_a):
    # given
    raw = user_a.post(TOKENS, {"name": "script"}).json()["token"]
    # when
    response = Api(world_a.host, raw).post(TOKENS, {"name": "another"})
    # then
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "api_token_not_allowed"
    assert len(stored(world_a)) == 1


def test_invalid_input_is_422_and_creates_nothing(user_a, world_a):
    # when
    answers = [
        user_a.post(TOKENS, {"name": "   "}),
        user_a.post(TOKENS, {"name": ""}),
        user_a.post(TOKENS, {"name": "x" * 101}),
        user_a.post(TOKENS, {"name": "x", "expires_in_days": 0}),
        user_a.post(TOKENS, {"name": "x", "expires_in_days": "soon"}),
        user_a.delete(f"{TOKENS}/abc"),
        user_a.delete(f"{TOKENS}/99999999999999999999"),
        user_a.post(TOKENS, {"name": "nul\u0000byte"}),
    ]
    # then
    assert [r.status_code for r in answers] == [422] * 8
    assert answers[0].json()["error"]["details"] == [{"field": "name", "message": "Enter a name."}]
    assert stored(world_a) == []


@pytest.mark.parametrize(
    "raw", ["tkt_", "tkt_\u0000_x", "tkt_abc", f"tkt_{'a' * 40}_x", "tkt_0123456789ab_wrong"]
)
def test_malformed_or_unknown_api_tokens_are_401(world_a, raw):
    # when
    response = Api(world_a.host, raw).get("/api/v1/auth/me")
    # then
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_invalid"


def test_revoking_an_unknown_token_is_404(user_a):
    # when
    response = user_a.delete(f"{TOKENS}/123456")
    # then
    assert response.status_code == 404


def test_tokens_need_authentication(anon_a):
    # when
    listing = anon_a.get(TOKENS)
    creating = anon_a.post(TOKENS, {"name": "x"})
    # then
    assert listing.status_code == 401
    assert creating.status_code == 401
