"""Keep the cached profile fresh: saving or deleting it, its hours or closures drops it."""

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import ClinicProfile, Closure, OpeningHours
from .services import forget_clinic_profile


@receiver([post_save, post_delete], sender=ClinicProfile)
@receiver([post_save, post_delete], sender=OpeningHours)
@receiver([post_save, post_delete], sender=Closure)
def _drop_cached_profile(**kwargs):
    # Drop now and again after commit, so no request can cache the old rows in between.
    forget_clinic_profile()
    transaction.on_commit(forget_clinic_profile)
