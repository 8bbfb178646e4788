"""TicketHistory.until: when the next change of the same field replaced a value.

Kept by the database so that every writer keeps it right: AFTER statement triggers on
inserts and updates of history recompute `until` of the tickets the statement touched
(a window function over each one's history, read through its (ticket, created_at)
index). History rows are not deleted on their own
(only with their ticket), so deletes need nothing. Writers that COPY with triggers off
(the import, the benchmark seed) call tickets.history.history_until_refresh.
The functions name tables through TG_TABLE_SCHEMA, whatever the search_path.
"""

from django.db import migrations, models

import tickets.models.tickets

FORWARD = r"""
CREATE OR REPLACE FUNCTION history_until_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The trigger's own UPDATE fires the update trigger again: nothing to do there.
    IF TG_OP = 'UPDATE' AND pg_trigger_depth() > 1 THEN
        RETURN NULL;
    END IF;
    EXECUTE format(
        'UPDATE %1$I.tickets_tickethistory h SET until = n.next_at'
        '  FROM (SELECT DISTINCT ticket_id FROM changed_history) c,'
        '       LATERAL (SELECT id, lead(created_at) OVER (PARTITION BY field'
        '                                                  ORDER BY created_at, id) AS next_at'
        '                  FROM %1$I.tickets_tickethistory'
        '                 WHERE ticket_id = c.ticket_id) n'
        ' WHERE h.id = n.id AND h.until IS DISTINCT FROM n.next_at',
        TG_TABLE_SCHEMA);
    RETURN NULL;
END $$;

CREATE TRIGGER history_until_insert AFTER INSERT ON tickets_tickethistory
    REFERENCING NEW TABLE AS changed_history
    FOR EACH STATEMENT EXECUTE FUNCTION history_until_changed();
CREATE TRIGGER history_until_update AFTER UPDATE ON tickets_tickethistory
    REFERENCING NEW TABLE AS changed_history
    FOR EACH STATEMENT EXECUTE FUNCTION history_until_changed();

UPDATE tickets_tickethistory h SET until = n.next_at
  FROM (SELECT id, lead(created_at) OVER (PARTITION BY ticket_id, field
                                          ORDER BY created_at, id) AS next_at
          FROM tickets_tickethistory) n
 WHERE h.id = n.id AND n.next_at IS NOT NULL;
"""

BACKWARD = """
DROP TRIGGER IF EXISTS history_until_update ON tickets_tickethistory;
DROP TRIGGER IF EXISTS history_until_insert ON tickets_tickethistory;
DROP FUNCTION IF EXISTS history_until_changed();
"""


class Migration(migrations.Migration):
    dependencies = [("tickets", "0006_rank_existing_tickets")]

    operations = [
        migrations.AddField(
            model_name="tickethistory",
            name="until",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
        migrations.AddIndex(
            model_name="tickethistory",
            index=models.Index(
                models.F("field"),
                models.F("to_ref"),
                tickets.models.tickets.UntilOrInfinity(models.F("until")),
                name="history_value_until",
                include=["created_at", "ticket_id", "until"],
            ),
        ),
    ]
