"""Backfill the cycle time starts of the tickets resolved so far (what the daily snapshot
job keeps from now on, reports.cycle_starts.cycle_starts_refresh, frozen here as SQL).

Cost: one probe of the status history index per resolved ticket and one row each (1.8
million rows, 210 MB with the indexes, in about 20 s on the 2,000,000-ticket bench
tenant), then ANALYZE of the new table so the planner knows its size.
Skipping it is safe: the report looks a start up in the history whenever a ticket has no
row, and the daily job writes the missing ones.
"""

from django.db import migrations

FORWARD = """
INSERT INTO reports_cyclestartbasis (in_progress, refreshed_at)
SELECT coalesce(array_agg(id ORDER BY id), '{}')::bigint[], now()
FROM tickets_status WHERE category = 'IN_PROGRESS'
HAVING NOT EXISTS (SELECT 1 FROM reports_cyclestartbasis);

INSERT INTO reports_cyclestart (ticket_id, resolved_at, started_at)
SELECT t.id, t.resolved_at, (
    SELECT min(h.created_at) FROM tickets_tickethistory h
    WHERE h.ticket_id = t.id AND h.field = 'status'
      AND h.to_ref = ANY((SELECT b.in_progress FROM reports_cyclestartbasis b
                          ORDER BY b.id LIMIT 1)::bigint[])
      AND h.created_at <= t.resolved_at
  )
FROM tickets_ticket t
WHERE t.resolved_at < now() - interval '5 minutes'
ORDER BY t.resolved_at
ON CONFLICT (ticket_id) DO NOTHING;

ANALYZE reports_cyclestart;
"""

BACKWARD = "DELETE FROM reports_cyclestart; DELETE FROM reports_cyclestartbasis;"


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0005_cycle_starts"),
        ("tickets", "0006_rank_existing_tickets"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
