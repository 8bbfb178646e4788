"""Invitations: created and emailed by admins, listed by status, resent, revoked."""

import re
from datetime import UTC, timedelta

import pytest
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone
from django_tenants.utils import schema_context

from accounts.members.models import Group, Invitation, Membership, Role
from accounts.tokens import secret_hash
from eventlog.models import AuditEntry, OutboxEvent
from tests.conftest import Api, TenantWorld

LINK = re.compile(r"http://alpha\.localhost:8000/accept-invite\?token=([A-Za-z0-9_-]+)\n")


# given helpers ---------------------------------------------------------------------------


def iso(value) -> str:
    """A datetime as the API renders it."""
    return DjangoJSONEncoder().default(value)


def group_add(world: TenantWorld, name: str) -> Group:
    with schema_context(world.schema):
        return Group.objects.create(name=name)


def invitation_add(world: TenantWorld, email: str, **fields) -> Invitation:
    """An invitation as stored (status by its timestamps), invited by the admin."""
    with schema_context(world.schema):
        return Invitation.objects.create(
            email=email,
            token_hash=secret_hash(f"raw-{email}"),
            invited_by=Membership.objects.get(user=world.admin),
            expires_at=fields.pop("expires_at", timezone.now() + timedelta(days=7)),
            **fields,
        )


def invitation(world: TenantWorld, **lookup) -> Invitation | None:
    with schema_context(world.schema):
        return Invitation.objects.filter(**lookup).first()


def invitations_count(world: TenantWorld) -> int:
    with schema_context(world.schema):
        return Invitation.objects.count()


def audit(world: TenantWorld) -> list[tuple]:
    with schema_context(world.schema):
        return list(
            AuditEntry.objects.filter(action__startswith="invitation.")
            .order_by("id")
            .values_list("action", "actor_id", "target_id", "changes")
        )


def outbox(world: TenantWorld) -> list[tuple]:
    with schema_context(world.schema):
        return list(
            OutboxEvent.objects.filter(kind__startswith="invitation.")
            .order_by("id")
            .values_list("kind", "aggregate_id", "actor_id", "payload")
        )


def inviter(world: TenantWorld) -> dict:
    return {"id": world.admin.pk, "username": "admin", "display_name": "Alpha Admin"}


def body_of(inv: Invitation, world: TenantWorld, status: str, groups: list | None = None) -> dict:
    return {
        "id": inv.pk,
        "email": inv.email,
        "display_name": inv.display_name,
        "role": inv.role,
        "groups": groups or [],
        "status": status,
        "invited_by": inviter(world),
        "created_at": iso(inv.created_at),
        "expires_at": iso(inv.expires_at),
        "accepted_at": iso(inv.accepted_at) if inv.accepted_at else None,
        "revoked_at": iso(inv.revoked_at) if inv.revoked_at else None,
    }


def token_in(message) -> str:
    match = LINK.search(message.body)
    assert match, message.body
    return match.group(1)


# POST /invitations -----------------------------------------------------------------------


