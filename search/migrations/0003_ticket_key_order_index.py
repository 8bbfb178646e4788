"""An expression index for JQL `ORDER BY key` across projects: the project key a ticket
key starts with, then the number, written exactly as search.jql.compile_postgres's
KeyPrefix so the planner walks it for a first page instead of sorting every match.
(Within one project the (project, number) unique index serves ORDER BY key.)"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("search", "0002_saved_filters"),
        ("tickets", "0006_rank_existing_tickets"),
    ]

    operations = [
        migrations.RunSQL(
            sql="CREATE INDEX IF NOT EXISTS search_ticket_key_order"
            " ON tickets_ticket ((split_part(key, '-', 1)), number)",
            reverse_sql="DROP INDEX IF EXISTS search_ticket_key_order",
        )
    ]
