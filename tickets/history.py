"""Field-level change records for tickets (see TicketHistory)."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from tickets.models import Ticket, TicketHistory


@dataclass(frozen=True)
class FieldChange:
    field: str
    from_value: str | None
    to_value: str | None
    from_ref: int | None = None
    to_ref: int | None = None


def history_record(
    *, ticket: Ticket, actor: object, changes: Iterable[FieldChange], at: datetime | None = None
) -> list[TicketHistory]:
    user = getattr(actor, "user", actor)
    when = at or timezone.now()
    return TicketHistory.objects.bulk_create(
        TicketHistory(
            ticket=ticket,
            actor_id=getattr(user, "pk", None),
            field=change.field,
            from_value=change.from_value,
            to_value=change.to_value,
            from_ref=change.from_ref,
            to_ref=change.to_ref,
            created_at=when,
        )
        for change in changes
    )


def changes_as_audit(changes: Iterable[FieldChange]) -> dict[str, list[str | None]]:
    return {c.field: [c.from_value, c.to_value] for c in changes}