def test_admin_invites_a_person_and_they_get_an_email_with_a_one_time_link(
    world_a, admin_a, mailoutbox, django_capture_on_commit_callbacks
):
    # given
    devs = group_add(world_a, "Developers")
    started = timezone.now()
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_a.post(
            "/api/v1/invitations",
            {
                "email": " Newbie@Example.TEST ",
                "role": "PROJECT_LEAD",
                "display_name": "New Bie",
                "groups": ["developers"],
            },
        )
    finished = timezone.now()
    # then the invitation is stored, with only the token's hash
    assert response.status_code == 201, response.content
    inv = invitation(world_a, email="newbie@example.test")
    assert inv is not None
    assert response.json() == {
        "id": inv.pk,
        "email": "newbie@example.test",
        "display_name": "New Bie",
        "role": "PROJECT_LEAD",
        "groups": [{"id": devs.pk, "name": "Developers"}],
        "status": "pending",
        "invited_by": inviter(world_a),
        "created_at": iso(inv.created_at),
        "expires_at": iso(inv.expires_at),
        "accepted_at": None,
        "revoked_at": None,
    }
    assert started + settings.INVITATION_TTL <= inv.expires_at <= finished + settings.INVITATION_TTL
    # and the email carries the raw token, never shown by the API
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    token = token_in(message)
    assert secret_hash(token) == inv.token_hash
    assert token not in response.content.decode()
    assert message.to == ["newbie@example.test"]
    assert message.subject == "Alpha Admin invited you to Alpha Corp"
    expires = inv.expires_at.astimezone(UTC)
    assert message.body == (
        "Hello New Bie,\n\n"
        "Alpha Admin invited you to join Alpha Corp.\n\n"
        f"Accept the invitation: http://alpha.localhost:8000/accept-invite?token={token}\n\n"
        f"The link works once and expires on {expires:%Y-%m-%d %H:%M} UTC. "
        "If you were not expecting this invitation, ignore this email.\n"
    )
    assert audit(world_a) == [
        (
            "invitation.created",
            world_a.admin.pk,
            str(inv.pk),
            {
                "email": [None, "newbie@example.test"],
                "role": [None, "PROJECT_LEAD"],
                "groups": [None, ["Developers"]],
            },
        )
    ]
    assert outbox(world_a) == [
        (
            "invitation.created",
            str(inv.pk),
            world_a.admin.pk,
            {"invitation_id": inv.pk, "email": "newbie@example.test", "role": "PROJECT_LEAD"},
        )
    ]


def test_someone_from_another_workspace_can_be_invited(
    world_a, world_b, admin_a, mailoutbox, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_a.post("/api/v1/invitations", {"email": world_b.admin.email})
    # then
    assert response.status_code == 201, response.content
    assert response.json()["role"] == "USER"
    assert [m.to for m in mailoutbox] == [[world_b.admin.email]]
    assert mailoutbox[0].body.startswith("Hello,\n\n")


def test_no_email_leaves_when_the_invitation_is_refused(
    world_a, admin_a, mailoutbox, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_a.post("/api/v1/invitations", {"email": "x@example.test", "groups": [9]})
    # then
    assert response.status_code == 422
    assert mailoutbox == []
    assert invitations_count(world_a) == 0


def test_inviting_an_active_member_is_a_conflict(world_a, admin_a, mailoutbox):
    # when
    response = admin_a.post("/api/v1/invitations", {"email": "LEAD@alpha.test"})
    # then
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "already_member",
        "message": "This person is already a member of this workspace.",
        "details": {"user_id": world_a.lead.pk},
    }
    assert invitations_count(world_a) == 0
    assert mailoutbox == []
    assert audit(world_a) == []


def test_inviting_a_deactivated_member_says_reactivate_them(world_a, admin_a):
    # given
    with schema_context(world_a.schema):
        Membership.objects.filter(user=world_a.user).update(is_active=False)
    # when
    response = admin_a.post("/api/v1/invitations", {"email": "user@alpha.test"})
    # then
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "member_deactivated"
    assert invitations_count(world_a) == 0


@pytest.mark.parametrize(
    ("fields", "status"),
    [({}, "pending"), ({"expires_at": timezone.now() - timedelta(days=1)}, "expired")],
)
def test_an_open_invitation_for_the_email_is_a_conflict(world_a, admin_a, fields, status):
    # given
    existing = invitation_add(world_a, "dup@example.test", **fields)
    # when
    response = admin_a.post("/api/v1/invitations", {"email": "DUP@example.test"})
    # then
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "invitation_open",
        "message": "An invitation for this email is already open; resend it instead.",
        "details": {"invitation_id": existing.pk, "status": status},
    }
    assert invitations_count(world_a) == 1
    assert audit(world_a) == []


