"""On PostgreSQL the database itself refuses overlapping appointments for one therapist.

An exclusion constraint over [starts_at, blocked_until) (the buffer after a visit counted)
for every appointment that is not cancelled: whatever writes the row (the booking page,
the admin, a shell), two that meet for one therapist cannot both commit. SQLite has no
such constraint; there the booking service's re-check inside its IMMEDIATE transaction
keeps the same rule.
"""

from django.db import migrations

from clinic.migration_operations import PostgreSQLOnly


class Migration(migrations.Migration):
    dependencies = [("booking", "0001_initial")]

    operations = [
        PostgreSQLOnly(
            sql="CREATE EXTENSION IF NOT EXISTS btree_gist;",
            reverse_sql=migrations.RunSQL.noop,
        ),
        PostgreSQLOnly(
            sql="""
                ALTER TABLE booking_appointment
                ADD CONSTRAINT appointment_no_overlap
                EXCLUDE USING gist (
                    therapist_id WITH =,
                    tstzrange(starts_at, blocked_until, '[)') WITH &&
                ) WHERE (status <> 'cancelled');
            """,
            reverse_sql="ALTER TABLE booking_appointment DROP CONSTRAINT appointment_no_overlap;",
        ),
    ]
