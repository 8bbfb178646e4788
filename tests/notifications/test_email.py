"""Notification email through Django's SMTP backend to a real SMTP server on loopback:
content, unsubscribe links, retries, permanent failures and exactly-once sending."""

import re
from datetime import timedelta

from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from notifications.emails import email_retry_countdown
from notifications.models import EmailDelivery, Notification, NotificationSetting
from notifications.preferences import unsubscribe_token
from notifications.tasks import email_delivery_send_task
from tenants.models import tenant_url
from tests.conftest import Api
from tests.notifications.conftest import free_port, parts
from tickets.content_services import comment_create
from tickets.models import Ticket


def _comment(after_commit, members, ticket, body="Looks done to me", as_user="admin"):
    return after_commit(
        lambda: comment_create(
            ticket=Ticket.objects.get(pk=ticket.pk), actor=members[as_user], body=body
        )
    )


def _deliveries(world):
    with schema_context(world.schema):
        rows = list(EmailDelivery.objects.order_by("id").values_list("to", "status", "attempts"))
    connection.set_schema_to_public()
    return rows


def test_a_notification_email_has_both_parts_the_ticket_link_and_an_unsubscribe_link(
    world_a, members_a, new_ticket, after_commit, smtp_server
):
    # given a ticket the user is assigned to
    ticket = new_ticket(summary="Export fails", assignee="user_alpha")
    smtp_server.reset()
    # when the admin comments
    comment = _comment(after_commit, members_a, ticket, body="Fixed in <b>build 7</b>")
    # then exactly one message reached the SMTP server, for the user
    assert len(smtp_server.messages) == 1
    mail_from, rcpt_tos, message = smtp_server.messages[0]
    assert mail_from == "no-reply@localhost"
    assert rcpt_tos == ["user@alpha.test"]
    assert message["Subject"] == f"[Alpha Corp] Alpha Admin commented on {ticket.key}"
    assert message["To"] == "user@alpha.test"
    base = tenant_url("alpha")
    link = f"{base}/browse/{ticket.key}?focusedCommentId={comment.pk}"
    body = parts(message)
    assert sorted(body) == ["text/html", "text/plain"]
    text, html = body["text/plain"], body["text/html"]
    assert "Alpha Admin commented on" in text
    assert "Fixed in <b>build 7</b>" in text
    assert f"Open it: {link}" in text
    assert f'<a href="{link.replace("&", "&amp;")}"' in html
    assert "Fixed in &lt;b&gt;build 7&lt;/b&gt;" in html
    assert "Alpha Corp" in html
    unsubscribe = re.search(r"Stop these emails: (\S+)", text).group(1)
    assert unsubscribe.startswith(f"{base}/api/v1/notifications/unsubscribe/")
    assert f'href="{unsubscribe}"' in html
    assert message["List-Unsubscribe"].strip() == f"<{unsubscribe}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert re.fullmatch(r"<[0-9a-f]{40}@localhost>", message["Message-ID"])
    assert _deliveries(world_a) == [(["user@alpha.test"], "sent", 1)]
    with schema_context(world_a.schema):
        notification = Notification.objects.get()
        assert notification.email_state == "queued"
        assert notification.email_delivery.status == "sent"


def test_the_unsubscribe_link_turns_that_event_types_email_off_without_login(
    world_a, members_a, new_ticket, after_commit, smtp_server
):
    ticket = new_ticket(summary="Export fails", assignee="user_alpha")
    smtp_server.reset()
    _comment(after_commit, members_a, ticket)
    text = parts(smtp_server.messages[0][2])["text/plain"]
    path = re.search(r"Stop these emails: https?://[^/]+(\S+)", text).group(1)
    # when the link is opened by someone who is not logged in
    response = Api(world_a.host).get(path)
    # then
    assert response.status_code == 200
    assert response.json() == {
        "user_id": world_a.user.pk,
        "event_type": "commented",
        "email": False,
    }
    with schema_context(world_a.schema):
        assert list(
            NotificationSetting.objects.values_list("user_id", "event_type", "channel", "enabled")
        ) == [(world_a.user.pk, "commented", "email", False)]
    # and the next comment notifies in the app, without email
    _comment(after_commit, members_a, ticket, body="One more thing")
    assert len(smtp_server.messages) == 1
    with schema_context(world_a.schema):
        assert Notification.objects.filter(recipient=world_a.user, in_app=True).count() == 2
        assert EmailDelivery.objects.count() == 1


def test_unsubscribe_by_query_and_by_one_click_post(world_a):
    with schema_context(world_a.schema):
        by_query = unsubscribe_token(user_id=world_a.user.pk, event_type="assigned")
        by_post = unsubscribe_token(user_id=world_a.user.pk, event_type="mentioned")
    connection.set_schema_to_public()
    anon = Api(world_a.host)
    # when
    query = anon.get("/api/v1/notifications/unsubscribe", token=by_query)
    post = anon.post(f"/api/v1/notifications/unsubscribe/{by_post}")
    # then
    assert query.status_code == 200
    assert post.status_code == 200
    with schema_context(world_a.schema):
        assert sorted(
            NotificationSetting.objects.filter(enabled=False).values_list("event_type", flat=True)
        ) == ["assigned", "mentioned"]


