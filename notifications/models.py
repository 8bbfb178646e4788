"""Tenant schema: in-app notifications, notification preferences and outgoing email."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class Kind(models.TextChoices):
    """What a notification is about; also the event types of the preferences."""

    ASSIGNED = "assigned", "A ticket is assigned to you"
    MENTIONED = "mentioned", "You are mentioned in a comment"
    COMMENTED = "commented", "A comment on a ticket you follow"
    STATUS_CHANGED = "status_changed", "The status of a ticket you follow changes"
    SPRINT_STARTED = "sprint_started", "A sprint with your tickets starts"
    SPRINT_COMPLETED = "sprint_completed", "A sprint with your tickets is completed"
    SYSTEM = "system", "Workspace announcements (e.g. a webhook was disabled)"


class Channel(models.TextChoices):
    IN_APP = "in_app", "In the app"
    EMAIL = "email", "Email"


class Digest(models.TextChoices):
    IMMEDIATE = "immediate", "Immediately"
    HOURLY = "hourly", "Hourly digest"
    DAILY = "daily", "Daily digest"


class EmailState(models.TextChoices):
    NONE = "none", "No email wanted"
    PENDING = "pending", "Waiting for the digest"
    QUEUED = "queued", "In an email delivery"


class Notification(models.Model):
    """One message to one person about one event. `(event_id, recipient, kind)` is
    unique, so a redelivered outbox event never notifies twice. A row with
    `in_app=False` exists only to carry an email (the person turned in-app off)."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=40)
    ticket = models.ForeignKey(
        "tickets.Ticket", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    ticket_key = models.CharField(max_length=24, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    title = models.CharField(max_length=255)
    body = models.TextField(blank=True)
    # A path on the tenant's host (`/browse/CORE-1`); emails make it absolute.
    url = models.CharField(max_length=500, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    # The outbox event id, or a caller-chosen id for notification_send.
    event_id = models.CharField(max_length=64)
    in_app = models.BooleanField(default=True)
    email_state = models.CharField(
        max_length=8, choices=EmailState.choices, default=EmailState.NONE
    )
    email_delivery = models.ForeignKey(
        "notifications.EmailDelivery",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="notifications",
        db_index=False,
    )
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=["event_id", "recipient", "kind"], name="notification_once_per_event"
            )
        ]
        indexes = [
            models.Index(
                fields=["recipient", "-created_at", "-id"],
                condition=models.Q(in_app=True),
                name="notification_inbox_idx",
            ),
            models.Index(
                fields=["recipient"],
                condition=models.Q(in_app=True, read_at__isnull=True),
                name="notification_unread_idx",
            ),
            models.Index(
                fields=["recipient", "id"],
                condition=models.Q(email_state="pending"),
                name="notification_digest_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.recipient_id} ({self.event_id})"


class NotificationSetting(models.Model):
    """One switch: may `event_type` reach the user through `channel`? No row: on."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    event_type = models.CharField(max_length=40, choices=Kind.choices)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    enabled = models.BooleanField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "event_type", "channel"], name="notification_setting_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.event_type}/{self.channel}={self.enabled}"


class EmailDigestSetting(models.Model):
    """How often a user's emails leave; no row: immediately."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    frequency = models.CharField(max_length=10, choices=Digest.choices, default=Digest.IMMEDIATE)
    last_sent_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user_id} {self.frequency}"


class EmailDelivery(models.Model):
    """One email to one person, recorded (rendered) before it is sent.

    queued -> sent | failed_permanent. The send task locks the row, sends, and marks
    it sent in the same transaction, so a retry of a sent message is a no-op. The
    remaining at-least-once window: the SMTP server accepted the message but the
    worker died before the commit; the retry then sends it again, with the same
    Message-ID (receivers may collapse it)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent"
        FAILED_PERMANENT = "failed_permanent", "Failed permanently"

    dedup_key = models.CharField(max_length=200, unique=True)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    to = models.JSONField(default=list)
    subject = models.CharField(max_length=255)
    text_body = models.TextField()
    html_body = models.TextField()
    headers = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="queued"),
                name="email_delivery_queued_idx",
            )
        ]

    def __str__(self) -> str:
        return f"email {self.dedup_key} ({self.status})"
