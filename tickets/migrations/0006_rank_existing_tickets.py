"""Data: rank the tickets that exist, in (project, number) order."""

from django.db import migrations

BATCH = 5_000


def rank_existing(apps, schema_editor):
    from tickets.rank import ranks_spread

    Ticket = apps.get_model("tickets", "Ticket")
    table = Ticket._meta.db_table
    projects = Ticket.objects.filter(rank="").values_list("project_id", flat=True).distinct()
    with schema_editor.connection.cursor() as cursor:
        for project_id in sorted(set(projects)):
            ids = list(
                Ticket.objects.filter(project_id=project_id)
                .order_by("number")
                .values_list("id", flat=True)
            )
            ranks = ranks_spread(len(ids))
            for start in range(0, len(ids), BATCH):
                cursor.execute(
                    f"UPDATE {table} t SET rank = v.rank FROM"  # noqa: S608
                    " (SELECT unnest(%s::bigint[]) AS id, unnest(%s::text[]) AS rank) v"
                    " WHERE t.id = v.id",
                    [ids[start : start + BATCH], ranks[start : start + BATCH]],
                )


class Migration(migrations.Migration):
    dependencies = [("tickets", "0005_boards_sprints_worklogs")]

    operations = [migrations.RunPython(rank_existing, migrations.RunPython.noop, elidable=True)]
