"""The notification rules, fed by the real services through the outbox."""

import asyncio

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection
from django_tenants.utils import schema_context

from eventlog.dispatch import outbox_dispatch_pending
from eventlog.models import OutboxEvent
from eventlog.outbox import outbox_emit
from notifications.models import EmailDelivery, Notification
from notifications.realtime.publish import user_group
from notifications.rules import notify_comment
from notifications.services import notification_send
from tickets.content_services import comment_create, comment_update
from tickets.models import Ticket, Watcher
from tickets.services import ticket_create, ticket_update
from tickets.workflow_engine import ticket_transition, transitions_available


def _notifications(world, **filters):
    with schema_context(world.schema):
        rows = list(
            Notification.objects.filter(**filters)
            .order_by("recipient_id", "id")
            .values_list("recipient_id", "kind", "ticket_key", "title")
        )
    connection.set_schema_to_public()
    return rows


def _transition_to(ticket, member, status):
    ticket = Ticket.objects.get(pk=ticket.pk)
    chosen = next(
        t for t in transitions_available(ticket=ticket, member=member) if t.to.name == status
    )
    return ticket_transition(ticket=ticket, actor=member, transition_id=chosen.id)


def test_a_new_ticket_with_an_assignee_notifies_the_assignee_only(
    world_a, members_a, project_a, after_commit
):
    # when the admin creates a ticket assigned to the user
    ticket = after_commit(
        lambda: ticket_create(
            project=project_a,
            actor=members_a["admin"],
            data={"summary": "Login page is blank", "assignee": "user_alpha"},
        )
    )
    # then
    assert _notifications(world_a) == [
        (
            world_a.user.pk,
            "assigned",
            ticket.key,
            f"Alpha Admin created and assigned {ticket.key} to you",
        )
    ]
    with schema_context(world_a.schema):
        notification = Notification.objects.get()
        assert notification.body == "Login page is blank"
        assert notification.url == f"/browse/{ticket.key}"
        assert notification.actor_id == world_a.admin.pk
        assert notification.payload == {"key": ticket.key, "project": "CORE"}
        assert notification.read_at is None
        assert notification.event_id == str(OutboxEvent.objects.get(kind="ticket.created").pk)


def test_changing_the_assignee_notifies_the_new_assignee(
    world_a, members_a, new_ticket, after_commit
):
    ticket = new_ticket(summary="Crash on save")
    # when
    after_commit(
        lambda: ticket_update(
            ticket=Ticket.objects.get(pk=ticket.pk),
            actor=members_a["admin"],
            data={"assignee": "lead_alpha"},
        )
    )
    # then
    assert _notifications(world_a) == [
        (world_a.lead.pk, "assigned", ticket.key, f"Alpha Admin assigned {ticket.key} to you")
    ]


def test_other_field_changes_notify_nobody(world_a, members_a, new_ticket, after_commit):
    ticket = new_ticket(summary="Crash on save", assignee="user_alpha")
    # when the summary changes
    after_commit(
        lambda: ticket_update(
            ticket=Ticket.objects.get(pk=ticket.pk),
            actor=members_a["admin"],
            data={"summary": "Crash"},
        )
    )
    # then
    assert _notifications(world_a) == []


def test_assigning_yourself_notifies_nobody(world_a, members_a, new_ticket, after_commit):
    ticket = new_ticket(summary="Crash on save")
    # when the user takes the ticket themselves
    after_commit(
        lambda: ticket_update(
            ticket=Ticket.objects.get(pk=ticket.pk),
            actor=members_a["user"],
            data={"assignee": "user_alpha"},
        )
    )
    # then: never the actor
    assert _notifications(world_a) == []
    with schema_context(world_a.schema):
        assert (
            OutboxEvent.objects.filter(kind="ticket.updated", dispatched_at__isnull=False).count()
            == 1
        )


def test_a_comment_notifies_followers_and_a_mentioned_watcher_gets_the_mention_only(
    world_a, members_a, new_ticket, after_commit
):
    # given a ticket reported by the admin, assigned to the lead, watched by the user
    ticket = new_ticket(summary="Slow search", assignee="lead_alpha")
    with schema_context(world_a.schema):
        Watcher.objects.create(ticket_id=ticket.pk, user=world_a.user)
    connection.set_schema_to_public()
    # when the lead comments and mentions the user
    comment = after_commit(
        lambda: comment_create(
            ticket=Ticket.objects.get(pk=ticket.pk),
            actor=members_a["lead"],
            body="@user_alpha can you check the index?",
        )
    )
    # then the admin (reporter, watcher) hears of the comment, the user of the mention only,
    # and the lead (the actor) of nothing
    assert _notifications(world_a) == sorted(
        [
            (world_a.admin.pk, "commented", ticket.key, f"Lead Alpha commented on {ticket.key}"),
            (world_a.user.pk, "mentioned", ticket.key, f"Lead Alpha mentioned you on {ticket.key}"),
        ]
    )
    with schema_context(world_a.schema):
        mention = Notification.objects.get(kind="mentioned")
        assert mention.body == "@user_alpha can you check the index?"
        assert mention.url == f"/browse/{ticket.key}?focusedCommentId={comment.pk}"
        assert mention.payload == {"key": ticket.key, "project": "CORE", "comment_id": comment.pk}


