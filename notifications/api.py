"""In-app notifications and notification preferences.

`/notifications` is the caller's own inbox: someone else's notification answers 404.
`/users/{userId}/notification-settings` is readable and writable by the person and
by tenant admins (others: 403; people who are not members: 404). The unsubscribe link
of an email works without login: its signed token names the person, the workspace
and the event type.
"""

from ninja import Query, Router
from ninja.pagination import paginate

from accounts.authentication import AuthedRequest
from accounts.members.models import Membership
from accounts.policy import ADMIN_USERS, READ_USERS, member_can, member_require
from accounts.selectors import member_get_for_user
from accounts.user_schemas import errors
from notifications.preferences import (
    email_unsubscribe,
    notification_settings_get,
    notification_settings_update,
)
from notifications.schemas import (
    NotificationFilters,
    NotificationOut,
    NotificationSettingsIn,
    NotificationSettingsOut,
    ReadAllOut,
    UnreadCountOut,
    UnsubscribeOut,
)
from notifications.selectors import (
    notification_get_for_user,
    notifications_list,
    notifications_unread_count,
)
from notifications.services import notification_mark_read, notifications_mark_all_read
from saas.errors import Forbidden
from saas.pagination import Page

router = Router(tags=["notifications"])


@router.get("/notifications", response=list[NotificationOut])
@paginate(Page)
def notifications_index(request: AuthedRequest, filters: Query[NotificationFilters]):
    """Your notifications, newest first; `unread=true` for the unread ones only."""
    return notifications_list(member=request.member, unread=filters.unread)


@router.get("/notifications/unread-count", response=UnreadCountOut)
def notifications_unread(request: AuthedRequest):
    """How many of your notifications are unread (the badge)."""
    return {"count": notifications_unread_count(member=request.member)}


@router.put("/notifications/read-all", response=ReadAllOut)
def notifications_read_all(request: AuthedRequest):
    """Mark all your notifications read; answers how many changed."""
    return {"updated": notifications_mark_all_read(member=request.member)}


@router.put("/notifications/{notificationId}/read", response={200: NotificationOut, **errors(404)})
def notifications_read(request: AuthedRequest, notificationId: int):
    """Mark one of your notifications read (again: no change)."""
    notification = notification_get_for_user(member=request.member, notification_id=notificationId)
    return notification_mark_read(notification=notification)


def _settings_target(request: AuthedRequest, user_id: int) -> Membership:
    actor = request.member
    member_require(actor, READ_USERS)
    member = member_get_for_user(viewer=actor, user_id=user_id)
    if member.user_id != actor.user_id and not member_can(actor, ADMIN_USERS):
        raise Forbidden("Only the person and workspace admins can see or change this.")
    return member


@router.get(
    "/users/{userId}/notification-settings",
    response={200: NotificationSettingsOut, **errors(403, 404)},
)
def notification_settings_read(request: AuthedRequest, userId: int):
    """Which event types reach the person in the app and by email (both on unless
    turned off), and how often emails leave (immediately or as an hourly or daily
    digest)."""
    member = _settings_target(request, userId)
    return notification_settings_get(user_id=member.user_id)


@router.put(
    "/users/{userId}/notification-settings",
    response={200: NotificationSettingsOut, **errors(403, 404, 422)},
)
def notification_settings_write(request: AuthedRequest, userId: int, body: NotificationSettingsIn):
    """Change some switches and/or the digest frequency; omitted ones stay."""
    member = _settings_target(request, userId)
    return notification_settings_update(
        member=member,
        actor=request.member,
        digest=body.digest,
        event_types=[e.dict() for e in body.event_types],
    )


@router.get(
    "/notifications/unsubscribe/{unsubscribeToken}",
    response={200: UnsubscribeOut, **errors(404)},
    auth=None,
)
def notifications_unsubscribe(request, unsubscribeToken: str):
    """The unsubscribe link of an email (no login): turns that event type's email off
    for the person the signed token names. Invalid or foreign tokens answer 404."""
    return email_unsubscribe(token=unsubscribeToken)


@router.post(
    "/notifications/unsubscribe/{unsubscribeToken}",
    response={200: UnsubscribeOut, **errors(404)},
    auth=None,
)
def notifications_unsubscribe_one_click(request, unsubscribeToken: str):
    """RFC 8058 one-click unsubscribe (mail clients POST to the List-Unsubscribe URL)."""
    return email_unsubscribe(token=unsubscribeToken)


@router.get(
    "/notifications/unsubscribe",
    response={200: UnsubscribeOut, **errors(404)},
    auth=None,
    include_in_schema=False,
)
def notifications_unsubscribe_query(request, token: str):
    """`?token=` form of the unsubscribe link (kept out of the schema: the path form
    is the documented one)."""
    return email_unsubscribe(token=token)
