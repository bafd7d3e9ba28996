"""On PostgreSQL one exclusion constraint per resource covers appointments AND waitlist holds.

Until now `appointment_no_overlap` (0002) kept appointments apart and `hold_no_overlap` (0008)
kept holds apart; a hold against an appointment rested on the booking service's lock alone,
so a row written from the admin's raw form, a shell or a data fix could sit on a held time.

`booking_occupancy` is one row for each thing that takes a therapist's time: every active
appointment and every active hold, [starts_at, blocked_until). Triggers on the two tables
keep it in step inside the writing statement itself, so whatever writes a row (the services,
the admin, a shell, a bulk update; TRUNCATE too) is covered, and the exclusion constraint on
it refuses two rows that meet for one therapist. A "party" lets the rows that may overlap do
so: the holds of one offer round (one time offered to several at once; the first to book
wins) share their round's number; each appointment is its own party (minus its id, so it
never equals a round, which is positive). The room columns are for rooms (the next
migration). SQLite has none of this: there the services' re-check inside their IMMEDIATE
transaction keeps the same rule, as before.

No Django model reads the table: it is the guarantee, not a source of truth, and it holds
nothing that the two tables do not.
"""

from django.db import migrations

from clinic.migration_operations import PostgreSQLOnly

# The triggers' functions as this migration writes them (0012 adds rooms; its reverse
# puts these back).
FUNCTIONS = """
CREATE OR REPLACE FUNCTION booking_appointment_occupies() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND NEW.therapist_id = OLD.therapist_id
       AND NEW.starts_at = OLD.starts_at
       AND NEW.blocked_until = OLD.blocked_until
       AND NEW.status = OLD.status THEN
        RETURN NULL;  -- a change that moves nothing (notes, a reminder sent)
    END IF;
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM booking_occupancy WHERE appointment_id = OLD.id;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.status <> 'cancelled' THEN
        INSERT INTO booking_occupancy
            (appointment_id, therapist_id, during, therapist_party, room_party)
        VALUES
            (NEW.id, NEW.therapist_id, tstzrange(NEW.starts_at, NEW.blocked_until, '[)'),
             -NEW.id, -NEW.id);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION booking_hold_occupies() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND NEW.therapist_id = OLD.therapist_id
       AND NEW.starts_at = OLD.starts_at
       AND NEW.blocked_until = OLD.blocked_until
       AND NEW.state = OLD.state
       AND NEW.offer_round = OLD.offer_round THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM booking_occupancy WHERE hold_id = OLD.id;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.state = 'active' THEN
        INSERT INTO booking_occupancy
            (hold_id, therapist_id, during, therapist_party, room_party)
        VALUES
            (NEW.id, NEW.therapist_id, tstzrange(NEW.starts_at, NEW.blocked_until, '[)'),
             NEW.offer_round, NEW.offer_round);
    END IF;
    RETURN NULL;
END $$;
"""

CREATE = """
CREATE TABLE booking_occupancy (
    id bigserial PRIMARY KEY,
    appointment_id bigint UNIQUE,
    hold_id bigint UNIQUE,
    therapist_id bigint NOT NULL,
    room_id bigint,
    during tstzrange NOT NULL,
    therapist_party bigint NOT NULL,
    room_party bigint NOT NULL,
    CHECK ((appointment_id IS NULL) <> (hold_id IS NULL))
);

""" + FUNCTIONS + """
CREATE FUNCTION booking_occupancy_emptied() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'booking_appointment' THEN
        DELETE FROM booking_occupancy WHERE appointment_id IS NOT NULL;
    ELSE
        DELETE FROM booking_occupancy WHERE hold_id IS NOT NULL;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER appointment_occupies
    AFTER INSERT OR UPDATE OR DELETE ON booking_appointment
    FOR EACH ROW EXECUTE FUNCTION booking_appointment_occupies();
CREATE TRIGGER appointment_emptied
    AFTER TRUNCATE ON booking_appointment
    FOR EACH STATEMENT EXECUTE FUNCTION booking_occupancy_emptied();
CREATE TRIGGER hold_occupies
    AFTER INSERT OR UPDATE OR DELETE ON booking_hold
    FOR EACH ROW EXECUTE FUNCTION booking_hold_occupies();
CREATE TRIGGER hold_emptied
    AFTER TRUNCATE ON booking_hold
    FOR EACH STATEMENT EXECUTE FUNCTION booking_occupancy_emptied();

INSERT INTO booking_occupancy (appointment_id, therapist_id, during, therapist_party, room_party)
    SELECT id, therapist_id, tstzrange(starts_at, blocked_until, '[)'), -id, -id
    FROM booking_appointment WHERE status <> 'cancelled';
INSERT INTO booking_occupancy (hold_id, therapist_id, during, therapist_party, room_party)
    SELECT id, therapist_id, tstzrange(starts_at, blocked_until, '[)'), offer_round, offer_round
    FROM booking_hold WHERE state = 'active';

ALTER TABLE booking_occupancy
    ADD CONSTRAINT occupancy_therapist_no_overlap
    EXCLUDE USING gist (
        therapist_id WITH =,
        during WITH &&,
        therapist_party WITH <>
    );

ALTER TABLE booking_appointment DROP CONSTRAINT appointment_no_overlap;
ALTER TABLE booking_hold DROP CONSTRAINT hold_no_overlap;
"""

DROP = """
ALTER TABLE booking_appointment
    ADD CONSTRAINT appointment_no_overlap
    EXCLUDE USING gist (
        therapist_id WITH =,
        tstzrange(starts_at, blocked_until, '[)') WITH &&
    ) WHERE (status <> 'cancelled');
ALTER TABLE booking_hold
    ADD CONSTRAINT hold_no_overlap
    EXCLUDE USING gist (
        therapist_id WITH =,
        tstzrange(starts_at, blocked_until, '[)') WITH &&,
        offer_round WITH <>
    ) WHERE (state = 'active');
DROP TRIGGER appointment_occupies ON booking_appointment;
DROP TRIGGER appointment_emptied ON booking_appointment;
DROP TRIGGER hold_occupies ON booking_hold;
DROP TRIGGER hold_emptied ON booking_hold;
DROP FUNCTION booking_appointment_occupies();
DROP FUNCTION booking_hold_occupies();
DROP FUNCTION booking_occupancy_emptied();
DROP TABLE booking_occupancy;
"""


class Migration(migrations.Migration):
    dependencies = [("booking", "0010_therapist_calendar_feed_token")]

    operations = [PostgreSQLOnly(sql=CREATE, reverse_sql=DROP)]
