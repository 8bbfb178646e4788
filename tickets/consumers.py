"""Outbox consumers of the tickets app (side effects after commit, idempotent)."""

from eventlog.models import OutboxEvent
from eventlog.outbox import outbox_consumer
from tickets.storage import attachment_object_delete, attachment_storage


@outbox_consumer("ticket.deleted", "project.deleted")
def stored_files_delete(event: OutboxEvent) -> None:
    """Remove the attachment files of deleted tickets; deleting twice is harmless."""
    keys = event.payload.get("storage_keys") or []
    if keys:
        storage = attachment_storage()
        for key in keys:
            attachment_object_delete(storage=storage, key=key)
