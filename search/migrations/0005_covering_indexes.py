"""Covering indexes for JQL on large tenants (bench/search.py, 2,000,000 tickets).

`tickets_ticket (status_id, priority_id) INCLUDE (project_id, issue_type_id,
assignee_id, labels)`: the ticket's filterable facts, for index-only reads. The ticket
heap is wide (descriptions, the text vector: about 1.1 kB a ticket), so each heap fetch
costs a few microseconds, and a count or a filter on these fields read it row by row:
- `status in (...) AND priority in (...)` fetched 120,000 rows to keep 25,000 (ids and
  count 100 ms, now 4 ms);
- the capped count of `type = Bug AND labels = backend` built a GIN bitmap of 250,000
  entries and rechecked its lossy pages (150 ms); it now stops after its first matches
  in this index (13 ms). Counts select a constant, not the id
  (search.engine.execute.capped_count), so the id is not needed here.
The id is left out on purpose, and so are dates: with them, the planner preferred a full
scan of this index (hashing every id against the list) to primary-key lookups when
sorting ~100,000 tickets given by id (`component`, `fixVersion`), which was slower.
Cost: about 190 MB on 2,000,000 tickets; one entry per insert and per non-HOT update
(ticket updates change `updated_at`, already indexed, so they are non-HOT anyway).

`tickets_ticket (project_id, priority_id, id) INCLUDE (updated_at)`: priority order
(the most common JQL sort, `ORDER BY priority DESC, updated DESC`) within projects by
an index-only scan and a sort of narrow rows. `project = WEB ORDER BY priority DESC` on
520,000 tickets fetched every row from the heap to sort them (850 ms, now 75 ms), as
did the project's ticket list sorted by priority; `component = X` in two projects,
sorted by priority, scans the two projects' entries here instead of looking up
87,000 tickets (400-600 ms, now 170). The planner also uses it for sorting a large
set of tickets given by id by `updated` across projects (`fixVersion`), about as slow
as the primary-key lookups it replaces. Cost: about 95 MB on 2,000,000 tickets; one
entry per insert and per non-HOT update.

`tickets_ticket_components (component_id, ticket_id)` and
`tickets_ticket_fix_versions (version_id, ticket_id)`: the tickets of a component or a
version by an index-only scan, which the compiler reads first and writes into the query
as ids. Django's own index on `component_id` alone made that a bitmap heap scan over
the link table (87,000 links: 150 ms, now 16 ms). Django's single-column indexes stay
(they are part of its model of the link tables); cost about 45 MB on 2,000,000 links.
"""

from django.db import migrations

FORWARD = """
CREATE INDEX IF NOT EXISTS search_ticket_status_priority ON tickets_ticket
    (status_id, priority_id) INCLUDE (project_id, issue_type_id, assignee_id, labels);
CREATE INDEX IF NOT EXISTS search_ticket_project_priority ON tickets_ticket
    (project_id, priority_id, id) INCLUDE (updated_at);
CREATE INDEX IF NOT EXISTS search_component_tickets ON tickets_ticket_components
    (component_id, ticket_id);
CREATE INDEX IF NOT EXISTS search_version_tickets ON tickets_ticket_fix_versions
    (version_id, ticket_id);
"""

BACKWARD = """
DROP INDEX IF EXISTS search_version_tickets;
DROP INDEX IF EXISTS search_component_tickets;
DROP INDEX IF EXISTS search_ticket_project_priority;
DROP INDEX IF EXISTS search_ticket_status_priority;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("search", "0004_ticket_search_text"),
        ("tickets", "0008_history_changed_covering"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
