"""Outbox consumers that keep the tenant's index in step with Postgres.

Each consumer works out which tickets an event touched and enqueues (on commit) one
`search_index_tickets` task that reloads them from Postgres: the event only says
*which* tickets, never *what* they look like, so replays and reordering are harmless.
Nothing at all happens for a tenant that searches on Postgres.
"""

from typing import Any

from django.db import transaction

from eventlog.models import OutboxEvent
from eventlog.outbox import outbox_consumer
from saas.refs import is_digits
from saas.tenancy import current_schema
from search.engine.backend import search_backend_name
from search.engine.client import POSTGRES
from tickets.models import Ticket

TICKET_EVENTS = (
    "ticket.created",
    "ticket.updated",
    "ticket.transitioned",
    "ticket.deleted",
    "ticket.linked",
    "ticket.unlinked",
    "ticket.watcher_added",
    "ticket.watcher_removed",
    "ticket.bulk_changed",
    "comment.created",
    "comment.updated",
    "comment.deleted",
    "attachment.created",
    "attachment.deleted",
    "workflow.tickets_migrated",
)


def event_ticket_ids(event: OutboxEvent) -> list[int]:
    """The tickets an event is about: its aggregate when that is a ticket id, the
    tickets its payload names by key (`key`, `source`, `target`) or by id."""
    payload = event.payload or {}
    ids: set[int] = set()
    if event.aggregate_type == "ticket" and is_digits(event.aggregate_id):
        ids.add(int(event.aggregate_id))
    keys = [payload[name] for name in ("key", "source", "target") if payload.get(name)]
    if event.aggregate_type == "ticket" and not is_digits(event.aggregate_id):
        keys.append(event.aggregate_id)
    if keys:
        ids.update(Ticket.objects.filter(key__in=keys).values_list("pk", flat=True))
    ids.update(int(pk) for pk in payload.get("ticket_ids") or [] if str(pk).isdigit())
    return sorted(ids)


def _enqueue_index(**kwargs: object) -> None:
    from search.tasks import search_index_tickets_task

    schema = current_schema()
    transaction.on_commit(lambda: search_index_tickets_task.delay(schema, **kwargs))


@outbox_consumer(*TICKET_EVENTS)
def search_index_on_ticket_event(event: OutboxEvent) -> None:
    """Reindex the tickets of a ticket, comment, attachment, link or watcher event;
    a deleted ticket's document (and its subtasks') is removed."""
    if search_backend_name() == POSTGRES:
        return
    ids = event_ticket_ids(event)
    deleted_keys = []
    if event.kind == "ticket.deleted":
        deleted_keys = [str(k) for k in (event.payload or {}).get("subtasks") or []]
    if ids or deleted_keys:
        _enqueue_index(ticket_ids=ids, deleted_keys=deleted_keys)


@outbox_consumer("sprint.updated", "sprint.deleted", "sprint.started", "sprint.completed")
def search_index_on_sprint_event(event: OutboxEvent) -> None:
    """Sprint dates and order sort tickets: reindex the sprint's tickets (those the
    index holds in it too, for a deleted sprint that Postgres no longer links)."""
    if search_backend_name() == POSTGRES:
        return
    payload = event.payload or {}
    ids = event_ticket_ids(event)
    sprint = payload.get("sprint_id") or (
        int(event.aggregate_id)
        if event.aggregate_type == "sprint" and is_digits(event.aggregate_id)
        else None
    )
    if sprint:
        ids = sorted({*ids, *Ticket.objects.filter(sprint_id=sprint).values_list("pk", flat=True)})
    _enqueue_index(ticket_ids=ids, sprint_ids=[int(sprint)] if sprint else [])


@outbox_consumer("project.deleted")
def search_index_on_project_deleted(event: OutboxEvent) -> None:
    """The project's tickets are gone: delete their documents."""
    if search_backend_name() == POSTGRES:
        return
    ref = event.aggregate_id
    if is_digits(ref):
        _enqueue_index(project_ids=[int(ref)])
    else:
        _enqueue_index(project_keys=[ref])


@outbox_consumer("project.updated")
def search_index_on_project_updated(event: OutboxEvent) -> None:
    """A new project key renames every ticket key: reindex the project's tickets."""
    fields = (event.payload or {}).get("fields") or []
    if "key" not in fields or search_backend_name() == POSTGRES:
        return
    ref = event.aggregate_id
    lookup: dict[str, Any] = {"project_id": int(ref)} if is_digits(ref) else {"project__key": ref}
    tickets = Ticket.objects.filter(**lookup)
    ids = tickets.values_list("pk", flat=True)
    _enqueue_index(ticket_ids=list(ids))


@outbox_consumer("import.completed")
def search_index_on_import(event: OutboxEvent) -> None:
    """An import writes tickets without one event each: reconcile the whole tenant."""
    if search_backend_name() == POSTGRES:
        return
    from search.tasks import search_reconcile_task

    schema = current_schema()
    transaction.on_commit(lambda: search_reconcile_task.delay(schema))
