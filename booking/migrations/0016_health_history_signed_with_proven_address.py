"""HealthHistory.signed_with_proven_address: whether whoever signed had proven they read mail
at the patient's address (the emailed link, or a record already confirmed).

Existing rows, which never recorded it, are judged from their record: a version on an
unverified record was signed without proof (not proven, which is exact); a version on a
verified record counts as proven when it was signed at or after the record was confirmed,
and not proven when signed before it (the history of a stranger signed from the
confirmation page and then joined by the owner proving the address is signed before its
record's confirmation). What is left open is a stranger's history that joined a record the
owner had confirmed earlier: that counts as proven, as nothing in the row tells them apart.
"""

from django.db import migrations, models
from django.db.models import F


def judge_existing(apps, schema_editor):
    HealthHistory = apps.get_model("booking", "HealthHistory")
    proven = HealthHistory.objects.filter(
        patient__verified_at__isnull=False, signed_at__gte=F("patient__verified_at")
    )
    # A queryset update (a joined filter goes through a subquery): signed rows are never saved.
    HealthHistory.objects.filter(pk__in=proven.values("pk")).update(signed_with_proven_address=True)


class Migration(migrations.Migration):
    dependencies = [
        ("booking", "0015_appointment_price"),
    ]

    operations = [
        migrations.AddField(
            model_name="healthhistory",
            name="signed_with_proven_address",
            field=models.BooleanField(
                default=False,
                help_text=(
                    "Whether the signer had proven they read mail at the address (the emailed "
                    "link, or a record already confirmed). If not, someone else may have signed it."
                ),
                verbose_name="address proven at signing",
            ),
        ),
        migrations.RunPython(judge_existing, migrations.RunPython.noop, elidable=True),
    ]
