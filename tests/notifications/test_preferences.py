"""Preferences decide the channels: in-app off, email off, both off, digests."""

from datetime import timedelta

from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from notifications.models import EmailDelivery, EmailDigestSetting, Notification
from notifications.services import notification_send
from notifications.tasks import notifications_email_sweep
from tests.notifications.conftest import parts
from tickets.content_services import comment_create
from tickets.models import Ticket


def _set(user_api, world, user, body):
    response = user_api.put(f"/api/v1/users/{user.pk}/notification-settings", body)
    assert response.status_code == 200, response.content


def _comment(after_commit, members, ticket, body):
    after_commit(
        lambda: comment_create(
            ticket=Ticket.objects.get(pk=ticket.pk), actor=members["admin"], body=body
        )
    )


def _state(world):
    with schema_context(world.schema):
        rows = list(
            Notification.objects.order_by("id").values_list(
                "recipient_id", "kind", "in_app", "email_state"
            )
        )
        deliveries = EmailDelivery.objects.count()
    connection.set_schema_to_public()
    return rows, deliveries


def test_in_app_off_sends_the_email_only(
    world_a, members_a, user_a, new_ticket, after_commit, mailoutbox
):
    ticket = new_ticket(assignee="user_alpha")
    _set(
        user_a,
        world_a,
        world_a.user,
        {"event_types": [{"event_type": "commented", "in_app": False}]},
    )
    # when
    _comment(after_commit, members_a, ticket, "hello")
    # then
    assert _state(world_a) == ([(world_a.user.pk, "commented", False, "queued")], 1)
    assert [m.subject for m in mailoutbox] == [
        f"[Alpha Corp] Alpha Admin commented on {ticket.key}"
    ]
    assert user_a.get("/api/v1/notifications").json()["total"] == 0
    assert user_a.get("/api/v1/notifications/unread-count").json() == {"count": 0}


def test_email_off_keeps_the_inbox_only(
    world_a, members_a, user_a, new_ticket, after_commit, mailoutbox
):
    ticket = new_ticket(assignee="user_alpha")
    _set(
        user_a,
        world_a,
        world_a.user,
        {"event_types": [{"event_type": "commented", "email": False}]},
    )
    # when
    _comment(after_commit, members_a, ticket, "hello")
    # then
    assert _state(world_a) == ([(world_a.user.pk, "commented", True, "none")], 0)
    assert mailoutbox == []
    assert user_a.get("/api/v1/notifications/unread-count").json() == {"count": 1}


def test_both_off_means_nothing_at_all_and_other_types_still_flow(
    world_a, members_a, user_a, new_ticket, after_commit, mailoutbox
):
    ticket = new_ticket(assignee="user_alpha")
    _set(
        user_a,
        world_a,
        world_a.user,
        {"event_types": [{"event_type": "commented", "in_app": False, "email": False}]},
    )
    # when a plain comment, then a mention
    _comment(after_commit, members_a, ticket, "hello")
    _comment(after_commit, members_a, ticket, "hello @user_alpha")
    # then only the mention arrived
    assert _state(world_a) == ([(world_a.user.pk, "mentioned", True, "queued")], 1)
    assert len(mailoutbox) == 1


def test_kinds_outside_the_rules_follow_the_system_settings(world_a, user_a):
    _set(
        user_a,
        world_a,
        world_a.user,
        {"event_types": [{"event_type": "system", "in_app": False, "email": False}]},
    )
    # when
    with schema_context(world_a.schema):
        sent = notification_send(
            user_ids=[world_a.user.pk, world_a.lead.pk],
            kind="webhook_disabled",
            title="A webhook was disabled",
            body="",
        )
    connection.set_schema_to_public()
    # then
    assert [n.recipient_id for n in sent] == [world_a.lead.pk]


# Digests ------------------------------------------------------------------------------


def _sweep(after_commit, world):
    return after_commit(lambda: notifications_email_sweep.apply(args=[world.schema]).get())


