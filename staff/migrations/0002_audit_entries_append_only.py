"""The audit log is append-only in the database too: an UPDATE or DELETE of an entry raises, whoever
sends it (the product never does; this stops a script or a shell session from quietly editing history)."""

from django.db import migrations

FORWARD = """
CREATE FUNCTION staff_auditentry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the staff audit log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER staff_auditentry_append_only
    BEFORE UPDATE OR DELETE ON staff_auditentry
    FOR EACH ROW EXECUTE FUNCTION staff_auditentry_append_only();
"""
BACKWARD = """
DROP TRIGGER IF EXISTS staff_auditentry_append_only ON staff_auditentry;
DROP FUNCTION IF EXISTS staff_auditentry_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("staff", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
