"""Writes of in-app notifications: create them for an event (honouring preferences,
visibility and de-duplication), mark them read, and `notification_send` for code
outside the ticket rules."""

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.members.models import Membership
from notifications.emails import Workspace, email_queue_for_notification, workspace_current
from notifications.models import Digest, EmailState, Notification
from notifications.preferences import Preference, preferences_for
from tickets.access import tickets_visible_to
from tickets.models import Ticket

logger = logging.getLogger(__name__)


@dataclass
class Draft:
    """A notification one rule wants to send to one person."""

    recipient_id: int
    kind: str
    title: str
    body: str = ""
    url: str = ""
    ticket: Ticket | None = None
    payload: dict[str, Any] = field(default_factory=dict)


def notification_event(notification: Notification) -> dict[str, Any]:
    """What browsers receive live (the same fields as the API's NotificationOut)."""
    return {
        "type": "notification.created",
        "notification": {
            "id": notification.pk,
            "kind": notification.kind,
            "title": notification.title,
            "body": notification.body,
            "url": notification.url,
            "ticket_key": notification.ticket_key or None,
            "actor_id": notification.actor_id,
            "payload": notification.payload,
            "created_at": notification.created_at.isoformat(),
            "read_at": None,
        },
    }


def _publish_after_commit(user_events: list[tuple[int, dict[str, Any]]]) -> None:
    if not user_events:
        return

    def publish() -> None:
        from notifications.realtime.publish import realtime_publish

        for user_id, event in user_events:
            try:
                realtime_publish(event=event, user_ids=[user_id])
            except Exception:  # best effort: the notification is in the database
                logger.exception("live push of a notification to %s failed", user_id)

    transaction.on_commit(publish)


def _can_see(member: Membership, ticket: Ticket | None) -> bool:
    return ticket is None or tickets_visible_to(member).filter(pk=ticket.pk).exists()


def _email_state(pref: Preference, member: Membership) -> str:
    if not pref.email or not member.user.email:
        return EmailState.NONE
    return EmailState.QUEUED if pref.digest == Digest.IMMEDIATE else EmailState.PENDING


def _insert(rows: list[Notification]) -> list[Notification]:
    """Insert, tolerating a concurrent writer of the same (event, recipient, kind)."""
    try:
        with transaction.atomic():
            return Notification.objects.bulk_create(rows)
    except IntegrityError:
        created = []
        for row in rows:
            try:
                with transaction.atomic():
                    row.save(force_insert=True)
                created.append(row)
            except IntegrityError:
                continue
        return created


def notifications_create(
    *, event_id: str, actor_id: int | None, drafts: Sequence[Draft]
) -> list[Notification]:
    """Create the notifications of one event, in the caller's transaction.

    One per person (the first draft for a person wins: rules list the most specific
    kind first), never for the actor, never for inactive members or people who cannot
    see the ticket, and never twice for the same event. Preferences pick the channels:
    a person with both off gets nothing; immediate emails are queued here, digest
    ones wait for the digest sweep. Live pushes and email tasks go after commit."""
    chosen: dict[int, Draft] = {}
    for draft in drafts:
        if draft.recipient_id and draft.recipient_id != actor_id:
            chosen.setdefault(draft.recipient_id, draft)
    if not chosen:
        return []
    already = set(
        Notification.objects.filter(event_id=event_id, recipient_id__in=chosen).values_list(
            "recipient_id", flat=True
        )
    )
    members = {
        m.user_id: m
        for m in Membership.objects.select_related("user").filter(
            user_id__in=[uid for uid in chosen if uid not in already],
            is_active=True,
            user__is_active=True,
        )
    }
    by_kind: dict[str, list[int]] = defaultdict(list)
    for uid in members:
        by_kind[chosen[uid].kind].append(uid)
    prefs = {kind: preferences_for(user_ids=uids, kind=kind) for kind, uids in by_kind.items()}
    now = timezone.now()
    rows = []
    email_now: set[int] = set()
    for uid, member in members.items():
        draft = chosen[uid]
        pref = prefs[draft.kind][uid]
        email_state = _email_state(pref, member)
        if not pref.in_app and email_state == EmailState.NONE:
            continue
        if not _can_see(member, draft.ticket):
            continue
        rows.append(
            Notification(
                recipient=member.user,
                kind=draft.kind,
                ticket=draft.ticket,
                ticket_key=draft.ticket.key if draft.ticket else "",
                actor_id=actor_id,
                title=draft.title[:255],
                body=draft.body,
                url=draft.url,
                payload=draft.payload,
                event_id=event_id,
                in_app=pref.in_app,
                email_state=EmailState.NONE if email_state == EmailState.QUEUED else email_state,
                created_at=now,
            )
        )
        if email_state == EmailState.QUEUED:
            email_now.add(uid)
    created = _insert(rows)
    workspace: Workspace | None = None
    for notification in created:
        if notification.recipient_id in email_now:
            workspace = workspace or workspace_current()
            email_queue_for_notification(notification=notification, workspace=workspace)
    _publish_after_commit([(n.recipient_id, notification_event(n)) for n in created if n.in_app])
    return created


def notification_send(
    *,
    user_ids: Iterable[int],
    kind: str,
    title: str,
    body: str,
    url: str = "",
    event_id: str | None = None,
    actor_id: int | None = None,
) -> list[Notification]:
    """Notify people about something outside the ticket rules (e.g. "a webhook
    endpoint was disabled"). Same guarantees as the rules: active members only, never
    the actor, preferences honoured (unknown kinds use the `system` event type), and
    at most once per `event_id` and person, so a retried caller passes the same id.
    Call it inside the caller's transaction; returns the notifications created."""
    with transaction.atomic():
        return notifications_create(
            event_id=str(event_id) if event_id is not None else uuid.uuid4().hex,
            actor_id=actor_id,
            drafts=[
                Draft(recipient_id=uid, kind=kind, title=title, body=body, url=url)
                for uid in dict.fromkeys(user_ids)
            ],
        )


def notification_mark_read(*, notification: Notification) -> Notification:
    """Mark read (again: no change, the first read time stays)."""
    if notification.read_at is None:
        now = timezone.now()
        updated = Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(
            read_at=now
        )
        notification.refresh_from_db(fields=["read_at"])
        if updated:
            _publish_after_commit(
                [
                    (
                        notification.recipient_id,
                        {"type": "notification.read", "ids": [notification.pk]},
                    )
                ]
            )
    return notification


def notifications_mark_all_read(*, member: Membership) -> int:
    """Mark every unread in-app notification of the member read; returns how many."""
    with transaction.atomic():
        ids = list(
            Notification.objects.select_for_update()
            .filter(recipient_id=member.user_id, in_app=True, read_at__isnull=True)
            .values_list("pk", flat=True)
        )
        if not ids:
            return 0
        Notification.objects.filter(pk__in=ids).update(read_at=timezone.now())
        _publish_after_commit([(member.user_id, {"type": "notification.read", "ids": ids})])
        return len(ids)
