"""The ticket's sort keys on its component and fix-version links, for walking the
tickets of a component or a version in date order (search/link_keys.py).

`ticket_created_at` and `ticket_updated_at` on `tickets_ticket_components` and
`tickets_ticket_fix_versions`, written by the database, not by Django (they are not
model fields, so Django's link rows never carry them):
- a BEFORE INSERT trigger on each link table copies them from the ticket;
- an AFTER UPDATE trigger on tickets, when either date changes, copies them onto the
  ticket's links (a ticket has a few at most).
Functions name tables through TG_TABLE_SCHEMA, so they work whatever the search_path,
and are copied with the template schema like any other. The triggers are in place
before the existing links are filled, so writes during the migration keep them right.

Indexes `(component_id, ticket_created_at, ticket_id)` and
`(component_id, ticket_updated_at, ticket_id)` (the same on versions) replace the
`(component_id, ticket_id)` ones of 0005: they serve the same index-only reads of a
component's tickets, and hold them in either date order. Cost: about 60 MB on
2,000,000 links for each pair; every ticket update now also updates its links.

`fixVersion in ("2026.01", "2026.02") ORDER BY updated DESC` on 2,000,000 tickets
(113,000 in the versions): 400 ms of sorting, now a walk of about a thousand links.
"""

from django.db import migrations

FORWARD = r"""
ALTER TABLE tickets_ticket_components
    ADD COLUMN IF NOT EXISTS ticket_created_at timestamptz,
    ADD COLUMN IF NOT EXISTS ticket_updated_at timestamptz;
ALTER TABLE tickets_ticket_fix_versions
    ADD COLUMN IF NOT EXISTS ticket_created_at timestamptz,
    ADD COLUMN IF NOT EXISTS ticket_updated_at timestamptz;

CREATE OR REPLACE FUNCTION search_link_keys_link_write() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('SELECT created_at, updated_at FROM %I.tickets_ticket WHERE id = $1',
                   TG_TABLE_SCHEMA)
       INTO NEW.ticket_created_at, NEW.ticket_updated_at USING NEW.ticket_id;
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION search_link_keys_ticket_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('UPDATE %I.tickets_ticket_components SET ticket_created_at = $2,'
                   ' ticket_updated_at = $3 WHERE ticket_id = $1', TG_TABLE_SCHEMA)
      USING NEW.id, NEW.created_at, NEW.updated_at;
    EXECUTE format('UPDATE %I.tickets_ticket_fix_versions SET ticket_created_at = $2,'
                   ' ticket_updated_at = $3 WHERE ticket_id = $1', TG_TABLE_SCHEMA)
      USING NEW.id, NEW.created_at, NEW.updated_at;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER search_link_keys_component_insert
    BEFORE INSERT ON tickets_ticket_components
    FOR EACH ROW EXECUTE FUNCTION search_link_keys_link_write();
CREATE OR REPLACE TRIGGER search_link_keys_version_insert
    BEFORE INSERT ON tickets_ticket_fix_versions
    FOR EACH ROW EXECUTE FUNCTION search_link_keys_link_write();
CREATE OR REPLACE TRIGGER search_link_keys_ticket_update
    AFTER UPDATE OF created_at, updated_at ON tickets_ticket FOR EACH ROW
    WHEN (OLD.created_at IS DISTINCT FROM NEW.created_at
          OR OLD.updated_at IS DISTINCT FROM NEW.updated_at)
    EXECUTE FUNCTION search_link_keys_ticket_changed();

UPDATE tickets_ticket_components l
   SET ticket_created_at = t.created_at, ticket_updated_at = t.updated_at
  FROM tickets_ticket t WHERE t.id = l.ticket_id;
UPDATE tickets_ticket_fix_versions l
   SET ticket_created_at = t.created_at, ticket_updated_at = t.updated_at
  FROM tickets_ticket t WHERE t.id = l.ticket_id;

CREATE INDEX IF NOT EXISTS search_component_created ON tickets_ticket_components
    (component_id, ticket_created_at, ticket_id);
CREATE INDEX IF NOT EXISTS search_component_updated ON tickets_ticket_components
    (component_id, ticket_updated_at, ticket_id);
CREATE INDEX IF NOT EXISTS search_version_created ON tickets_ticket_fix_versions
    (version_id, ticket_created_at, ticket_id);
CREATE INDEX IF NOT EXISTS search_version_updated ON tickets_ticket_fix_versions
    (version_id, ticket_updated_at, ticket_id);
DROP INDEX IF EXISTS search_component_tickets;
DROP INDEX IF EXISTS search_version_tickets;
"""

BACKWARD = r"""
CREATE INDEX IF NOT EXISTS search_component_tickets ON tickets_ticket_components
    (component_id, ticket_id);
CREATE INDEX IF NOT EXISTS search_version_tickets ON tickets_ticket_fix_versions
    (version_id, ticket_id);
DROP TRIGGER IF EXISTS search_link_keys_ticket_update ON tickets_ticket;
DROP TRIGGER IF EXISTS search_link_keys_version_insert ON tickets_ticket_fix_versions;
DROP TRIGGER IF EXISTS search_link_keys_component_insert ON tickets_ticket_components;
DROP FUNCTION IF EXISTS search_link_keys_ticket_changed();
DROP FUNCTION IF EXISTS search_link_keys_link_write();
ALTER TABLE tickets_ticket_fix_versions
    DROP COLUMN IF EXISTS ticket_updated_at, DROP COLUMN IF EXISTS ticket_created_at;
ALTER TABLE tickets_ticket_components
    DROP COLUMN IF EXISTS ticket_updated_at, DROP COLUMN IF EXISTS ticket_created_at;
"""


class Migration(migrations.Migration):
    # Each statement commits on its own: the triggers first (writes meanwhile keep the
    # links current), then the fill, then the indexes, which then hold no dead copies
    # of the rows the fill rewrote (built in the fill's transaction, they held both).
    # Every statement can run again after a failure.
    atomic = False

    dependencies = [
        ("search", "0005_covering_indexes"),
        ("tickets", "0009_assignee_index_covering"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
