"""Reads of in-app notifications: a member sees only their own, and only those about
tickets they can still see."""

from django.db.models import Q, QuerySet

from accounts.members.models import Membership
from notifications.models import Notification
from saas.errors import NotFound
from saas.refs import db_id_valid
from tickets.access import tickets_visible_to


def notifications_visible_to(member: Membership) -> QuerySet[Notification]:
    return Notification.objects.filter(recipient_id=member.user_id, in_app=True).filter(
        Q(ticket__isnull=True) | Q(ticket__in=tickets_visible_to(member).values("pk"))
    )


def notifications_list(*, member: Membership, unread: bool | None = None) -> QuerySet[Notification]:
    """Newest first; `unread=True` only unread ones, `False` only read ones."""
    notifications = notifications_visible_to(member)
    if unread is not None:
        notifications = notifications.filter(read_at__isnull=unread)
    return notifications.order_by("-created_at", "-id")


def notifications_unread_count(*, member: Membership) -> int:
    return notifications_visible_to(member).filter(read_at__isnull=True).count()


def notification_get_for_user(*, member: Membership, notification_id: int) -> Notification:
    """One of the member's notifications; someone else's answers 404."""
    notification = (
        notifications_visible_to(member).filter(pk=notification_id).first()
        if db_id_valid(notification_id)
        else None
    )
    if notification is None:
        raise NotFound("No such notification.", code="notification_not_found")
    return notification
