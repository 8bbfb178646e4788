"""The JSON body of a webhook delivery, built once from an outbox event:

    {"id": <event UUID>, "type": "ticket.updated", "created_at": ..., "tenant": ...,
     "actor": {"id", "username", "display_name"} | null,
     "data": <the object as the API shows it>, "changes": <what the event recorded>}

`data` is the ticket as `GET /tickets/{id}` answers it (TicketOut) for ticket events;
for comments the comment (CommentOut) with its `ticket`; objects deleted by the time
the event is handled are named by id/key only.
"""

import uuid
from typing import Any

from django_tenants.utils import get_tenant_model

from accounts.models import User
from eventlog.models import OutboxEvent
from saas.refs import db_id_or_none
from saas.tenancy import current_schema
from tickets.content_schemas import AttachmentOut, CommentOut
from tickets.models import Attachment, Comment, Sprint, Ticket
from tickets.schemas import TicketOut, UserRef
from tickets.selectors import tickets_by_ids

# Event kinds an endpoint may subscribe to (also as "<prefix>.*", or "*" for all).
WEBHOOK_EVENT_TYPES = (
    "ticket.created",
    "ticket.updated",
    "ticket.transitioned",
    "ticket.deleted",
    "ticket.linked",
    "ticket.unlinked",
    "ticket.watcher_added",
    "ticket.watcher_removed",
    "comment.created",
    "comment.updated",
    "comment.deleted",
    "attachment.created",
    "attachment.deleted",
    "sprint.created",
    "sprint.updated",
    "sprint.started",
    "sprint.completed",
    "sprint.deleted",
    "project.deleted",
)
PING = "ping"
# Internal bookkeeping of the event that receivers have no use for.
_PRIVATE_KEYS = frozenset({"storage_keys", "storage_key"})
_EVENT_NAMESPACE = uuid.UUID("5d7f6f0e-4c1a-4d63-9c55-2f1f0b8f7a10")


def webhook_event_id(*, schema_name: str, outbox_event_id: int) -> uuid.UUID:
    """Stable per tenant and event: every endpoint and redelivery carries the same id."""
    return uuid.uuid5(_EVENT_NAMESPACE, f"{schema_name}:{outbox_event_id}")


def event_type_matches(subscribed: list[str], kind: str) -> bool:
    prefix = kind.split(".", 1)[0]
    return any(item in ("*", kind, f"{prefix}.*") for item in subscribed)


def event_ticket_id(event: OutboxEvent) -> int | None:
    """The id of the ticket an event is about (None when it is not about one)."""
    if event.aggregate_type != "ticket":
        return None
    pk = db_id_or_none(event.aggregate_id)
    if pk is not None:
        return pk
    return Ticket.objects.filter(key=event.aggregate_id).values_list("pk", flat=True).first()


def _dump(schema: Any, obj: Any) -> dict[str, Any]:
    return schema.from_orm(obj).model_dump(mode="json")


def _ticket(ticket_id: int | None, event: OutboxEvent) -> dict[str, Any]:
    found = tickets_by_ids([ticket_id]) if ticket_id else []
    ticket = found[0] if found else None
    if ticket is None:  # deleted since
        return {"id": ticket_id, "key": event.payload.get("key"), "deleted": True}
    return _dump(TicketOut, ticket)


def _comment(event: OutboxEvent, ticket: dict[str, Any]) -> dict[str, Any]:
    comment_id = event.payload.get("comment_id")
    comment = Comment.objects.select_related("author").filter(pk=comment_id).first()
    if comment is None or event.kind == "comment.deleted":
        return {"id": comment_id, "deleted": True, "ticket": ticket}
    return {**_dump(CommentOut, comment), "ticket": ticket}


def _attachments(event: OutboxEvent, ticket: dict[str, Any]) -> dict[str, Any]:
    ids = [a["id"] for a in event.payload.get("attachments", [])]
    if event.kind == "attachment.deleted":
        return {
            "attachments": [{"id": event.payload.get("attachment_id"), "deleted": True}],
            "ticket": ticket,
        }
    found = Attachment.objects.select_related("uploader").filter(pk__in=ids).order_by("id")
    return {"attachments": [_dump(AttachmentOut, a) for a in found], "ticket": ticket}


def _sprint(event: OutboxEvent) -> dict[str, Any]:
    sprint = (
        Sprint.objects.select_related("project")
        .filter(pk=db_id_or_none(event.aggregate_id) or 0)
        .first()
    )
    if sprint is None:
        return {"id": db_id_or_none(event.aggregate_id), "deleted": True}
    return {
        "id": sprint.pk,
        "name": sprint.name,
        "goal": sprint.goal,
        "state": sprint.state,
        "start_at": sprint.start_at.isoformat() if sprint.start_at else None,
        "end_at": sprint.end_at.isoformat() if sprint.end_at else None,
        "completed_at": sprint.completed_at.isoformat() if sprint.completed_at else None,
        "project": {"id": sprint.project_id, "key": sprint.project.key},
    }


def event_data(event: OutboxEvent) -> dict[str, Any]:
    """The object the event is about, as the API would show it now."""
    if event.aggregate_type == "ticket":
        ticket_id = event_ticket_id(event)
        ticket = (
            _ticket(ticket_id, event)
            if event.kind != "ticket.deleted"
            else {
                "id": ticket_id or db_id_or_none(event.aggregate_id),
                "key": event.payload.get("key"),
                "deleted": True,
            }
        )
        if event.kind.startswith("comment."):
            return _comment(event, ticket)
        if event.kind.startswith("attachment."):
            return _attachments(event, ticket)
        return ticket
    if event.kind.startswith("sprint."):
        return _sprint(event)
    return {"type": event.aggregate_type, "id": event.aggregate_id}


def _actor(actor_id: int | None) -> dict[str, Any] | None:
    user = User.objects.filter(pk=actor_id).first() if actor_id else None
    return _dump(UserRef, user) if user else None


def _tenant(tenant: Any) -> dict[str, Any]:
    # Tasks run under schema_context, whose connection.tenant carries only the schema:
    # callers pass the Tenant row.
    return {
        "schema": current_schema(),
        "subdomain": getattr(tenant, "subdomain", None),
        "name": getattr(tenant, "name", None),
    }


def event_body(event: OutboxEvent, *, event_id: uuid.UUID, tenant: Any) -> dict[str, Any]:
    return {
        "id": str(event_id),
        "type": event.kind,
        "created_at": event.created_at.isoformat(),
        "tenant": _tenant(tenant),
        "actor": _actor(event.actor_id),
        "data": event_data(event),
        "changes": {k: v for k, v in event.payload.items() if k not in _PRIVATE_KEYS},
    }


def ping_body(*, event_id: uuid.UUID, at: str, endpoint_id: int) -> dict[str, Any]:
    tenant = get_tenant_model().objects.filter(schema_name=current_schema()).first()
    return {
        "id": str(event_id),
        "type": PING,
        "created_at": at,
        "tenant": _tenant(tenant),
        "actor": None,
        "data": {"webhook_id": endpoint_id, "zen": "Keep it logically awesome."},
        "changes": {},
    }
