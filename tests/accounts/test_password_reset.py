"""Forgotten passwords: a single-use, expiring link by email, valid in its workspace only."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from django_tenants.utils import schema_context

from accounts.members.models import Membership, RefreshToken
from accounts.models import PasswordResetToken, User
from accounts.services import membership_create
from accounts.tokens import secret_hash
from eventlog.models import AuditEntry
from tests.conftest import PASSWORD, Api

FORGOT = "/api/v1/auth/forgot-password"
RESET = "/api/v1/auth/reset-password"
NEW_PASSWORD = "Brand-New-Secret-77"
ACCEPTED = {
    "detail": "If this email belongs to a member of this workspace, a link to reset the "
    "password is on its way."
}
LINK = re.compile(r"http://alpha\.localhost:8000/reset-password\?token=([A-Za-z0-9_-]+)")


@pytest.fixture
def ask(anon_a, django_capture_on_commit_callbacks):
    def ask(email: str, api: Api = anon_a):
        with django_capture_on_commit_callbacks(execute=True):
            return api.post(FORGOT, {"email": email})

    return ask


@pytest.fixture
def reset_link(ask) -> str:
    """The raw token of a reset link mailed to user@alpha.test."""
    assert ask("user@alpha.test").status_code == 202
    [message] = mail.outbox
    return LINK.search(message.body).group(1)


def password_is(user: User, password: str) -> bool:
    user.refresh_from_db()
    return user.check_password(password)


def test_forgot_password_mails_a_link_with_a_single_use_token(ask, world_a):
    # when
    response = ask(" User@Alpha.test ")
    # then
    assert response.status_code == 202
    assert response.json() == ACCEPTED
    [message] = mail.outbox
    assert message.to == ["user@alpha.test"]
    assert message.subject == "Reset your password for Alpha Corp"
    assert "within 60 minutes" in message.body
    raw = LINK.search(message.body).group(1)
    token = PasswordResetToken.objects.get(user=world_a.user)
    assert token.token_hash == secret_hash(raw)
    assert token.schema_name == "alpha"
    assert token.used_at is None
    assert token.expires_at - token.created_at == pytest.approx(
        timedelta(hours=1), abs=timedelta(seconds=5)
    )
    with schema_context(world_a.schema):
        assert AuditEntry.objects.filter(action="auth.password_reset_requested").count() == 1


@pytest.mark.parametrize(
    "email",
    ["nobody@alpha.test", "admin@bravo.test", "not an email", ""],
    ids=["unknown", "member-of-another-tenant", "malformed", "empty"],
)
def test_forgot_password_answers_the_same_and_sends_nothing_for_non_members(ask, email):
    # when
    response = ask(email)
    # then
    assert response.status_code == 202
    assert response.json() == ACCEPTED
    assert mail.outbox == []
    assert not PasswordResetToken.objects.exists()


def test_forgot_password_refuses_malformed_input_without_500(anon_a):
    # when
    nul = anon_a.post(FORGOT, {"email": "user\u0000@alpha.test"})
    missing = anon_a.post(FORGOT, {})
    # then
    assert nul.status_code == 422
    assert missing.status_code == 422
    assert mail.outbox == []


def test_forgot_password_sends_nothing_to_deactivated_members(ask, world_a):
    # given
    with schema_context(world_a.schema):
        Membership.objects.filter(user=world_a.user).update(is_active=False)
    # when
    response = ask("user@alpha.test")
    # then
    assert response.status_code == 202
    assert mail.outbox == []


def test_forgot_password_is_rate_limited_per_email_silently(ask):
    # when
    answers = [ask("user@alpha.test").status_code for _ in range(5)]
    # then
    assert answers == [202] * 5
    assert len(mail.outbox) == 3
    assert PasswordResetToken.objects.count() == 3


def test_forgot_password_is_rate_limited_per_address(ask):
    # when
    answers = [ask(f"someone{n}@alpha.test").status_code for n in range(21)]
    # then
    assert answers == [202] * 20 + [429]


def test_reset_sets_the_password_and_ends_every_login(reset_link, anon_a, world_a):
    # given a login of the person
    pair = anon_a.post("/api/v1/auth/login", {"email": "user@alpha.test", "password": PASSWORD})
    pair = pair.json()
    generation = world_a.member(world_a.user).token_generation
    # when
    response = anon_a.post(RESET, {"token": reset_link, "password": NEW_PASSWORD})
    # then
    assert response.status_code == 204, response.content
    assert password_is(world_a.user, NEW_PASSWORD)
    assert PasswordResetToken.objects.get().used_at is not None
    assert world_a.member(world_a.user).token_generation == generation + 1
    assert Api(world_a.host, pair["access"]).get("/api/v1/auth/me").status_code == 401
    with schema_context(world_a.schema):
        assert not RefreshToken.objects.filter(revoked_at__isnull=True).exists()
        entry = AuditEntry.objects.get(action="auth.password_reset")
        assert (entry.actor_id, entry.target_id) == (world_a.user.pk, str(world_a.user.pk))
    login = anon_a.post(
        "/api/v1/auth/login", {"email": "user@alpha.test", "password": NEW_PASSWORD}
    )
    assert login.status_code == 200


def test_reset_token_works_once(reset_link, anon_a, world_a):
    # given
    assert anon_a.post(RESET, {"token": reset_link, "password": NEW_PASSWORD}).status_code == 204
    # when
    again = anon_a.post(RESET, {"token": reset_link, "password": "Yet-Another-Secret-88"})
    # then
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "reset_token_used"
    assert password_is(world_a.user, NEW_PASSWORD)


def test_expired_reset_token_is_refused(reset_link, anon_a, world_a):
    # given
    PasswordResetToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    # when
    response = anon_a.post(RESET, {"token": reset_link, "password": NEW_PASSWORD})
    # then
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "reset_token_expired"
    assert password_is(world_a.user, PASSWORD)
    assert PasswordResetToken.objects.get().used_at is None


def test_reset_token_of_tenant_a_is_refused_on_tenant_b_and_not_spent(reset_link, world_a, world_b):
    # given the same person is also a member of tenant B
    with schema_context(world_b.schema):
        membership_create(user=world_a.user, role="USER")
    # when
    response = Api(world_b.host).post(RESET, {"token": reset_link, "password": NEW_PASSWORD})
    # then
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "reset_token_invalid"
    assert password_is(world_a.user, PASSWORD)
    assert PasswordResetToken.objects.get().used_at is None


def test_weak_password_is_422_with_details_and_the_token_stays_usable(reset_link, anon_a, world_a):
    # when
    response = anon_a.post(RESET, {"token": reset_link, "password": "12345"})
    # then
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert {
        "field": "password",
        "message": "This password is too short. It must contain at least 10 characters.",
    } in error["details"]
    assert {"field": "password", "message": "This password is entirely numeric."} in error[
        "details"
    ]
    assert password_is(world_a.user, PASSWORD)
    assert PasswordResetToken.objects.get().used_at is None


def test_unknown_or_malformed_reset_requests(anon_a):
    # when
    unknown = anon_a.post(RESET, {"token": "nope", "password": NEW_PASSWORD})
    missing = anon_a.post(RESET, {"token": "nope"})
    # then
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "reset_token_invalid"
    assert missing.status_code == 422


def test_a_new_password_spends_every_other_outstanding_link(ask, anon_a, world_a):
    # given two links
    ask("user@alpha.test")
    ask("user@alpha.test")
    first, second = (LINK.search(m.body).group(1) for m in mail.outbox)
    # when
    assert anon_a.post(RESET, {"token": second, "password": NEW_PASSWORD}).status_code == 204
    response = anon_a.post(RESET, {"token": first, "password": "Yet-Another-Secret-88"})
    # then
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "reset_token_used"
    assert password_is(world_a.user, NEW_PASSWORD)
