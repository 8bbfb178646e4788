"""Outgoing notification email: rendered and recorded (EmailDelivery) in the
transaction that decides to send it, then sent by a Celery task exactly once per
delivery row (see `EmailDelivery` for the state machine and its one window)."""

import hashlib
import smtplib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from notifications.models import EmailDelivery, EmailState, Kind, Notification
from notifications.preferences import event_type_of, unsubscribe_token
from saas.tenancy import current_schema
from tenants.models import Tenant, tenant_url

# Retries of a transient failure: 30 s, 1 min, 2 min, ... capped at an hour.
RETRY_BASE_SECONDS = 30
RETRY_MAX_SECONDS = 3600
MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class Workspace:
    """What an email says about the tenant it comes from."""

    name: str
    base_url: str

    def absolute(self, path: str) -> str:
        return f"{self.base_url}{path}" if path.startswith("/") else path


def workspace_current() -> Workspace:
    schema = current_schema()
    tenant = Tenant.objects.filter(schema_name=schema).only("name", "subdomain").first()
    if tenant is None:  # a schema without a tenant row (never in production)
        return Workspace(name=schema, base_url=tenant_url(schema))
    return Workspace(name=tenant.name, base_url=tenant_url(tenant.subdomain))


def unsubscribe_url(*, workspace: Workspace, user_id: int, kind: str) -> str:
    token = unsubscribe_token(user_id=user_id, event_type=event_type_of(kind))
    return workspace.absolute(f"/api/v1/notifications/unsubscribe/{token}")


def _message_id(dedup_key: str) -> str:
    digest = hashlib.sha256(f"{current_schema()}:{dedup_key}".encode()).hexdigest()[:40]
    return f"<{digest}@{settings.BASE_DOMAIN}>"


def _delivery_create(
    *, dedup_key: str, notification: Notification, to: str, subject: str, context: dict
) -> tuple[EmailDelivery, bool]:
    """Record one email, idempotent on `dedup_key` (the flag says whether it is new);
    the send task is enqueued after commit."""
    template = context.pop("template")
    delivery, created = EmailDelivery.objects.get_or_create(
        dedup_key=dedup_key,
        defaults={
            "recipient_id": notification.recipient_id,
            "to": [to],
            "subject": subject[:255],
            "text_body": render_to_string(f"notifications/email/{template}.txt", context),
            "html_body": render_to_string(f"notifications/email/{template}.html", context),
            "headers": {"Message-ID": _message_id(dedup_key), **context.pop("headers", {})},
        },
    )
    if created:
        schema = current_schema()
        transaction.on_commit(lambda: _enqueue(schema, delivery.pk))
    return delivery, created


def _enqueue(schema_name: str, delivery_id: int) -> None:
    from notifications.tasks import email_delivery_send_task

    email_delivery_send_task.delay(schema_name, delivery_id)


