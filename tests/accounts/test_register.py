"""Accepting an invitation: new people get an identity, known people prove theirs."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from accounts.members.models import Group, Invitation, Membership, RefreshToken, Role
from accounts.models import User
from accounts.tokens import secret_hash
from eventlog.models import AuditEntry
from tenants.models import Tenant
from tests.accounts.test_mfa import enrol
from tests.conftest import PASSWORD, Api, token_for

REGISTER = "/api/v1/auth/register"
RAW = "invitation-raw-token-0123456789abcdef"
NEW_PASSWORD = "Fresh-Start-Password-5"


def invite(world, *, email: str, role: str = Role.USER, groups=(), **fields) -> Invitation:
    with schema_context(world.schema):
        invitation = Invitation.objects.create(
            email=email,
            role=role,
            token_hash=secret_hash(fields.pop("raw", RAW)),
            expires_at=fields.pop("expires_at", timezone.now() + timedelta(days=7)),
            **fields,
        )
        invitation.groups.set(Group.objects.filter(name__in=groups))
        return invitation


def memberships(world, email: str) -> list[Membership]:
    with schema_context(world.schema):
        return list(Membership.objects.filter(user__email=email))


def invitation_state(world, invitation: Invitation) -> Invitation:
    with schema_context(world.schema):
        return Invitation.objects.get(pk=invitation.pk)


def test_new_person_registers_with_the_invitations_role_and_groups(anon_a, world_a):
    # given
    with schema_context(world_a.schema):
        Group.objects.create(name="Support")
        Group.objects.create(name="Other")
    invitation = invite(
        world_a,
        email="New.Hire@Example.com",
        role=Role.PROJECT_LEAD,
        groups=["Support"],
        display_name="Invited Name",
    )
    # when
    response = anon_a.post(REGISTER, {"token": RAW, "password": NEW_PASSWORD, "username": "newbie"})
    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert sorted(body) == ["access", "expires_in", "refresh", "token_type"]
    user = User.objects.get(email="new.hire@example.com")
    assert (user.username, user.display_name) == ("newbie", "Invited Name")
    assert user.check_password(NEW_PASSWORD)
    me = Api(world_a.host, body["access"]).get("/api/v1/auth/me").json()
    assert me["role"] == "PROJECT_LEAD"
    assert [g["name"] for g in me["groups"]] == ["Support"]
    assert invitation_state(world_a, invitation).accepted_at is not None
    with schema_context(world_a.schema):
        actions = AuditEntry.objects.filter(actor_id=user.pk).order_by("id")
        assert list(actions.values_list("action", flat=True)) == [
            "member.created",
            "invitation.accepted",
            "auth.login",
        ]
    world_a.tenant.refresh_from_db()
    assert world_a.tenant.member_count == 4


def test_display_name_given_at_registration_wins_over_the_invitations(anon_a, world_a):
    # given
    invite(world_a, email="pat@example.com", display_name="From Invitation")
    # when
    response = anon_a.post(
        REGISTER, {"token": RAW, "password": NEW_PASSWORD, "display_name": "Pat Smith"}
    )
    # then
    assert response.status_code == 201
    user = User.objects.get(email="pat@example.com")
    assert (user.username, user.display_name, user.first_name, user.last_name) == (
        "pat",
        "Pat Smith",
        "Pat",
        "Smith",
    )


def test_existing_identity_joins_with_its_password_which_is_not_changed(anon_a, world_a, world_b):
    # given the admin of tenant B is invited to tenant A
    invite(world_a, email="admin@bravo.test")
    username_before = world_b.admin.username
    # when
    response = anon_a.post(REGISTER, {"token": RAW, "password": PASSWORD, "username": "ignored"})
    # then
    assert response.status_code == 201, response.content
    assert User.objects.filter(email="admin@bravo.test").count() == 1
    world_b.admin.refresh_from_db()
    assert world_b.admin.check_password(PASSWORD)
    assert world_b.admin.username == username_before
    [member] = memberships(world_a, "admin@bravo.test")
    assert member.role == Role.USER
    me = Api(world_a.host, response.json()["access"]).get("/api/v1/auth/me").json()
    assert me["id"] == world_b.admin.pk
    assert me["tenant"]["subdomain"] == "alpha"


def test_existing_identity_with_the_wrong_password_gets_401_and_nothing_changes(
    anon_a, world_a, world_b
):
    # given
    invitation = invite(world_a, email="admin@bravo.test")
    password_before = User.objects.get(pk=world_b.admin.pk).password
    # when
    response = anon_a.post(REGISTER, {"token": RAW, "password": "Not-The-Password-1"})
    # then
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"
    assert memberships(world_a, "admin@bravo.test") == []
    assert invitation_state(world_a, invitation).accepted_at is None
    assert User.objects.get(pk=world_b.admin.pk).password == password_before


def test_guessing_an_existing_identitys_password_is_throttled(settings, anon_a, world_a):
    # given
    settings.LOGIN_MAX_FAILURES_PER_ACCOUNT = 2
    invite(world_a, email="admin@bravo.test")
    for _ in range(2):
        anon_a.post(REGISTER, {"token": RAW, "password": "Not-The-Password-1"})
    # when
    response = anon_a.post(REGISTER, {"token": RAW, "password": PASSWORD})
    # then
    assert response.status_code == 429
    assert memberships(world_a, "admin@bravo.test") == []


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"expires_at": timezone.now() - timedelta(seconds=1)}, 400, "invitation_expired"),
        ({"accepted_at": timezone.now()}, 400, "invitation_used"),
        ({"revoked_at": timezone.now()}, 400, "invitation_revoked"),
        ({"raw": "some-other-token"}, 404, "invitation_not_found"),
    ],
    ids=["expired", "used", "revoked", "unknown"],
)
def test_unusable_invitations_are_refused_and_nothing_is_written(
    anon_a, world_a, fields, status, code
):
    # given
    invitation = invite(world_a, email="late@example.com", **fields)
    # when
    response = anon_a.post(REGISTER, {"token": RAW, "password": NEW_PASSWORD})
    # then
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert not User.objects.filter(email="late@example.com").exists()
    assert invitation_state(world_a, invitation).accepted_at == fields.get("accepted_at")
    with schema_context(world_a.schema):
        assert not RefreshToken.objects.exists()


@pytest.fixture
def used_invitation(anon_a, world_a):
    invite(world_a, email="once@example.com")
    assert anon_a.post(REGISTER, {"token": RAW, "password": NEW_PASSWORD}).status_code == 201


def test_a_used_invitation_is_refused(used_invitation, anon_a, world_a):
    # when
    response = anon_a.post(REGISTER, {"token": RAW, "password": NEW_PASSWORD})
    # then
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invitation_used"
    assert User.objects.filter(email="once@example.com").count() == 1
    assert len(memberships(world_a, "once@example.com")) == 1


def test_weak_password_is_422_and_nothing_is_written(anon_a, world_a):
    # given
    invitation = invite(world_a, email="weak@example.com")
    # when
    response = anon_a.post(REGISTER, {"token": RAW, "password": "password"})
    # then
    assert response.status_code == 422
    details = response.json()["error"]["details"]
    assert {"field": "password", "message": "This password is too common."} in details
    assert not User.objects.filter(email="weak@example.com").exists()
    assert invitation_state(world_a, invitation).accepted_at is None


def test_taken_username_is_409_and_nothing_is_written(anon_a, world_a):
    # given
    invitation = invite(world_a, email="dup@example.com")
    # when
    response = anon_a.post(REGISTER, {"token": RAW, "password": NEW_PASSWORD, "username": "ADMIN"})
    # then
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "username_taken"
    assert not User.objects.filter(email="dup@example.com").exists()
    assert invitation_state(world_a, invitation).accepted_at is None


def test_malformed_registration_is_422_and_nothing_is_written(anon_a, world_a):
    # given
    invitation = invite(world_a, email="odd@example.com")
    # when
    answers = [
        anon_a.post(REGISTER, {"token": RAW, "password": NEW_PASSWORD, "username": "a\u0000b"}),
        anon_a.post(REGISTER, {"token": RAW, "password": NEW_PASSWORD, "display_name": "x" * 256}),
        anon_a.post(REGISTER, {"token": RAW}),
        anon_a.post(REGISTER, raw=b'{"token": '),
    ]
    # then
    assert [r.status_code for r in answers] == [422, 422, 422, 400]
    assert not User.objects.filter(email="odd@example.com").exists()
    assert invitation_state(world_a, invitation).accepted_at is None


def test_invitation_of_tenant_a_is_unknown_on_tenant_b(world_a, world_b):
    # given
    invite(world_a, email="wanderer@example.com")
    # when
    response = Api(world_b.host).post(REGISTER, {"token": RAW, "password": NEW_PASSWORD})
    # then
    assert response.status_code == 404
    assert not User.objects.filter(email="wanderer@example.com").exists()


def test_registration_follows_the_mfa_policy(anon_a, world_a):
    # given
    Tenant.objects.filter(pk=world_a.tenant.pk).update(require_mfa="all")
    invite(world_a, email="secure@example.com")
    # when
    response = anon_a.post(REGISTER, {"token": RAW, "password": NEW_PASSWORD})
    # then the membership exists, but tokens wait for enrolment
    assert response.status_code == 201
    assert sorted(response.json()) == ["mfa_enrollment_required", "mfa_token"]
    assert len(memberships(world_a, "secure@example.com")) == 1
    with schema_context(world_a.schema):
        assert not RefreshToken.objects.exists()


def test_existing_identity_with_mfa_must_still_give_a_code(world_a, world_b):
    # given the admin of tenant B has MFA on, and is invited to tenant A
    enrol(Api(world_b.host, token_for(world_b, world_b.admin)), world_b.admin)
    invite(world_a, email="admin@bravo.test")
    # when
    response = Api(world_a.host).post(REGISTER, {"token": RAW, "password": PASSWORD})
    # then
    assert response.status_code == 201
    assert sorted(response.json()) == ["mfa_required", "mfa_token"]
    with schema_context(world_a.schema):
        assert not RefreshToken.objects.exists()


def test_a_person_created_by_an_import_sets_their_password_with_the_invitation(anon_a, world_a):
    # given an imported member: identity without a usable password, membership, invitation
    user = User.objects.create_user(
        email="imported@example.com", username="imported", password=None
    )
    with schema_context(world_a.schema):
        Membership.objects.create(user=user, role=Role.USER)
    invitation = invite(world_a, email="imported@example.com")
    # when
    response = anon_a.post(REGISTER, {"token": RAW, "password": NEW_PASSWORD})
    # then
    assert response.status_code == 201, response.content
    assert set(response.json()) >= {"access", "refresh"}
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert len(memberships(world_a, "imported@example.com")) == 1
    assert invitation_state(world_a, invitation).accepted_at is not None
