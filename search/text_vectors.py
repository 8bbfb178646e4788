"""The stored text vector of each ticket (`tickets_ticket.search_text`), which triggers
keep up to date (search/migrations/0004). Writers that switch triggers off for speed
(COPY with `session_replication_role = replica`) refresh it themselves here."""

from collections.abc import Sequence

from django.db import connection

# Name prefix of the triggers that maintain the column.
SEARCH_TEXT_TRIGGERS = "search_text_"

_REFRESH_OF = """
UPDATE tickets_ticket t SET search_text = search_text_build(
    t.summary, t.description,
    (SELECT string_agg(c.body, ' ' ORDER BY c.id) FROM tickets_comment c
      WHERE c.ticket_id = t.id))
 WHERE t.id = ANY(%s::bigint[])
"""
# Every ticket: the comments grouped once and joined (a subquery per ticket would scan
# the comments once per ticket where their ticket index is missing, as during a seed).
_REFRESH_ALL = """
UPDATE tickets_ticket t SET search_text = search_text_build(t.summary, t.description, c.bodies)
  FROM tickets_ticket s
  LEFT JOIN (SELECT ticket_id, string_agg(body, ' ' ORDER BY id) AS bodies
               FROM tickets_comment GROUP BY ticket_id) c ON c.ticket_id = s.id
 WHERE s.id = t.id
"""


def search_text_refresh(ticket_ids: Sequence[int] | None) -> None:
    """Recompute the stored text vector of these tickets (None: of every ticket) of the
    current schema."""
    with connection.cursor() as cursor:
        if ticket_ids is None:
            cursor.execute(_REFRESH_ALL)
        else:
            cursor.execute(_REFRESH_OF, [list(ticket_ids)])


# Tickets per fill task: one UPDATE of this many rows (a few seconds at most).
FILL_BATCH = 5_000
# Tickets without a vector one sweep queues at most, per tenant.
SWEEP_MAX = 50_000


def search_text_unbuilt(limit: int = SWEEP_MAX) -> list[int]:
    """Ids of the current schema's tickets without a stored vector (at most `limit`,
    through the partial index of them): those whose fill task was lost after an import,
    and the few too big for one vector (computing theirs again leaves them without;
    they are searched the exact way)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM tickets_ticket WHERE search_text IS NULL ORDER BY id LIMIT %s",
            [limit],
        )
        return [row[0] for row in cursor.fetchall()]


def search_text_fill_later(schema_name: str, ticket_ids: Sequence[int]) -> None:
    """Queue the vectors of these tickets to be computed, in batches (after an import:
    computing them in its transaction cost a third of its time)."""
    from search.tasks import search_text_fill_task

    ids = sorted(ticket_ids)
    for start in range(0, len(ids), FILL_BATCH):
        search_text_fill_task.delay(schema_name, ids[start : start + FILL_BATCH])
