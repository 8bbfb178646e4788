"""Publish events to the live connections of users and of project viewers."""

import logging
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from saas.tenancy import current_schema

logger = logging.getLogger(__name__)


def user_group(schema: str, user_id: int) -> str:
    return f"rt.{schema}.user.{user_id}"


def project_group(schema: str, project_id: int) -> str:
    return f"rt.{schema}.project.{project_id}"


def realtime_publish(
    *, event: dict[str, Any], user_ids: Iterable[int] = (), project_id: int | None = None
) -> None:
    """Send `event` to the live connections of `user_ids` and of everyone following
    `project_id`, in the current tenant. Call it after commit. Best effort: the data is
    in the database, so a push that fails is logged, never raised."""
    layer = get_channel_layer()
    if layer is None:
        return
    schema = current_schema()
    groups = [user_group(schema, uid) for uid in user_ids]
    if project_id is not None:
        groups.append(project_group(schema, project_id))
    message = {"type": "rt.event", "event": event}
    for group in groups:
        try:
            async_to_sync(layer.group_send)(group, message)
        except Exception:
            logger.exception("real-time push to %s failed", group)
