"""The live connection: `/ws/live` on a workspace's host.

Protocol (JSON text frames):
- the server accepts, admits the caller, and sends `{"type": "welcome", "user": {"id"}}`;
  a refused connection is closed with 4000 + the HTTP status of the reason (4400 bad
  host, 4401 not authenticated, 4403 suspended workspace or foreign origin, 4404 no
  workspace, 4429 rate limited), the error code as the close reason;
- the client sends `{"subscribe": {"project": "<key or id>"}}`,
  `{"subscribe": {"ticket": "<key or id>"}}`, the same with `unsubscribe`,
  `{"ping": <anything>}` and `{"authenticate": "<fresh token>"}`; an optional `"ref"` is
  echoed in the answer;
- the server pushes events: the member's own (notifications) and ticket/comment
  changes of what they follow, `{"type", "id", "ticket": {"id", "key", "version"},
  "fields", "actor", "at"}`, and `project.updated` / `project.deleted` of followed
  projects; errors are `{"type": "error", "error": {...}}`.

Access is checked on every subscription, and again (the credential and every followed
project and ticket) before delivering once `REALTIME_RECHECK_SECONDS` have passed since
the last check: a member who lost access stops receiving and is told so.
"""

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from notifications.realtime import admission
from notifications.realtime.admission import LiveIdentity
from notifications.realtime.publish import project_group, user_group
from saas.errors import ApiError, BadRequest, Invalid, RateLimited, error_body

logger = logging.getLogger(__name__)

MAX_FRAME_CHARS = 4096
MAX_SUBSCRIPTIONS = 200
FRAMES_PER_WINDOW = 60
FRAME_WINDOW_SECONDS = 10.0
CLOSE_INTERNAL_ERROR = 1011


def close_code_for(error: ApiError) -> int:
    return 4000 + error.status


class LiveConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    identity: LiveIdentity | None = None

    async def connect(self) -> None:
        self.identity = None
        self.projects: dict[int, str] = {}  # followed projects: id -> key
        self.tickets: dict[int, tuple[str, int]] = {}  # followed tickets: id -> (key, project)
        self.joined: set[str] = set()
        self.checked_at = 0.0
        self.window_start, self.window_frames = time.monotonic(), 0
        credential = admission.credential_from_scope(self.scope)
        # Accept first: a refusal before accepting reaches a browser as a bare failed
        # handshake, while a close code tells the client why (and whether to retry).
        from_subprotocol = credential is not None and credential.source == "subprotocol"
        await self.accept(admission.BEARER_SUBPROTOCOL if from_subprotocol else None)
        if self.channel_layer is None:
            await self.close(code=CLOSE_INTERNAL_ERROR)
            return
        try:
            identity = await database_sync_to_async(admission.live_admit)(
                host=admission.scope_header(self.scope, b"host"),
                origin=admission.scope_header(self.scope, b"origin"),
                credential=credential,
            )
        except ApiError as error:
            await self.close(code=close_code_for(error), reason=error.code)
            return
        self.identity = identity
        self.checked_at = time.monotonic()
        await self.group_join(user_group(identity.schema, identity.user_id))
        await self.send_json({"type": "welcome", "user": {"id": identity.user_id}})

    async def disconnect(self, code: int) -> None:
        for group in list(self.joined):
            await self.group_leave(group)

    # ------------------------------------------------------------------ client frames

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.identity is None:
            return
        ref = None
        try:
            self.frame_count()
            content = self.frame_parse(text_data)
            ref = content.get("ref")
            await self.frame_handle(content, ref)
        except ApiError as error:
            if error.status == 401:
                self.identity = None  # deliver nothing more while closing
                await self.close(code=close_code_for(error), reason=error.code)
                return
            frame = {
                "type": "error",
                **error_body(error.status, error.message, code=error.code, details=error.details),
            }
            if ref is not None:
                frame["ref"] = ref
            await self.send_json(frame)

    def frame_count(self) -> None:
        now = time.monotonic()
        if now - self.window_start > FRAME_WINDOW_SECONDS:
            self.window_start, self.window_frames = now, 0
        self.window_frames += 1
        if self.window_frames > FRAMES_PER_WINDOW:
            retry_after = int(FRAME_WINDOW_SECONDS - (now - self.window_start)) + 1
            raise RateLimited(
                "Too many messages on this connection; slow down.",
                retry_after=retry_after,
                details={"retry_after": retry_after},
            )

    @staticmethod
    def frame_parse(text_data: str | None) -> dict[str, Any]:
        if text_data is None:
            raise BadRequest("Send JSON text frames.")
        if len(text_data) > MAX_FRAME_CHARS:
            raise BadRequest(f"Frames are limited to {MAX_FRAME_CHARS} characters.")
        try:
            content = json.loads(text_data)
        except ValueError as exc:
            raise BadRequest("The frame is not valid JSON.") from exc
        if not isinstance(content, dict):
            raise BadRequest("Send a JSON object.")
        return content

    async def frame_handle(self, content: dict[str, Any], ref: Any) -> None:
        handlers: dict[str, Callable[[Any], Awaitable[dict[str, Any]]]] = {
            "subscribe": self.subscribe,
            "unsubscribe": self.unsubscribe,
            "ping": self.ping,
            "authenticate": self.authenticate,
        }
        actions = [name for name in handlers if name in content]
        if len(actions) != 1:
            raise BadRequest(
                "Send exactly one of: " + ", ".join(handlers) + ".",
                details={"allowed": list(handlers)},
            )
        answer = await handlers[actions[0]](content[actions[0]])
        if ref is not None:
            answer["ref"] = ref
        await self.send_json(answer)

    @staticmethod
    def target_of(value: Any) -> tuple[str, str]:
        if isinstance(value, dict) and len(value) == 1:
            ((kind, ref),) = value.items()
            if kind in {"project", "ticket"} and isinstance(ref, str | int) and str(ref).strip():
                return kind, str(ref).strip()
        raise BadRequest(
            'Name one target: {"project": "<key or id>"} or {"ticket": "<key or id>"}.'
        )

    async def subscribe(self, value: Any) -> dict[str, Any]:
        kind, ref = self.target_of(value)
        identity = self.identity_required()
        if len(self.projects) + len(self.tickets) >= MAX_SUBSCRIPTIONS:
            raise Invalid(
                f"A connection follows at most {MAX_SUBSCRIPTIONS} projects and tickets.",
                code="too_many_subscriptions",
            )
        if kind == "project":
            project_id, key = await database_sync_to_async(admission.live_project_resolve)(
                identity=identity, ref=ref
            )
            self.projects[project_id] = key
            await self.group_join(project_group(identity.schema, project_id))
            return {"type": "subscribed", "project": {"id": project_id, "key": key}}
        ticket_id, key, project_id = await database_sync_to_async(admission.live_ticket_resolve)(
            identity=identity, ref=ref
        )
        self.tickets[ticket_id] = (key, project_id)
        await self.group_join(project_group(identity.schema, project_id))
        return {"type": "subscribed", "ticket": {"id": ticket_id, "key": key}}

    async def unsubscribe(self, value: Any) -> dict[str, Any]:
        """Idempotent; matches what the subscription answered (id or key)."""
        kind, ref = self.target_of(value)
        if kind == "project":
            for project_id, key in list(self.projects.items()):
                if ref.upper() in {str(project_id), key}:
                    del self.projects[project_id]
                    await self.project_groups_sync()
                    return {"type": "unsubscribed", "project": {"id": project_id, "key": key}}
            return {"type": "unsubscribed", "project": {"ref": ref}}
        for ticket_id, (key, _project_id) in list(self.tickets.items()):
            if ref.upper() in {str(ticket_id), key}:
                del self.tickets[ticket_id]
                await self.project_groups_sync()
                return {"type": "unsubscribed", "ticket": {"id": ticket_id, "key": key}}
        return {"type": "unsubscribed", "ticket": {"ref": ref}}

    async def ping(self, value: Any) -> dict[str, Any]:
        return {"type": "pong", "ping": value}

    async def authenticate(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, str) or not value:
            raise BadRequest("Send a fresh access token or API token.")
        self.identity = await database_sync_to_async(admission.live_reauthenticate)(
            identity=self.identity_required(), token=value
        )
        self.checked_at = time.monotonic()
        return {"type": "authenticated", "user": {"id": self.identity.user_id}}

    # ------------------------------------------------------------------ server events

    async def rt_event(self, message: dict[str, Any]) -> None:
        """An event for one of our groups. Project messages reach every socket of the
        project's group; we pass on those about what this socket follows."""
        if self.identity is None:
            return
        event = message["event"]
        kind = str(event.get("type", ""))
        project_id = message.get("project_id")
        if kind == "project.deleted" and project_id is not None:
            # followers learn it (they saw the project when they subscribed), then the
            # subscriptions go: nothing is left to re-check
            if not await self.project_forget(project_id):
                return
        elif kind.startswith("project."):
            self.checked_at = 0.0  # it may have turned private: re-check right now
        if not await self.access_fresh():
            return
        if project_id is not None and kind != "project.deleted":
            ticket_id = (event.get("ticket") or {}).get("id")
            if project_id not in self.projects and ticket_id not in self.tickets:
                return
            if kind == "ticket.deleted" and ticket_id in self.tickets:
                del self.tickets[ticket_id]
                await self.project_groups_sync()
        await self.send_json(event)

    async def project_forget(self, project_id: int) -> bool:
        """Drop the project and its tickets from what we follow; False if we followed
        neither."""
        tickets = [tid for tid, (_key, pid) in self.tickets.items() if pid == project_id]
        if project_id not in self.projects and not tickets:
            return False
        self.projects.pop(project_id, None)
        for ticket_id in tickets:
            del self.tickets[ticket_id]
        await self.project_groups_sync()
        return True

    async def access_fresh(self) -> bool:
        """Re-check the credential and the subscriptions when the last check is older
        than REALTIME_RECHECK_SECONDS; False (and the socket closed) when the member
        may no longer connect."""
        if time.monotonic() - self.checked_at < settings.REALTIME_RECHECK_SECONDS:
            return True
        identity = self.identity_required()
        try:
            projects, tickets = await database_sync_to_async(admission.live_recheck)(
                identity=identity, project_ids=set(self.projects), ticket_ids=set(self.tickets)
            )
        except ApiError as error:
            self.identity = None
            await self.close(code=close_code_for(error), reason=error.code)
            return False
        self.checked_at = time.monotonic()
        for project_id in set(self.projects) - projects:
            key = self.projects.pop(project_id)
            await self.send_revoked({"project": {"id": project_id, "key": key}})
        for ticket_id in set(self.tickets) - tickets:
            key, _ = self.tickets.pop(ticket_id)
            await self.send_revoked({"ticket": {"id": ticket_id, "key": key}})
        await self.project_groups_sync()
        # Adding again refreshes the layer's group expiry for long-lived sockets.
        for group in list(self.joined):
            await self.channel_layer.group_add(group, self.channel_name)
        return True

    async def send_revoked(self, target: dict[str, Any]) -> None:
        await self.send_json(
            {
                "type": "subscription.revoked",
                **target,
                **error_body(404, "You can no longer see this.", code="not_visible"),
            }
        )

    # ------------------------------------------------------------------ groups

    def identity_required(self) -> LiveIdentity:
        assert self.identity is not None
        return self.identity

    async def group_join(self, group: str) -> None:
        await self.channel_layer.group_add(group, self.channel_name)
        self.joined.add(group)

    async def group_leave(self, group: str) -> None:
        await self.channel_layer.group_discard(group, self.channel_name)
        self.joined.discard(group)

    async def project_groups_sync(self) -> None:
        """Be in exactly the groups of the followed projects and tickets' projects."""
        identity = self.identity_required()
        wanted = {project_group(identity.schema, pid) for pid in self.projects} | {
            project_group(identity.schema, pid) for _key, pid in self.tickets.values()
        }
        prefix = project_group(identity.schema, 0)[:-1]
        for group in {g for g in self.joined if g.startswith(prefix)} - wanted:
            await self.group_leave(group)
        for group in wanted - self.joined:
            await self.group_join(group)


class NotFoundConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """Any other WebSocket path: close with 4404 rather than fail the handshake."""

    async def connect(self) -> None:
        await self.accept()
        await self.close(code=4404, reason="not_found")
