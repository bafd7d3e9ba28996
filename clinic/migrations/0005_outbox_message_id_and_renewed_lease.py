import clinic.models
from django.db import migrations, models


def give_each_email_its_own_message_id(apps, schema_editor):
    # A callable default is evaluated once for an AddField: every existing row would share
    # one Message-ID. Each email that may still be sent gets its own here (one already sent
    # is never sent again, and keeps none), and one being sent right now keeps the old
    # ten-minute lease it was claimed with.
    from datetime import timedelta

    OutgoingEmail = apps.get_model("clinic", "OutgoingEmail")
    unsent = OutgoingEmail.objects.filter(message_id="").exclude(state="sent")
    for email in unsent.only("pk").iterator():
        OutgoingEmail.objects.filter(pk=email.pk).update(
            message_id=clinic.models.new_message_id()
        )
    for email in OutgoingEmail.objects.filter(state="sending").only("pk", "last_attempt_at"):
        if email.last_attempt_at is not None:
            OutgoingEmail.objects.filter(pk=email.pk).update(
                lease_expires_at=email.last_attempt_at + timedelta(minutes=10)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("clinic", "0004_before_your_visit"),
    ]

    operations = [
        migrations.AddField(
            model_name="outgoingemail",
            name="lease_expires_at",
            field=models.DateTimeField(
                blank=True,
                help_text="While being sent: when the sender's claim runs out unless it renews it.",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="outgoingemail",
            name="message_id",
            field=models.CharField(default="", editable=False, max_length=255),
            preserve_default=False,
        ),
        migrations.RunPython(give_each_email_its_own_message_id, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="outgoingemail",
            name="message_id",
            field=models.CharField(
                default=clinic.models.new_message_id,
                editable=False,
                help_text="Every try sends this one Message-ID, so a copy resent after a crash is recognised as the same email.",
                max_length=255,
                verbose_name="Message-ID",
            ),
        ),
    ]