def test_an_email_can_be_invited_again_after_a_revoked_invitation(world_a, admin_a):
    # given
    invitation_add(world_a, "again@example.test", revoked_at=timezone.now())
    # when
    response = admin_a.post("/api/v1/invitations", {"email": "again@example.test"})
    # then
    assert response.status_code == 201
    assert response.json()["status"] == "pending"
    assert invitations_count(world_a) == 2


def test_invitation_lists_every_invalid_field(world_a, admin_a):
    # when
    response = admin_a.post(
        "/api/v1/invitations", {"email": "not an email", "groups": ["Nope", 123456]}
    )
    # then
    assert response.status_code == 422
    assert response.json()["error"] == {
        "code": "invalid",
        "message": "Invalid invitation.",
        "details": [
            {"field": "email", "message": "Enter a valid email address."},
            {"field": "groups", "message": "Unknown group 'Nope'.", "value": "Nope"},
            {"field": "groups", "message": "Unknown group 123456.", "value": 123456},
        ],
    }
    assert invitations_count(world_a) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "email"),
        ({"email": ""}, "email"),
        ({"email": "a@example.test", "role": "ROOT"}, "role"),
        ({"email": "a\x00@example.test"}, "email"),
        ({"email": "a@example.test", "display_name": "x" * 256}, "display_name"),
    ],
)
def test_invitation_body_is_validated(world_a, admin_a, body, field):
    # when
    response = admin_a.post("/api/v1/invitations", body)
    # then
    assert response.status_code == 422
    assert [d["field"] for d in response.json()["error"]["details"]] == [field]
    assert invitations_count(world_a) == 0


@pytest.mark.parametrize("caller", ["lead_a", "user_a"])
def test_only_admins_invite(
    request, world_a, caller, mailoutbox, django_capture_on_commit_callbacks
):
    # given
    api: Api = request.getfixturevalue(caller)
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/invitations", {"email": "friend@example.test"})
    # then
    assert response.status_code == 403
    assert response.json()["error"]["details"] == {"permission": "admin:users"}
    assert invitations_count(world_a) == 0
    assert mailoutbox == []
    assert audit(world_a) == []


# GET /invitations ------------------------------------------------------------------------


@pytest.fixture
def four_invitations(world_a):
    now = timezone.now()
    return {
        "pending": invitation_add(world_a, "pending@example.test", role=Role.ADMIN),
        "accepted": invitation_add(world_a, "accepted@example.test", accepted_at=now),
        "revoked": invitation_add(world_a, "revoked@example.test", revoked_at=now),
        "expired": invitation_add(
            world_a, "expired@example.test", expires_at=now - timedelta(seconds=1)
        ),
    }


def test_admin_lists_invitations_newest_first_with_their_status(world_a, admin_a, four_invitations):
    # given
    devs = group_add(world_a, "Developers")
    with schema_context(world_a.schema):
        four_invitations["pending"].groups.add(devs)
    # when
    response = admin_a.get("/api/v1/invitations")
    # then
    assert response.status_code == 200
    expected = [
        body_of(four_invitations[s], world_a, s)
        for s in ("expired", "revoked", "accepted", "pending")
    ]
    expected[3]["groups"] = [{"id": devs.pk, "name": "Developers"}]
    assert response.json() == {"items": expected, "total": 4, "offset": 0, "limit": 50}


@pytest.mark.parametrize("status", ["pending", "accepted", "revoked", "expired"])
def test_invitations_filter_by_status(world_a, admin_a, four_invitations, status):
    # when
    response = admin_a.get("/api/v1/invitations", status=status)
    # then
    assert response.status_code == 200
    assert response.json()["items"] == [body_of(four_invitations[status], world_a, status)]


def test_invitations_refuse_an_unknown_status(admin_a):
    # when
    response = admin_a.get("/api/v1/invitations", status="lost")
    # then
    assert response.status_code == 422
    assert [d["field"] for d in response.json()["error"]["details"]] == ["status"]


