"""Indexes the reports need on the ticket table (bench/reports.py on 2,000,000 tickets).

`(project_id, id)`: the ids of one project's tickets by an index-only scan, for the
reports that join other tables (worklogs, history) to a project's tickets (time
tracking, cumulative flow from the history, the scope's `SELECT id`), instead of a scan
of the whole ticket heap. Cost: about 60 MB on 2,000,000 tickets and one more index
entry per ticket insert and per non-HOT update (ticket updates already change indexed
columns such as `updated_at`, so they are non-HOT anyway: this adds one write to the
fourteen index writes an update already does).

`(project_id) INCLUDE (estimates) WHERE an estimate is set`: the estimated tickets of a
project for the time tracking totals without reading the ticket heap. Cost: one entry
per estimated ticket only (none for tickets without estimates), written on insert and
non-HOT update of those tickets.

`(resolved_at) INCLUDE (id, project_id, created_at, key) WHERE resolved_at IS NOT NULL`:
tickets resolved in a range (created vs resolved, cycle time) by an index-only scan.
Cost: about 117 MB for 1.9 million resolved tickets; an entry per resolved ticket,
written when a ticket is resolved (that update changes `status_id`, already indexed, so
it was non-HOT anyway) and on later non-HOT updates of resolved tickets.

`(status_id, assignee_id) INCLUDE (project_id, story_points, remaining_estimate)`: the
assignee workload (open tickets per assignee) by an index-only scan of the open
statuses. Cost: about 108 MB on 2,000,000 tickets; one entry per insert and per non-HOT
update (status, assignee, points and estimate changes).

History `(ticket_id, created_at) INCLUDE (to_ref, from_ref, id) WHERE field =
'status'`: a ticket's status moves by index-only scans (burndown: the moves of a
sprint's tickets; cycle time: the first move into progress, one probe). Cost: about
375 MB for 6.7 million status rows of 14.7 million history rows; one entry per status
change (history is append-only, so written once).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0001_snapshots_and_dashboards"),
        ("tickets", "0005_boards_sprints_worklogs"),
    ]

    operations = [
        migrations.RunSQL(
            sql="CREATE INDEX IF NOT EXISTS report_ticket_project_id ON tickets_ticket (project_id, id)",
            reverse_sql="DROP INDEX IF EXISTS report_ticket_project_id",
        ),
        migrations.RunSQL(
            sql="CREATE INDEX IF NOT EXISTS report_ticket_estimated ON tickets_ticket (project_id)"
            " INCLUDE (original_estimate, remaining_estimate)"
            " WHERE original_estimate IS NOT NULL OR remaining_estimate IS NOT NULL",
            reverse_sql="DROP INDEX IF EXISTS report_ticket_estimated",
        ),
        migrations.RunSQL(
            sql="CREATE INDEX IF NOT EXISTS report_ticket_resolved ON tickets_ticket (resolved_at)"
            " INCLUDE (id, project_id, created_at, key) WHERE resolved_at IS NOT NULL",
            reverse_sql="DROP INDEX IF EXISTS report_ticket_resolved",
        ),
        migrations.RunSQL(
            sql="CREATE INDEX IF NOT EXISTS report_ticket_open_work"
            " ON tickets_ticket (status_id, assignee_id)"
            " INCLUDE (project_id, story_points, remaining_estimate)",
            reverse_sql="DROP INDEX IF EXISTS report_ticket_open_work",
        ),
        migrations.RunSQL(
            sql="CREATE INDEX IF NOT EXISTS report_history_status"
            " ON tickets_tickethistory (ticket_id, created_at) INCLUDE (to_ref, from_ref, id)"
            " WHERE field = 'status'",
            reverse_sql="DROP INDEX IF EXISTS report_history_status",
        ),
    ]
