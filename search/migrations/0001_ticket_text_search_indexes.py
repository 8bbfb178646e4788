"""Expression GIN indexes for JQL text search (`~`), on the tickets app's tables.

The expressions are exactly those search.jql.compile_postgres writes (EnglishVector),
so the planner uses them. CONCURRENTLY is not used: tenant schemas are migrated
before they take traffic (new ones are cloned from the template schema).
"""

from django.db import migrations

INDEXES = [
    (
        "search_ticket_text_gin",
        "tickets_ticket",
        "to_tsvector('english'::regconfig, (summary || ' ' || description))",
    ),
    (
        "search_ticket_summary_gin",
        "tickets_ticket",
        "to_tsvector('english'::regconfig, (summary))",
    ),
    (
        "search_comment_body_gin",
        "tickets_comment",
        "to_tsvector('english'::regconfig, (body))",
    ),
]


class Migration(migrations.Migration):
    dependencies = [("tickets", "0004_trim_redundant_ticket_indexes")]

    operations = [
        migrations.RunSQL(
            sql=f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin (({expression}))",
            reverse_sql=f"DROP INDEX IF EXISTS {name}",
        )
        for name, table, expression in INDEXES
    ]