def test_editing_a_comment_notifies_only_the_newly_mentioned(
    world_a, members_a, new_ticket, after_commit
):
    ticket = new_ticket(summary="Slow search")
    comment = after_commit(
        lambda: comment_create(
            ticket=Ticket.objects.get(pk=ticket.pk),
            actor=members_a["admin"],
            body="ping @user_alpha",
        )
    )
    assert _notifications(world_a, kind="mentioned") == [
        (world_a.user.pk, "mentioned", ticket.key, f"Alpha Admin mentioned you on {ticket.key}")
    ]
    # when the admin edits it to mention the lead as well
    after_commit(
        lambda: comment_update(
            comment=type(comment).objects.get(pk=comment.pk),
            actor=members_a["admin"],
            body="ping @user_alpha and @lead_alpha",
        )
    )
    # then only the lead is told (the user already was)
    assert _notifications(world_a, kind="mentioned") == [
        (world_a.lead.pk, "mentioned", ticket.key, f"Alpha Admin mentioned you on {ticket.key}"),
        (world_a.user.pk, "mentioned", ticket.key, f"Alpha Admin mentioned you on {ticket.key}"),
    ]
    assert _notifications(world_a, kind="commented") == []


def test_a_status_change_notifies_watchers_reporter_and_assignee_but_not_the_actor(
    world_a, members_a, new_ticket, after_commit
):
    # given: reported by the user, assigned to the lead; the admin created it (watcher)
    ticket = new_ticket(summary="Broken export", reporter="user_alpha", assignee="lead_alpha")
    # when the lead moves it to In Progress
    after_commit(lambda: _transition_to(ticket, members_a["lead"], "In Progress"))
    # then
    title = f"Lead Alpha changed {ticket.key} from To Do to In Progress"
    assert _notifications(world_a) == [
        (world_a.admin.pk, "status_changed", ticket.key, title),
        (world_a.user.pk, "status_changed", ticket.key, title),
    ]
    with schema_context(world_a.schema):
        assert Notification.objects.filter(kind="status_changed").first().payload == {
            "key": ticket.key,
            "project": "CORE",
            "from": "To Do",
            "to": "In Progress",
        }


def test_people_who_cannot_see_the_ticket_or_are_inactive_are_not_notified(
    world_a, members_a, private_project_a, new_ticket, after_commit
):
    # given a private ticket (only the lead is a project member) that the user watches,
    # and an open ticket watched by the user, who is then deactivated
    secret = new_ticket(project=private_project_a, as_user="lead", summary="Secret")
    with schema_context(world_a.schema):
        Watcher.objects.create(ticket_id=secret.pk, user=world_a.user)
    connection.set_schema_to_public()
    # when the lead comments on it
    after_commit(
        lambda: comment_create(
            ticket=Ticket.objects.get(pk=secret.pk), actor=members_a["lead"], body="quiet"
        )
    )
    # then the user, who cannot see the project, hears nothing; neither does the lead
    assert _notifications(world_a) == []
    # given an open ticket the user watches, and the user deactivated
    open_ticket = new_ticket(summary="Open", assignee="user_alpha")
    with schema_context(world_a.schema):
        Notification.objects.all().delete()
        members_a["user"].is_active = False
        members_a["user"].save(update_fields=["is_active"])
    connection.set_schema_to_public()
    # when the admin comments
    after_commit(
        lambda: comment_create(
            ticket=Ticket.objects.get(pk=open_ticket.pk), actor=members_a["admin"], body="hello"
        )
    )
    # then
    assert _notifications(world_a) == []


