"""Ticket, comment and project changes, pushed live to the sockets that follow the project.

An outbox consumer (at least once, inside the dispatch transaction): the push is
scheduled for after that transaction commits, so an event whose dispatch rolls back is
pushed when it is retried, not before. The message is compact: viewers re-fetch the
details through the API, which applies their permissions, so nothing beyond the
ticket's id, key and version and the names of the changed fields crosses the socket.
"""

from typing import Any

from django.db import transaction

from eventlog.models import OutboxEvent
from eventlog.outbox import outbox_consumer
from notifications.realtime.publish import realtime_send
from saas.tenancy import current_schema
from tickets.models import Project, Ticket

TICKET_KINDS = ("ticket.created", "ticket.updated", "ticket.transitioned", "ticket.deleted")
COMMENT_KINDS = ("comment.created", "comment.updated", "comment.deleted")
PROJECT_KINDS = ("project.updated", "project.deleted")


def ticket_event_fields(event: OutboxEvent) -> list[str]:
    if event.kind == "ticket.updated":
        return [str(field) for field in event.payload.get("fields", [])]
    if event.kind == "ticket.transitioned":
        return ["status"]
    if event.kind.startswith("comment."):
        return ["comments"]
    return []


def ticket_event_message(event: OutboxEvent) -> tuple[int, dict[str, Any]] | None:
    """(project id, live message) for a ticket or comment event; None when the project
    is gone too (nobody can follow it any more)."""
    if not event.aggregate_id.isdigit():
        return None
    key = str(event.payload.get("key", ""))
    ticket = (
        Ticket.objects.filter(pk=int(event.aggregate_id))
        .values("pk", "key", "version", "project_id")
        .first()
    )
    project_id: int | None
    if ticket is not None:
        project_id, key, version = ticket["project_id"], ticket["key"], ticket["version"]
    else:  # deleted: the key still names its project
        project_id = (
            Project.objects.filter(key=key.rpartition("-")[0]).values_list("pk", flat=True).first()
        )
        version = None
        if project_id is None:
            return None
    message: dict[str, Any] = {
        "type": event.kind,
        "id": event.pk,
        "ticket": {
            "id": int(event.aggregate_id),
            "key": key,
            # the version this change produced when the event says so, else the latest
            "version": event.payload.get("version", version),
        },
        "fields": ticket_event_fields(event),
        "actor": event.actor_id,
        "at": event.created_at.isoformat(),
    }
    if "comment_id" in event.payload:
        message["comment"] = {"id": event.payload["comment_id"]}
    return project_id, message


def project_event_message(event: OutboxEvent) -> tuple[int, dict[str, Any]] | None:
    """A project's own change: followers re-read it, and their connections re-check
    access at once (the project may have turned private)."""
    if not event.aggregate_id.isdigit():
        return None
    project_id = int(event.aggregate_id)
    return project_id, {
        "type": event.kind,
        "id": event.pk,
        "project": {"id": project_id, "key": str(event.payload.get("key", ""))},
        "fields": [str(field) for field in event.payload.get("fields", [])],
        "actor": event.actor_id,
        "at": event.created_at.isoformat(),
    }


@outbox_consumer(*TICKET_KINDS, *COMMENT_KINDS, *PROJECT_KINDS)
def ticket_event_push(event: OutboxEvent) -> None:
    built = (
        project_event_message(event) if event.kind in PROJECT_KINDS else ticket_event_message(event)
    )
    if built is None:
        return
    project_id, message = built
    schema = current_schema()
    transaction.on_commit(
        lambda: realtime_send(schema=schema, event=message, project_id=project_id)
    )
