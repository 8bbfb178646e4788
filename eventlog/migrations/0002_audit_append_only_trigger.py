from django.db import migrations

# The audit log is append-only: the database itself refuses to change or delete entries.
FORWARD = """
CREATE OR REPLACE FUNCTION events_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit log is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER events_auditentry_append_only
    BEFORE UPDATE OR DELETE ON events_auditentry
    FOR EACH ROW EXECUTE FUNCTION events_audit_append_only();
"""
BACKWARD = """
DROP TRIGGER IF EXISTS events_auditentry_append_only ON events_auditentry;
DROP FUNCTION IF EXISTS events_audit_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("events", "0001_initial")]
    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
