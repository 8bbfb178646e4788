"""Notification preferences: per event type and channel (no row: on) and the email
digest frequency (no row: immediately)."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core import signing
from django.db import transaction

from accounts.members.models import Membership
from eventlog.record import change_record
from notifications.models import Channel, Digest, EmailDigestSetting, Kind, NotificationSetting
from saas.errors import Invalid, NotFound
from saas.tenancy import current_schema

UNSUBSCRIBE_SALT = "notifications.unsubscribe"


@dataclass(frozen=True)
class Preference:
    in_app: bool
    email: bool
    digest: str


def event_type_of(kind: str) -> str:
    """The preference bucket of a notification kind: unknown kinds (from
    `notification_send`) are workspace announcements."""
    return kind if kind in Kind.values else Kind.SYSTEM


def preferences_for(*, user_ids: Iterable[int], kind: str) -> dict[int, Preference]:
    """Each user's channels for `kind` (two queries however many users)."""
    ids = list(user_ids)
    event_type = event_type_of(kind)
    switches = {
        (row.user_id, row.channel): row.enabled
        for row in NotificationSetting.objects.filter(user_id__in=ids, event_type=event_type)
    }
    digests = dict(
        EmailDigestSetting.objects.filter(user_id__in=ids).values_list("user_id", "frequency")
    )
    return {
        uid: Preference(
            in_app=switches.get((uid, Channel.IN_APP), True),
            email=switches.get((uid, Channel.EMAIL), True),
            digest=digests.get(uid, Digest.IMMEDIATE),
        )
        for uid in ids
    }


def notification_settings_get(*, user_id: int) -> dict[str, Any]:
    """Every event type with both channels, and the digest frequency."""
    switches = {
        (row.event_type, row.channel): row.enabled
        for row in NotificationSetting.objects.filter(user_id=user_id)
    }
    digest = (
        EmailDigestSetting.objects.filter(user_id=user_id)
        .values_list("frequency", flat=True)
        .first()
    )
    return {
        "user_id": user_id,
        "digest": digest or Digest.IMMEDIATE,
        "event_types": [
            {
                "event_type": kind.value,
                "label": kind.label,
                "in_app": switches.get((kind.value, Channel.IN_APP), True),
                "email": switches.get((kind.value, Channel.EMAIL), True),
            }
            for kind in Kind
        ],
    }


def _switch_set(*, user_id: int, event_type: str, channel: str, enabled: bool) -> bool:
    """Set one switch; True when it changed."""
    current = (
        NotificationSetting.objects.filter(user_id=user_id, event_type=event_type, channel=channel)
        .values_list("enabled", flat=True)
        .first()
    )
    if (True if current is None else current) == enabled:
        return False
    NotificationSetting.objects.update_or_create(
        user_id=user_id, event_type=event_type, channel=channel, defaults={"enabled": enabled}
    )
    return True


@transaction.atomic
def notification_settings_update(
    *,
    member: Membership,
    actor: Membership | None,
    digest: str | None = None,
    event_types: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Change some switches (`{"event_type", "in_app"?, "email"?}`; omitted channels
    stay) and/or the digest frequency. Unknown event types answer 422, nothing changed."""
    entries = list(event_types)
    unknown = sorted({str(e["event_type"]) for e in entries} - set(Kind.values))
    if unknown:
        raise Invalid(
            f"Unknown event types: {', '.join(unknown)}.",
            details=[
                {"field": "event_types", "message": f"unknown event type {u}"} for u in unknown
            ],
        )
    user_id = member.user_id
    changes: dict[str, list[Any]] = {}
    for entry in entries:
        for channel in Channel.values:
            value = entry.get(channel)
            if value is None:
                continue
            if _switch_set(
                user_id=user_id, event_type=entry["event_type"], channel=channel, enabled=value
            ):
                changes[f"{entry['event_type']}.{channel}"] = [not value, value]
    if digest is not None:
        row, _ = EmailDigestSetting.objects.select_for_update().get_or_create(user_id=user_id)
        if row.frequency != digest:
            changes["digest"] = [row.frequency, digest]
            row.frequency = digest
            row.save(update_fields=["frequency"])
    if changes:
        change_record(
            "notification_settings.updated",
            actor=actor,
            target_type="user",
            target_id=user_id,
            changes=changes,
            payload={"user_id": user_id, "changes": sorted(changes)},
        )
    return notification_settings_get(user_id=user_id)


def unsubscribe_token(*, user_id: int, event_type: str) -> str:
    """A signed, tenant-bound token that turns one event type's email off."""
    return signing.dumps(
        {"s": current_schema(), "u": user_id, "e": event_type}, salt=UNSUBSCRIBE_SALT, compress=True
    )


def email_unsubscribe(*, token: str) -> dict[str, Any]:
    """Turn off the email of the event type the token names. Tokens of another
    workspace, forged ones and ones of people no longer members answer 404."""
    try:
        claims = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        raise NotFound("This unsubscribe link is not valid.", code="unsubscribe_invalid") from None
    if not isinstance(claims, dict) or claims.get("s") != current_schema():
        raise NotFound("This unsubscribe link is not valid.", code="unsubscribe_invalid")
    user_id = claims.get("u")
    member = (
        Membership.objects.filter(user_id=user_id).first() if isinstance(user_id, int) else None
    )
    if member is None or claims.get("e") not in Kind.values:
        raise NotFound("This unsubscribe link is not valid.", code="unsubscribe_invalid")
    notification_settings_update(
        member=member,
        actor=None,
        event_types=[{"event_type": claims["e"], Channel.EMAIL: False}],
    )
    return {"user_id": member.user_id, "event_type": claims["e"], "email": False}
