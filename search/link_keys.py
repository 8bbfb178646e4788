"""The sort keys of a ticket copied onto its component and fix-version links
(`ticket_created_at`, `ticket_updated_at`; search/migrations/0006), which triggers keep
equal to the ticket's. Writers that switch triggers off for speed (COPY with
`session_replication_role = replica`, as the importer does) fill them here, or write
them in their COPY (bench/seed_big.py).

With them, the links of a component or a version are indexed in the ticket's order, so
`fixVersion in (...) ORDER BY updated DESC` (and the default order, created) walks the
links of those versions newest first and stops after a page (search.jql.LinkWalk),
instead of sorting every ticket of the versions: a release's tickets are old, so a walk
of the tickets' own date index passes every newer ticket first."""

from collections.abc import Sequence

from django.db import connection

# Name prefix of the triggers that maintain the columns.
LINK_KEYS_TRIGGERS = "search_link_keys_"
# The link tables and their catalogue column.
LINK_TABLES = (
    ("tickets_ticket_components", "component_id"),
    ("tickets_ticket_fix_versions", "version_id"),
)

# A ticket's dates as its links carry them.
LINK_KEYS = {"created_at": "ticket_created_at", "updated_at": "ticket_updated_at"}

_REFRESH = """
UPDATE {table} l SET ticket_created_at = t.created_at, ticket_updated_at = t.updated_at
  FROM tickets_ticket t
 WHERE t.id = l.ticket_id {where}
   AND (l.ticket_created_at IS DISTINCT FROM t.created_at
        OR l.ticket_updated_at IS DISTINCT FROM t.updated_at)
"""


def link_keys_refresh(ticket_ids: Sequence[int] | None) -> None:
    """Copy the sort keys of these tickets (None: of every ticket) onto their links, in
    the current schema."""
    where, params = "", []
    if ticket_ids is not None:
        where, params = "AND l.ticket_id = ANY(%s)", [list(ticket_ids)]
    with connection.cursor() as cursor:
        for table, _ in LINK_TABLES:
            cursor.execute(_REFRESH.format(table=table, where=where), params)
