"""Email digests: people on hourly or daily email get one message grouping what
waited for them (notifications in `email_state="pending"`)."""

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from accounts.members.models import Membership
from notifications.emails import email_queue_digest, workspace_current
from notifications.models import Digest, EmailDelivery, EmailDigestSetting, EmailState, Notification
from tickets.access import tickets_visible_to

PERIODS = {
    Digest.IMMEDIATE: timedelta(0),
    Digest.HOURLY: timedelta(hours=1),
    Digest.DAILY: timedelta(days=1),
}
# A digest lists at most this many; the rest go in the next one.
MAX_ITEMS = 100


def digest_recipients_due(*, now: datetime | None = None) -> list[int]:
    """Users with pending notifications whose period has passed since their last
    digest (or, before the first one, since their oldest pending notification).
    People back on `immediate` get what was still pending at once."""
    now = now or timezone.now()
    oldest = dict(
        Notification.objects.filter(email_state=EmailState.PENDING)
        .values("recipient_id")
        .annotate(oldest=Min("created_at"))
        .values_list("recipient_id", "oldest")
    )
    schedule = {row.user_id: row for row in EmailDigestSetting.objects.filter(user_id__in=oldest)}
    due = []
    for user_id, first in oldest.items():
        row = schedule.get(user_id)
        frequency = row.frequency if row else Digest.IMMEDIATE
        since = (row.last_sent_at if row else None) or first
        if now - since >= PERIODS[Digest(frequency)]:
            due.append(user_id)
    return sorted(due)


@transaction.atomic
def digest_queue_for(*, recipient_id: int, now: datetime | None = None) -> EmailDelivery | None:
    """Queue one digest email of the user's pending notifications (locked, so two
    sweeps never send the same ones). Notifications on tickets the person can no
    longer see, and everything of a deactivated member, are dropped."""
    now = now or timezone.now()
    pending = list(
        Notification.objects.select_for_update(skip_locked=True)
        .select_related("recipient")
        .filter(recipient_id=recipient_id, email_state=EmailState.PENDING)
        .order_by("id")[:MAX_ITEMS]
    )
    if not pending:
        return None
    member = (
        Membership.objects.select_related("user")
        .filter(user_id=recipient_id, is_active=True, user__is_active=True)
        .first()
    )
    ticket_ids = {n.ticket_id for n in pending if n.ticket_id}
    visible = (
        set(tickets_visible_to(member).filter(pk__in=ticket_ids).values_list("pk", flat=True))
        if member and ticket_ids
        else set()
    )
    keep = [n for n in pending if member and (n.ticket_id is None or n.ticket_id in visible)]
    dropped = [n.pk for n in pending if n not in keep]
    if dropped:
        Notification.objects.filter(pk__in=dropped).update(email_state=EmailState.NONE)
    EmailDigestSetting.objects.update_or_create(
        user_id=recipient_id, defaults={"last_sent_at": now}
    )
    if not keep:
        return None
    return email_queue_digest(
        recipient_id=recipient_id, notifications=keep, workspace=workspace_current()
    )


def digests_queue_due(*, now: datetime | None = None) -> int:
    """Queue the digests due in the current tenant; returns how many were queued."""
    queued = 0
    for recipient_id in digest_recipients_due(now=now):
        if digest_queue_for(recipient_id=recipient_id, now=now) is not None:
            queued += 1
    return queued