def email_queue_for_notification(
    *, notification: Notification, workspace: Workspace
) -> EmailDelivery | None:
    """The immediate email of one notification (one per person and event)."""
    recipient = notification.recipient
    unsubscribe = unsubscribe_url(workspace=workspace, user_id=recipient.pk, kind=notification.kind)
    delivery, created = _delivery_create(
        dedup_key=f"n:{notification.event_id}:{recipient.pk}",
        notification=notification,
        to=recipient.email,
        subject=f"[{workspace.name}] {notification.title}",
        context={
            "template": "notification",
            "workspace": workspace,
            "notification": notification,
            "link": workspace.absolute(notification.url) if notification.url else "",
            "event_label": Kind(event_type_of(notification.kind)).label,
            "unsubscribe_url": unsubscribe,
            "headers": {
                "List-Unsubscribe": f"<{unsubscribe}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
        },
    )
    Notification.objects.filter(pk=notification.pk).update(
        email_state=EmailState.QUEUED, email_delivery=delivery
    )
    return delivery if created else None


def email_queue_digest(
    *, recipient_id: int, notifications: Sequence[Notification], workspace: Workspace
) -> EmailDelivery | None:
    """One email grouping a user's pending notifications (the caller locked them)."""
    first = notifications[0]
    recipient = first.recipient
    items = [
        {
            "notification": n,
            "link": workspace.absolute(n.url) if n.url else "",
        }
        for n in notifications
    ]
    kinds = sorted({event_type_of(n.kind) for n in notifications})
    unsubscribes = [
        {
            "label": Kind(kind).label,
            "url": unsubscribe_url(workspace=workspace, user_id=recipient_id, kind=kind),
        }
        for kind in kinds
    ]
    count = len(notifications)
    delivery, created = _delivery_create(
        dedup_key=f"digest:{recipient_id}:{first.pk}-{notifications[-1].pk}",
        notification=first,
        to=recipient.email,
        subject=f"[{workspace.name}] {count} new notification{'s' if count != 1 else ''}",
        context={
            "template": "digest",
            "workspace": workspace,
            "items": items,
            "count": count,
            "unsubscribes": unsubscribes,
        },
    )
    Notification.objects.filter(pk__in=[n.pk for n in notifications]).update(
        email_state=EmailState.QUEUED, email_delivery=delivery
    )
    return delivery if created else None


# Sending ----------------------------------------------------------------------------


class TransientEmailError(Exception):
    """The SMTP server or the network failed for now; try again later."""


def smtp_failure_is_permanent(exc: BaseException) -> bool:
    """5xx answers reject the message for good; 4xx, dropped connections, timeouts and
    refused connections are worth retrying."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(code >= 500 for code in codes)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return False  # our credentials: an operator fixes them, the message is fine
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500
    return False


def email_retry_countdown(attempt: int) -> int:
    """Seconds before attempt `attempt + 1` (exponential, capped)."""
    return int(min(RETRY_BASE_SECONDS * 2 ** max(attempt - 1, 0), RETRY_MAX_SECONDS))


@dataclass(frozen=True)
class SendOutcome:
    status: str  # sent | skipped | retry | failed_permanent
    error: str = ""
    attempts: int = 0


def _message(delivery: EmailDelivery) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject=delivery.subject,
        body=delivery.text_body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=list(delivery.to),
        headers=dict(delivery.headers),
    )
    message.attach_alternative(delivery.html_body, "text/html")
    return message


def email_delivery_send(*, delivery_id: int, now: datetime | None = None) -> SendOutcome:
    """Send one recorded email unless it was sent (or given up) already.

    The row stays locked while the SMTP conversation runs and is marked `sent` in the
    same transaction, so a second task for the same row waits or finds it sent. A
    transient failure records the attempt and answers `retry` (after MAX_ATTEMPTS it
    gives up: `failed_permanent`); a 5xx rejection is recorded as `failed_permanent`."""
    now = now or timezone.now()
    with transaction.atomic():
        delivery = (
            EmailDelivery.objects.select_for_update(skip_locked=True)
            .filter(pk=delivery_id, status=EmailDelivery.Status.QUEUED)
            .first()
        )
        if delivery is None:
            return SendOutcome("skipped")
        delivery.attempts += 1
        try:
            with get_connection(fail_silently=False) as smtp:
                smtp.send_messages([_message(delivery)])
        except (smtplib.SMTPException, OSError) as exc:
            delivery.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            permanent = smtp_failure_is_permanent(exc)
            if permanent or delivery.attempts >= MAX_ATTEMPTS:
                delivery.status = EmailDelivery.Status.FAILED_PERMANENT
                status = "failed_permanent"
            else:
                delivery.next_attempt_at = now + timedelta(
                    seconds=email_retry_countdown(delivery.attempts)
                )
                status = "retry"
            delivery.save(update_fields=["attempts", "last_error", "status", "next_attempt_at"])
            return SendOutcome(status, delivery.last_error, delivery.attempts)
        delivery.status = EmailDelivery.Status.SENT
        delivery.sent_at = now
        delivery.last_error = ""
        delivery.save(update_fields=["attempts", "last_error", "status", "sent_at"])
        return SendOutcome("sent", attempts=delivery.attempts)


def email_deliveries_stuck(*, now: datetime | None = None, grace: timedelta) -> list[int]:
    """Queued deliveries whose task must have been lost (due for longer than `grace`)."""
    cutoff = (now or timezone.now()) - grace
    return list(
        EmailDelivery.objects.filter(
            status=EmailDelivery.Status.QUEUED, next_attempt_at__lte=cutoff
        ).values_list("pk", flat=True)[:500]
    )