def test_forged_and_foreign_unsubscribe_tokens_answer_404_and_change_nothing(world_a, world_b):
    with schema_context(world_b.schema):
        foreign = unsubscribe_token(user_id=world_b.user.pk, event_type="assigned")
    with schema_context(world_a.schema):
        genuine = unsubscribe_token(user_id=world_a.user.pk, event_type="assigned")
    connection.set_schema_to_public()
    anon = Api(world_a.host)
    # when
    answers = [
        anon.get(f"/api/v1/notifications/unsubscribe/{foreign}"),
        anon.get(f"/api/v1/notifications/unsubscribe/{genuine[:-2]}xx"),
        anon.get("/api/v1/notifications/unsubscribe/garbage"),
    ]
    # then
    assert [r.status_code for r in answers] == [404, 404, 404]
    assert {r.json()["error"]["code"] for r in answers} == {"unsubscribe_invalid"}
    with schema_context(world_a.schema):
        assert NotificationSetting.objects.count() == 0
    with schema_context(world_b.schema):
        assert NotificationSetting.objects.count() == 0


def test_a_transient_smtp_failure_is_retried_and_the_message_sent_once(
    world_a, members_a, new_ticket, after_commit, smtp_server
):
    # given an SMTP server that answers 451 to the first RCPT
    ticket = new_ticket(summary="Export fails", assignee="user_alpha")
    smtp_server.reset()
    smtp_server.rcpt_replies = ["451 4.3.0 Mailbox busy, try again later"]
    # when
    _comment(after_commit, members_a, ticket)
    # then the retry delivered it (eager Celery runs the retry at once)
    assert smtp_server.rcpt_attempts == 2
    assert [rcpt for _, rcpt, _ in smtp_server.messages] == [["user@alpha.test"]]
    assert _deliveries(world_a) == [(["user@alpha.test"], "sent", 2)]
    with schema_context(world_a.schema):
        assert EmailDelivery.objects.get().last_error == ""


def test_a_permanent_smtp_failure_is_recorded_and_not_retried(
    world_a, members_a, new_ticket, after_commit, smtp_server
):
    ticket = new_ticket(summary="Export fails", assignee="user_alpha")
    smtp_server.reset()
    smtp_server.rcpt_replies = ["550 5.1.1 No such user here"]
    # when
    _comment(after_commit, members_a, ticket)
    # then
    assert smtp_server.rcpt_attempts == 1
    assert smtp_server.messages == []
    assert _deliveries(world_a) == [(["user@alpha.test"], "failed_permanent", 1)]
    with schema_context(world_a.schema):
        error = EmailDelivery.objects.get().last_error
    assert error.startswith("SMTPRecipientsRefused: ")
    assert "550" in error
    assert "No such user here" in error


def test_an_unreachable_server_is_retried_with_backoff_until_given_up(
    world_a, members_a, new_ticket, after_commit, settings
):
    # given no SMTP server on the configured port
    ticket = new_ticket(summary="Export fails", assignee="user_alpha")
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()
    # when
    _comment(after_commit, members_a, ticket)
    # then every attempt was recorded, the last one gave up
    assert _deliveries(world_a) == [(["user@alpha.test"], "failed_permanent", 10)]
    with schema_context(world_a.schema):
        assert "ConnectionRefusedError" in EmailDelivery.objects.get().last_error
    assert [email_retry_countdown(n) for n in range(1, 10)] == [
        30,
        60,
        120,
        240,
        480,
        960,
        1920,
        3600,
        3600,
    ]


def test_running_the_send_task_again_after_success_sends_nothing(
    world_a, members_a, new_ticket, after_commit, smtp_server
):
    ticket = new_ticket(summary="Export fails", assignee="user_alpha")
    smtp_server.reset()
    _comment(after_commit, members_a, ticket)
    with schema_context(world_a.schema):
        delivery = EmailDelivery.objects.get()
    connection.set_schema_to_public()
    # when the task is delivered again (the worker died after sending, before the ack)
    outcome = email_delivery_send_task.apply(args=[world_a.schema, delivery.pk]).get()
    # then
    assert outcome == "skipped"
    assert len(smtp_server.messages) == 1
    assert _deliveries(world_a) == [(["user@alpha.test"], "sent", 1)]


def test_a_lost_send_task_is_picked_up_by_the_sweep(world_a, after_commit, smtp_server):
    # given a delivery recorded long ago whose task never ran
    from notifications.tasks import notifications_email_sweep

    with schema_context(world_a.schema):
        EmailDelivery.objects.create(
            dedup_key="n:lost:1",
            recipient=world_a.user,
            to=["user@alpha.test"],
            subject="[Alpha Corp] lost",
            text_body="lost",
            html_body="<p>lost</p>",
            next_attempt_at=timezone.now() - timedelta(hours=1),
        )
    connection.set_schema_to_public()
    # when
    result = after_commit(lambda: notifications_email_sweep.apply(args=[world_a.schema]).get())
    # then
    assert result == {"digests": 0, "requeued": 1}
    assert [m["Subject"] for _, _, m in smtp_server.messages] == ["[Alpha Corp] lost"]
    assert _deliveries(world_a) == [(["user@alpha.test"], "sent", 1)]
