"""Worklog `(ticket_id, started_at) INCLUDE (author_id, time_spent)`: the worklogs of a
scope's tickets for the time tracking report by an index-only scan in ticket order, so
PostgreSQL merges them with the scope's ticket ids (an index-only scan in id order too)
instead of hashing the ids of every ticket of the project (520,000 for the largest one of
bench/reports.py) or reading the worklog heap. The date range of the report
(`started_at`) is in the key, so a narrowed report is index-only as well.

Cost: about 25 MB for 566,000 worklogs; one entry per worklog written (an edit of its time
or start writes a new one). It covers what tickets' `(ticket_id, started_at)` worklog
index and the `ticket_id` foreign key index serve: a tickets migration could drop those.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0003_board_label_and_status_time_indexes"),
        ("tickets", "0006_rank_existing_tickets"),
    ]

    operations = [
        migrations.RunSQL(
            sql="CREATE INDEX IF NOT EXISTS report_worklog_ticket"
            " ON tickets_worklog (ticket_id, started_at) INCLUDE (author_id, time_spent)",
            reverse_sql="DROP INDEX IF EXISTS report_worklog_ticket",
        ),
    ]
