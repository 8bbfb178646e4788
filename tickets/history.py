"""Field-level change records for tickets (see TicketHistory)."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
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


# Name prefix of the triggers that keep TicketHistory.until (tickets/migrations/0007).
HISTORY_UNTIL_TRIGGERS = "history_until_"

_UNTIL_ALL = """
UPDATE tickets_tickethistory h SET until = n.next_at
  FROM (SELECT id, lead(created_at) OVER (PARTITION BY ticket_id, field
                                          ORDER BY created_at, id) AS next_at
          FROM tickets_tickethistory) n
 WHERE h.id = n.id AND h.until IS DISTINCT FROM n.next_at
"""
_UNTIL_OF = """
UPDATE tickets_tickethistory h SET until = n.next_at
  FROM unnest(%s::bigint[]) AS c(ticket_id),
       LATERAL (SELECT id, lead(created_at) OVER (PARTITION BY field
                                                  ORDER BY created_at, id) AS next_at
                  FROM tickets_tickethistory WHERE ticket_id = c.ticket_id) n
 WHERE h.id = n.id AND h.until IS DISTINCT FROM n.next_at
"""


def history_until_refresh(ticket_ids: Sequence[int] | None) -> None:
    """Recompute `until` of these tickets' history (None: of every ticket), for writers
    that COPY with triggers off."""
    with connection.cursor() as cursor:
        if ticket_ids is None:
            cursor.execute(_UNTIL_ALL)
        else:
            cursor.execute(_UNTIL_OF, [sorted(set(ticket_ids))])
