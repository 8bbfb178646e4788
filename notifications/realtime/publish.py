"""Publish events to the live connections of users and of project viewers.

Group names carry the tenant's schema (`rt.<schema>.user.<id>`,
`rt.<schema>.project.<id>`), so one channel layer and one prefix serve every tenant
and an event can never reach a socket of another workspace.
"""

import asyncio
import logging
import os
import threading
from collections.abc import Coroutine, Iterable
from typing import Any

from channels.layers import BaseChannelLayer, get_channel_layer

from saas.tenancy import current_schema

logger = logging.getLogger(__name__)

# The consumer method that receives these messages: LiveConsumer.rt_event.
MESSAGE_TYPE = "rt.event"
PUBLISH_TIMEOUT_SECONDS = 5.0


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
    realtime_send(schema=current_schema(), event=event, user_ids=user_ids, project_id=project_id)


def realtime_send(
    *,
    schema: str,
    event: dict[str, Any],
    user_ids: Iterable[int] = (),
    project_id: int | None = None,
) -> None:
    """`realtime_publish` for an explicit tenant (callbacks that run after the schema
    was switched back). Project messages carry the project id: a socket that follows
    only some tickets of the project filters on it."""
    layer = get_channel_layer()
    if layer is None:
        return
    messages: list[tuple[str, dict[str, Any]]] = [
        (user_group(schema, uid), {"type": MESSAGE_TYPE, "event": event})
        for uid in dict.fromkeys(user_ids)
    ]
    if project_id is not None:
        messages.append(
            (
                project_group(schema, project_id),
                {"type": MESSAGE_TYPE, "event": event, "project_id": project_id},
            )
        )
    if not messages:
        return
    try:
        publisher.run(_group_send_all(layer, messages), timeout=PUBLISH_TIMEOUT_SECONDS)
    except Exception:
        logger.exception("real-time push of %s failed", event.get("type"))


async def _group_send_all(
    layer: BaseChannelLayer, messages: list[tuple[str, dict[str, Any]]]
) -> None:
    for group, message in messages:
        try:
            await layer.group_send(group, message)  # type: ignore[attr-defined]
        except Exception:
            logger.exception("real-time push to %s failed", group)


class _Publisher:
    """One event loop per process, in a daemon thread, for pushes from synchronous code
    (Celery consumers, WSGI views). The channel layer keeps its Redis connections per
    event loop: `async_to_sync` would make a loop and a connection for every push
    (~30 ms each here, against ~2 ms per group on a kept loop). Made again after a fork
    (Celery's prefork pool), since threads do not survive it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if (
                self._loop is None
                or self._thread is None
                or self._pid != os.getpid()
                or not self._thread.is_alive()
            ):
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="realtime-publisher", daemon=True
                )
                thread.start()
                self._loop, self._thread, self._pid = loop, thread, os.getpid()
            return self._loop

    def run(self, coroutine: Coroutine[Any, Any, None], *, timeout: float) -> None:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop())
        try:
            future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise


publisher = _Publisher()
