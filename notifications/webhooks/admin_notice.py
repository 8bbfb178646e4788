"""Tell the workspace admins when a webhook was disabled for failing a whole day:
an in-app notification (and email, per their preferences) through
`notifications.services.notification_send`, at most once per event and admin."""

from accounts.members.models import Membership, Role
from eventlog.models import OutboxEvent
from eventlog.outbox import outbox_consumer
from notifications.services import notification_send

WEBHOOK_DISABLED = "webhook.disabled"


@outbox_consumer(WEBHOOK_DISABLED)
def webhook_disabled_notify_admins(event: OutboxEvent) -> None:
    admins = Membership.objects.filter(role=Role.ADMIN, is_active=True).values_list(
        "user_id", flat=True
    )
    webhook_id = event.payload.get("webhook_id")
    notification_send(
        user_ids=list(admins),
        kind=WEBHOOK_DISABLED,
        title=f"Webhook disabled: {event.payload.get('url', '')}"[:255],
        body=event.payload.get("reason", ""),
        url=f"/settings/webhooks/{webhook_id}",
        event_id=str(event.pk),
    )