def test_invitation_list_query_count_does_not_grow(
    world_a, admin_a, four_invitations, django_assert_num_queries
):
    # given more invitations with groups
    devs = group_add(world_a, "Developers")
    with schema_context(world_a.schema):
        for n in range(8):
            invitation_add(world_a, f"more{n}@example.test").groups.add(devs)
    # when: SET search_path public, tenant lookup, SET search_path alpha, the caller's
    # membership, then count, page (with inviters) and the page's groups
    with django_assert_num_queries(7):
        response = admin_a.get("/api/v1/invitations")
    # then
    assert response.status_code == 200
    assert response.json()["total"] == 12


@pytest.mark.parametrize("caller", ["lead_a", "user_a"])
def test_only_admins_list_invitations(request, caller, four_invitations):
    # when
    response = request.getfixturevalue(caller).get("/api/v1/invitations")
    # then
    assert response.status_code == 403


def test_admin_reads_one_invitation(world_a, admin_a, four_invitations):
    # when
    response = admin_a.get(f"/api/v1/invitations/{four_invitations['expired'].pk}")
    # then
    assert response.status_code == 200
    assert response.json() == body_of(four_invitations["expired"], world_a, "expired")


def test_invitations_of_another_workspace_are_not_found(world_b, admin_a):
    # given
    theirs = invitation_add(world_b, "theirs@example.test")
    # when
    response = admin_a.get(f"/api/v1/invitations/{theirs.pk}")
    # then
    assert response.status_code == 404


# POST /invitations/{id}/resend -----------------------------------------------------------


@pytest.mark.parametrize("status", ["pending", "expired"])
def test_resending_rotates_the_token_and_restarts_the_expiry(
    world_a, admin_a, four_invitations, status, mailoutbox, django_capture_on_commit_callbacks
):
    # given
    inv = four_invitations[status]
    old_hash = inv.token_hash
    started = timezone.now()
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_a.post(f"/api/v1/invitations/{inv.pk}/resend")
    # then
    assert response.status_code == 200, response.content
    stored = invitation(world_a, pk=inv.pk)
    assert response.json() == body_of(stored, world_a, "pending")
    assert stored.expires_at >= started + settings.INVITATION_TTL
    assert stored.token_hash != old_hash
    assert [m.to for m in mailoutbox] == [[inv.email]]
    assert secret_hash(token_in(mailoutbox[0])) == stored.token_hash
    assert audit(world_a) == [
        ("invitation.resent", world_a.admin.pk, str(inv.pk), {"status": [status, "pending"]})
    ]
    assert outbox(world_a) == [
        (
            "invitation.resent",
            str(inv.pk),
            world_a.admin.pk,
            {"invitation_id": inv.pk, "email": inv.email},
        )
    ]


@pytest.mark.parametrize("status", ["accepted", "revoked"])
def test_closed_invitations_cannot_be_resent(
    world_a, admin_a, four_invitations, status, mailoutbox, django_capture_on_commit_callbacks
):
    # given
    inv = four_invitations[status]
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_a.post(f"/api/v1/invitations/{inv.pk}/resend")
    # then
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "invitation_closed",
        "message": f"This invitation was {status}; it cannot be resent.",
        "details": {"status": status},
    }
    assert invitation(world_a, pk=inv.pk).token_hash == inv.token_hash
    assert mailoutbox == []
    assert audit(world_a) == []


@pytest.mark.parametrize("caller", ["lead_a", "user_a"])
def test_only_admins_resend(request, world_a, caller, four_invitations, mailoutbox):
    # given
    inv = four_invitations["pending"]
    # when
    response = request.getfixturevalue(caller).post(f"/api/v1/invitations/{inv.pk}/resend")
    # then
    assert response.status_code == 403
    assert invitation(world_a, pk=inv.pk).token_hash == inv.token_hash
    assert audit(world_a) == []


# DELETE /invitations/{id} ----------------------------------------------------------------


