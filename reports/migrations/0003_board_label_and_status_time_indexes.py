"""Indexes for the board and report cases of bench/reports.py that missed p95 < 500 ms on
2,000,000 tickets (sizes measured there).

Tickets `(project_id, status_id, rank, id)`: a board column (one project, one status) in
card order. The first page reads its 50 cards straight off the index instead of every
card of the column and a sort (a 73,000-card Done column: 780 ms), and a page at an
offset skips the cards before it by an index-only scan (tickets.board_selectors.cards).
Cost: 112 MB; one entry per insert and per non-HOT update (status and rank changes are
among the indexed columns anyway). It makes tickets' own `(project_id, status_id)` index
redundant (a prefix of this one): a tickets migration could drop that one.

Tickets `(project_id) INCLUDE (labels)`: the labels of a project's tickets by an
index-only scan, for the issue distribution by labels, instead of reading the ticket
heap (wide rows: summaries and descriptions; 1.2 s for the largest project). Cost:
118 MB; one entry per insert and per non-HOT update.

History `(created_at) INCLUDE (ticket_id, from_ref, to_ref) WHERE field = 'status'`: the
status moves in a time range by an index-only scan, hash-joined to the scope's tickets
(cumulative flow from the history: the moves since the start of the range; the daily
snapshot: the moves since the end of the day). Before, the flow probed the
(ticket_id, created_at) index once per ticket of the scope (520,000 probes for one
project, 0.9 s). Cost: 316 MB for 6.6 million status rows of 14.7 million history rows;
one entry per status change, written once (history is append-only).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0002_report_ticket_indexes"),
        ("tickets", "0006_rank_existing_tickets"),
    ]

    operations = [
        migrations.RunSQL(
            sql="CREATE INDEX IF NOT EXISTS report_ticket_board_column"
            " ON tickets_ticket (project_id, status_id, rank, id)",
            reverse_sql="DROP INDEX IF EXISTS report_ticket_board_column",
        ),
        migrations.RunSQL(
            sql="CREATE INDEX IF NOT EXISTS report_ticket_project_labels"
            " ON tickets_ticket (project_id) INCLUDE (labels)",
            reverse_sql="DROP INDEX IF EXISTS report_ticket_project_labels",
        ),
        migrations.RunSQL(
            sql="CREATE INDEX IF NOT EXISTS report_history_status_time"
            " ON tickets_tickethistory (created_at) INCLUDE (ticket_id, from_ref, to_ref)"
            " WHERE field = 'status'",
            reverse_sql="DROP INDEX IF EXISTS report_history_status_time",
        ),
    ]