def test_an_hourly_digest_groups_pending_notifications_into_one_email(
    world_a, members_a, user_a, new_ticket, after_commit, smtp_server
):
    # given the user on hourly email, and two events about their ticket
    ticket = new_ticket(summary="Export fails", assignee="user_alpha")
    smtp_server.reset()
    _set(user_a, world_a, world_a.user, {"digest": "hourly"})
    _comment(after_commit, members_a, ticket, "first comment")
    _comment(after_commit, members_a, ticket, "second, for @user_alpha")
    assert _state(world_a) == (
        [
            (world_a.user.pk, "commented", True, "pending"),
            (world_a.user.pk, "mentioned", True, "pending"),
        ],
        0,
    )
    # when the sweep runs before the hour is over
    early = _sweep(after_commit, world_a)
    # then nothing leaves
    assert early == {"digests": 0, "requeued": 0}
    assert smtp_server.messages == []
    # when the hour has passed
    with schema_context(world_a.schema):
        Notification.objects.update(created_at=timezone.now() - timedelta(minutes=61))
    late = _sweep(after_commit, world_a)
    again = _sweep(after_commit, world_a)
    # then one email lists both, with an unsubscribe link per event type
    assert late == {"digests": 1, "requeued": 0}
    assert again == {"digests": 0, "requeued": 0}
    assert len(smtp_server.messages) == 1
    _, rcpt_tos, message = smtp_server.messages[0]
    assert rcpt_tos == ["user@alpha.test"]
    assert message["Subject"] == "[Alpha Corp] 2 new notifications"
    text, html = parts(message)["text/plain"], parts(message)["text/html"]
    for title in (
        f"Alpha Admin commented on {ticket.key}",
        f"Alpha Admin mentioned you on {ticket.key}",
    ):
        assert f"* {title}" in text
        assert title in html
    assert 'Stop emails about "A comment on a ticket you follow": http' in text
    assert 'Stop emails about "You are mentioned in a comment": http' in text
    assert html.count("/api/v1/notifications/unsubscribe/") == 2
    with schema_context(world_a.schema):
        assert set(Notification.objects.values_list("email_state", flat=True)) == {"queued"}
        assert EmailDelivery.objects.get().status == "sent"
        assert EmailDigestSetting.objects.get(user=world_a.user).last_sent_at is not None


def test_a_daily_digest_waits_a_day_since_the_last_one(
    world_a, members_a, user_a, new_ticket, after_commit, smtp_server
):
    ticket = new_ticket(assignee="user_alpha")
    smtp_server.reset()
    _set(user_a, world_a, world_a.user, {"digest": "daily"})
    _comment(after_commit, members_a, ticket, "hello")
    with schema_context(world_a.schema):
        Notification.objects.update(created_at=timezone.now() - timedelta(hours=30))
        EmailDigestSetting.objects.filter(user=world_a.user).update(
            last_sent_at=timezone.now() - timedelta(hours=2)
        )
    # when
    not_yet = _sweep(after_commit, world_a)
    with schema_context(world_a.schema):
        EmailDigestSetting.objects.filter(user=world_a.user).update(
            last_sent_at=timezone.now() - timedelta(hours=25)
        )
    due = _sweep(after_commit, world_a)
    # then
    assert not_yet["digests"] == 0
    assert due["digests"] == 1
    assert [m["Subject"] for _, _, m in smtp_server.messages] == ["[Alpha Corp] 1 new notification"]


def test_back_on_immediate_what_was_pending_leaves_at_the_next_sweep(
    world_a, members_a, user_a, new_ticket, after_commit, smtp_server
):
    ticket = new_ticket(assignee="user_alpha")
    smtp_server.reset()
    _set(user_a, world_a, world_a.user, {"digest": "hourly"})
    _comment(after_commit, members_a, ticket, "hello")
    # when
    _set(user_a, world_a, world_a.user, {"digest": "immediate"})
    result = _sweep(after_commit, world_a)
    # then
    assert result["digests"] == 1
    assert len(smtp_server.messages) == 1
