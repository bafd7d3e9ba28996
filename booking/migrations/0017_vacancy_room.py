"""Time freed in a room is offered to the waitlist, whichever therapist may use it.

A Vacancy may now name a room (the freed visit's, or a room closure removed or shortened),
and a room's alone (no therapist). One entry is offered one time once, whichever therapist:
the hold's unique constraint drops its therapist, since a room's freed time may go to any
of them (the offering code already never offered an entry one start twice). A therapist's
staff login deleted forgets their calendar feed's secret (booking.models.unlink_login;
on_delete changes no SQL).
"""

import booking.models
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def one_hold_per_entry_and_start(apps, schema_editor):
    """The old constraint allowed one entry two holds of one start with two therapists (two
    offers racing); the new one does not. Keep the hold that matters (booked from, then
    still held, then the first made) and drop the others, which hold nothing the kept one
    does not offer the same person."""
    Hold = apps.get_model("booking", "Hold")
    seen = set()
    rank = {"claimed": 0, "active": 1}
    holds = sorted(
        Hold.objects.all(),
        key=lambda h: (h.entry_id, h.starts_at, h.appointment_id is None, rank.get(h.state, 2), h.pk),
    )
    for hold in holds:
        key = (hold.entry_id, hold.starts_at)
        if key in seen:
            hold.delete()
        else:
            seen.add(key)


class Migration(migrations.Migration):

    dependencies = [
        ('booking', '0016_health_history_signed_with_proven_address'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='hold',
            name='hold_one_offer_per_entry',
        ),
        migrations.AddField(
            model_name='vacancy',
            name='room',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='vacancies', to='booking.room'),
        ),
        migrations.AlterField(
            model_name='therapist',
            name='user',
            field=models.OneToOneField(blank=True, null=True, on_delete=booking.models.unlink_login, related_name='therapist', to=settings.AUTH_USER_MODEL, verbose_name='staff user'),
        ),
        migrations.AlterField(
            model_name='vacancy',
            name='therapist',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='vacancies', to='booking.therapist'),
        ),
        migrations.RunPython(one_hold_per_entry_and_start, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name='hold',
            constraint=models.UniqueConstraint(fields=('entry', 'starts_at'), name='hold_one_offer_per_entry'),
        ),
        migrations.AddConstraint(
            model_name='vacancy',
            constraint=models.CheckConstraint(condition=models.Q(('therapist__isnull', False), ('room__isnull', False), _connector='OR'), name='vacancy_of_a_therapist_or_a_room'),
        ),
    ]
