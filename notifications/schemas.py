"""Schemas of the notifications API."""

from datetime import datetime
from typing import Any

from ninja import Field, Schema

from notifications.models import Digest, Kind


class NotificationOut(Schema):
    id: int
    kind: str = Field(description="assigned, mentioned, commented, status_changed, ...")
    title: str
    body: str
    url: str = Field(description="Path on this workspace's host, e.g. /browse/CORE-1.")
    ticket_key: str | None
    actor_id: int | None
    payload: dict[str, Any]
    created_at: datetime
    read_at: datetime | None
    read: bool

    @staticmethod
    def resolve_ticket_key(obj: Any) -> str | None:
        return obj.ticket_key or None

    @staticmethod
    def resolve_read(obj: Any) -> bool:
        return obj.read_at is not None


class NotificationFilters(Schema):
    unread: bool | None = Field(None, description="true: only unread; false: only read.")


class UnreadCountOut(Schema):
    count: int


class ReadAllOut(Schema):
    updated: int


class EventTypeSettingOut(Schema):
    event_type: Kind
    label: str
    in_app: bool
    email: bool


class NotificationSettingsOut(Schema):
    user_id: int
    digest: Digest = Field(description="How often emails leave: immediate, hourly, daily.")
    event_types: list[EventTypeSettingOut]


class EventTypeSettingIn(Schema):
    event_type: Kind
    in_app: bool | None = Field(None, description="Omitted: unchanged.")
    email: bool | None = Field(None, description="Omitted: unchanged.")


class NotificationSettingsIn(Schema):
    digest: Digest | None = Field(None, description="Omitted: unchanged.")
    event_types: list[EventTypeSettingIn] = Field(default_factory=list, max_length=50)


class UnsubscribeOut(Schema):
    user_id: int
    event_type: Kind
    email: bool
