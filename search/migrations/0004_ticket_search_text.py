"""One stored text vector per ticket for `text ~`: summary, description and every
comment, kept up to date by triggers and searched through one GIN index.

`text ~ x` must match a ticket whose summary, description or any one comment
matches. As separate conditions (an expression index on the ticket, an EXISTS over
comments) they cannot be combined in one index scan, so every search walked tickets
evaluating to_tsvector row by row. `search_text` holds the words of all of them
together, so `search_text @@ q` holds whenever one part matches: the compiler uses it
as an indexed pre-filter and, where it is not already exact (several words, a phrase,
one field only), checks the exact condition on what it lets through.

- Written by the database, not by Django (the column is not a model field, so it is
  never loaded with tickets): a BEFORE INSERT trigger and a BEFORE UPDATE trigger
  when the summary or description change, on tickets; AFTER statement triggers on
  comments (insert, update, delete) refresh the tickets they touched, once per
  statement.
- A ticket whose text is too large for one tsvector (1 MB of lexemes and positions)
  keeps NULL there; the compiler searches those few tickets the exact way, through a
  partial index of them.
- Functions and triggers name tables through TG_TABLE_SCHEMA, so they work whatever
  the search_path, and are copied with the template schema like any other.
"""

from django.db import migrations

FORWARD = r"""
ALTER TABLE tickets_ticket ADD COLUMN IF NOT EXISTS search_text tsvector;

CREATE OR REPLACE FUNCTION search_text_build(summary text, description text, comments text)
RETURNS tsvector LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN to_tsvector('english'::regconfig,
                       summary || ' ' || description || ' ' || coalesce(comments, ''));
EXCEPTION WHEN program_limit_exceeded THEN
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION search_text_ticket_write() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    comments text;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        EXECUTE format('SELECT string_agg(body, '' '' ORDER BY id) FROM %I.tickets_comment'
                       ' WHERE ticket_id = $1', TG_TABLE_SCHEMA)
           INTO comments USING NEW.id;
    END IF;
    EXECUTE format('SELECT %I.search_text_build($1, $2, $3)', TG_TABLE_SCHEMA)
       INTO NEW.search_text USING NEW.summary, NEW.description, comments;
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION search_text_comments_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format(
        'UPDATE %1$I.tickets_ticket t SET search_text = %1$I.search_text_build('
        '    t.summary, t.description,'
        '    (SELECT string_agg(c.body, '' '' ORDER BY c.id) FROM %1$I.tickets_comment c'
        '      WHERE c.ticket_id = t.id))'
        ' WHERE t.id IN (SELECT ticket_id FROM changed_comments)',
        TG_TABLE_SCHEMA);
    RETURN NULL;
END $$;

CREATE TRIGGER search_text_ticket_insert BEFORE INSERT ON tickets_ticket
    FOR EACH ROW EXECUTE FUNCTION search_text_ticket_write();
CREATE TRIGGER search_text_ticket_update BEFORE UPDATE OF summary, description ON tickets_ticket
    FOR EACH ROW
    WHEN (OLD.summary IS DISTINCT FROM NEW.summary
          OR OLD.description IS DISTINCT FROM NEW.description)
    EXECUTE FUNCTION search_text_ticket_write();
CREATE TRIGGER search_text_comment_insert AFTER INSERT ON tickets_comment
    REFERENCING NEW TABLE AS changed_comments
    FOR EACH STATEMENT EXECUTE FUNCTION search_text_comments_changed();
CREATE TRIGGER search_text_comment_update AFTER UPDATE ON tickets_comment
    REFERENCING NEW TABLE AS changed_comments
    FOR EACH STATEMENT EXECUTE FUNCTION search_text_comments_changed();
CREATE TRIGGER search_text_comment_delete AFTER DELETE ON tickets_comment
    REFERENCING OLD TABLE AS changed_comments
    FOR EACH STATEMENT EXECUTE FUNCTION search_text_comments_changed();

UPDATE tickets_ticket t SET search_text = search_text_build(
    t.summary, t.description,
    (SELECT string_agg(c.body, ' ' ORDER BY c.id) FROM tickets_comment c
      WHERE c.ticket_id = t.id));

CREATE INDEX IF NOT EXISTS search_ticket_search_text_gin ON tickets_ticket
    USING gin (search_text);
CREATE INDEX IF NOT EXISTS search_ticket_search_text_unbuilt ON tickets_ticket (id)
    WHERE search_text IS NULL;
DROP INDEX IF EXISTS search_ticket_text_gin;
"""

BACKWARD = """
CREATE INDEX IF NOT EXISTS search_ticket_text_gin ON tickets_ticket
    USING gin ((to_tsvector('english'::regconfig, (summary || ' ' || description))));
DROP TRIGGER IF EXISTS search_text_comment_delete ON tickets_comment;
DROP TRIGGER IF EXISTS search_text_comment_update ON tickets_comment;
DROP TRIGGER IF EXISTS search_text_comment_insert ON tickets_comment;
DROP TRIGGER IF EXISTS search_text_ticket_update ON tickets_ticket;
DROP TRIGGER IF EXISTS search_text_ticket_insert ON tickets_ticket;
DROP FUNCTION IF EXISTS search_text_comments_changed();
DROP FUNCTION IF EXISTS search_text_ticket_write();
DROP FUNCTION IF EXISTS search_text_build(text, text, text);
ALTER TABLE tickets_ticket DROP COLUMN IF EXISTS search_text;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("search", "0003_ticket_key_order_index"),
        ("tickets", "0006_rank_existing_tickets"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
