"""The stored text vector of each ticket (`tickets_ticket.search_text`), which triggers
keep up to date (search/migrations/0004). Writers that switch triggers off for speed
(COPY with `session_replication_role = replica`) refresh it themselves here."""

from collections.abc import Sequence

from django.db import connection

# Name prefix of the triggers that maintain the column.
SEARCH_TEXT_TRIGGERS = "search_text_"

_REFRESH = """
UPDATE tickets_ticket t SET search_text = search_text_build(
    t.summary, t.description,
    (SELECT string_agg(c.body, ' ' ORDER BY c.id) FROM tickets_comment c
      WHERE c.ticket_id = t.id))
 WHERE %s::bigint[] IS NULL OR t.id = ANY(%s::bigint[])
"""


def search_text_refresh(ticket_ids: Sequence[int] | None) -> None:
    """Recompute the stored text vector of these tickets (None: of every ticket) of the
    current schema."""
    ids = None if ticket_ids is None else list(ticket_ids)
    with connection.cursor() as cursor:
        cursor.execute(_REFRESH, [ids, ids])


# Tickets per fill task: one UPDATE of this many rows (a few seconds at most).
FILL_BATCH = 5_000


def search_text_fill_later(schema_name: str, ticket_ids: Sequence[int]) -> None:
    """Queue the vectors of these tickets to be computed, in batches (after an import:
    computing them in its transaction cost a third of its time)."""
    from search.tasks import search_text_fill_task

    ids = sorted(ticket_ids)
    for start in range(0, len(ids), FILL_BATCH):
        search_text_fill_task.delay(schema_name, ids[start : start + FILL_BATCH])