@pytest.mark.parametrize("status", ["pending", "expired"])
def test_admin_revokes_an_invitation(world_a, admin_a, four_invitations, status):
    # given
    inv = four_invitations[status]
    # when
    response = admin_a.delete(f"/api/v1/invitations/{inv.pk}")
    # then
    assert response.status_code == 204
    assert response.content == b""
    stored = invitation(world_a, pk=inv.pk)
    assert stored.revoked_at is not None
    assert admin_a.get(f"/api/v1/invitations/{inv.pk}").json()["status"] == "revoked"
    assert audit(world_a) == [
        ("invitation.revoked", world_a.admin.pk, str(inv.pk), {"status": [status, "revoked"]})
    ]
    assert outbox(world_a) == [
        (
            "invitation.revoked",
            str(inv.pk),
            world_a.admin.pk,
            {"invitation_id": inv.pk, "email": inv.email},
        )
    ]


def test_revoking_twice_records_once(world_a, admin_a, four_invitations):
    # given
    inv = four_invitations["revoked"]
    # when
    response = admin_a.delete(f"/api/v1/invitations/{inv.pk}")
    # then
    assert response.status_code == 204
    assert invitation(world_a, pk=inv.pk).revoked_at == inv.revoked_at
    assert audit(world_a) == []


def test_an_accepted_invitation_cannot_be_revoked(world_a, admin_a, four_invitations):
    # given
    inv = four_invitations["accepted"]
    # when
    response = admin_a.delete(f"/api/v1/invitations/{inv.pk}")
    # then
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invitation_closed"
    assert invitation(world_a, pk=inv.pk).revoked_at is None
    assert audit(world_a) == []


@pytest.mark.parametrize("caller", ["lead_a", "user_a"])
def test_only_admins_revoke(request, world_a, caller, four_invitations):
    # given
    inv = four_invitations["pending"]
    # when
    response = request.getfixturevalue(caller).delete(f"/api/v1/invitations/{inv.pk}")
    # then
    assert response.status_code == 403
    assert invitation(world_a, pk=inv.pk).revoked_at is None
    assert audit(world_a) == []


def test_revoking_an_unknown_invitation_is_not_found(admin_a):
    # when
    response = admin_a.delete("/api/v1/invitations/777777")
    # then
    assert response.status_code == 404


# Idempotency-Key -------------------------------------------------------------------------


def test_a_retried_invitation_with_the_same_idempotency_key_is_replayed_not_resent(
    world_a, admin_a, mailoutbox, django_capture_on_commit_callbacks
):
    # given
    headers = {"Idempotency-Key": "invite-carol-1"}
    with django_capture_on_commit_callbacks(execute=True):
        first = admin_a.post(
            "/api/v1/invitations", {"email": "carol@example.test"}, headers=headers
        )
    # when
    with django_capture_on_commit_callbacks(execute=True):
        retry = admin_a.post(
            "/api/v1/invitations", {"email": "carol@example.test"}, headers=headers
        )
    # then
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert invitations_count(world_a) == 1
    assert len(mailoutbox) == 1
    assert [a for a, *_ in audit(world_a)] == ["invitation.created"]


def test_a_retried_resend_sends_one_email(
    world_a, admin_a, four_invitations, mailoutbox, django_capture_on_commit_callbacks
):
    # given
    inv = four_invitations["pending"]
    headers = {"Idempotency-Key": f"resend-{inv.pk}"}
    # when
    with django_capture_on_commit_callbacks(execute=True):
        first = admin_a.post(f"/api/v1/invitations/{inv.pk}/resend", headers=headers)
        retry = admin_a.post(f"/api/v1/invitations/{inv.pk}/resend", headers=headers)
    # then
    assert (first.status_code, retry.status_code) == (200, 200)
    assert retry.json() == first.json()
    assert len(mailoutbox) == 1
    assert [a for a, *_ in audit(world_a)] == ["invitation.resent"]