def test_a_redelivered_event_notifies_and_emails_nobody_twice(
    world_a, members_a, new_ticket, after_commit, mailoutbox
):
    ticket = new_ticket(summary="Slow search", assignee="user_alpha")
    mailoutbox.clear()
    after_commit(
        lambda: comment_create(
            ticket=Ticket.objects.get(pk=ticket.pk), actor=members_a["admin"], body="first"
        )
    )
    assert [m.to for m in mailoutbox] == [[world_a.user.email]]
    with schema_context(world_a.schema):
        event = OutboxEvent.objects.get(kind="comment.created")
    connection.set_schema_to_public()

    # when the event is handed over again (a worker died before marking it dispatched)
    def redeliver():
        OutboxEvent.objects.filter(pk=event.pk).update(dispatched_at=None)
        outbox_dispatch_pending()
        notify_comment(OutboxEvent.objects.get(pk=event.pk))

    after_commit(redeliver)
    # then
    assert _notifications(world_a) == [
        (world_a.user.pk, "commented", ticket.key, f"Alpha Admin commented on {ticket.key}")
    ]
    with schema_context(world_a.schema):
        assert EmailDelivery.objects.count() == 1
        assert OutboxEvent.objects.get(pk=event.pk).attempts == 2
    assert len(mailoutbox) == 1


def _sprint_event(world, kind, ticket_ids, actor):
    with schema_context(world.schema):
        outbox_emit(
            kind,
            aggregate_type="sprint",
            aggregate_id=42,
            actor=actor,
            payload={
                "sprint_id": 42,
                "name": "Sprint 7",
                "project": "CORE",
                "ticket_ids": ticket_ids,
            },
        )


def test_sprint_start_and_completion_notify_each_assignee_once_with_their_tickets(
    world_a, members_a, new_ticket, after_commit
):
    # given two tickets of the user, one of the lead, one of the admin (the actor)
    mine = [new_ticket(summary=f"T{i}", assignee="user_alpha") for i in range(2)]
    leads = new_ticket(summary="L", assignee="lead_alpha")
    admins = new_ticket(summary="A", assignee=world_a.admin.username)
    ids = [t.pk for t in (*mine, leads, admins)]
    # when the admin starts the sprint, then completes it
    after_commit(lambda: _sprint_event(world_a, "sprint.started", ids, world_a.admin))
    after_commit(lambda: _sprint_event(world_a, "sprint.completed", ids, world_a.admin))
    # then
    assert _notifications(world_a) == [
        (world_a.lead.pk, "sprint_started", "", "Sprint Sprint 7 started"),
        (world_a.lead.pk, "sprint_completed", "", "Sprint Sprint 7 was completed"),
        (world_a.user.pk, "sprint_started", "", "Sprint Sprint 7 started"),
        (world_a.user.pk, "sprint_completed", "", "Sprint Sprint 7 was completed"),
    ]
    with schema_context(world_a.schema):
        started = Notification.objects.get(recipient=world_a.user, kind="sprint_started")
        assert started.body == f"2 of your tickets: {mine[0].key}, {mine[1].key}"
        assert started.url == "/projects/CORE/board"
        assert started.payload == {
            "sprint_id": 42,
            "name": "Sprint 7",
            "project": "CORE",
            "keys": [mine[0].key, mine[1].key],
        }


def test_notification_send_reaches_active_members_once_per_event_id(
    world_a, members_a, after_commit
):
    # when the same announcement is sent twice with one event id (a retried caller)
    def send():
        return [
            notification_send(
                user_ids=[world_a.admin.pk, world_a.lead.pk, 999_999_999],
                kind="webhook_disabled",
                title="Webhook https://hooks.example/x was disabled",
                body="It failed for 24 hours.",
                url="/settings/webhooks/3",
                event_id="webhook-disabled:3",
                actor_id=world_a.lead.pk,
            )
            for _ in range(2)
        ]

    first, second = after_commit(send)
    # then the admin is notified once; the actor and the stranger never
    assert [n.recipient_id for n in first] == [world_a.admin.pk]
    assert second == []
    assert _notifications(world_a) == [
        (world_a.admin.pk, "webhook_disabled", "", "Webhook https://hooks.example/x was disabled")
    ]


def test_a_new_notification_is_pushed_live_to_the_recipient(
    world_a, members_a, new_ticket, after_commit
):
    # given a live connection of the user, listening on the real Redis channel layer
    ticket = new_ticket(summary="Slow search", assignee="user_alpha")
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(user_group(world_a.schema, world_a.user.pk), channel)
    # when the admin comments
    after_commit(
        lambda: comment_create(
            ticket=Ticket.objects.get(pk=ticket.pk), actor=members_a["admin"], body="look"
        )
    )

    async def receive():
        return await asyncio.wait_for(layer.receive(channel), timeout=5)

    message = async_to_sync(receive)()
    # then
    with schema_context(world_a.schema):
        notification = Notification.objects.get()
    assert message["type"] == "rt.event"
    assert message["event"]["type"] == "notification.created"
    assert message["event"]["notification"]["id"] == notification.pk
    assert message["event"]["notification"]["title"] == f"Alpha Admin commented on {ticket.key}"
    assert message["event"]["notification"]["ticket_key"] == ticket.key
