"""Admin form pieces shared by the clinic's hours and the therapists' working hours."""

from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet

from .models import Weekday, overlapping_intervals


class WeeklyIntervalFormSet(BaseInlineFormSet):
    """Refuses two intervals that overlap on one weekday, including rows added together."""

    def clean(self):
        super().clean()
        intervals = []
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            if data.get("DELETE") or not all(data.get(k) is not None for k in ("opens", "closes")):
                continue
            if data.get("weekday") is None:
                continue
            intervals.append((data["weekday"], data["opens"], data["closes"]))
        clashes = overlapping_intervals(intervals)
        if clashes:
            (day, opens_a, closes_a), (_, opens_b, closes_b) = clashes[0]
            raise ValidationError(
                f"{Weekday(day).label}: {opens_a:%H:%M}–{closes_a:%H:%M} overlaps "
                f"{opens_b:%H:%M}–{closes_b:%H:%M}. Make each interval end before the next starts."
            )
