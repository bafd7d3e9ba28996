"""Weekly intervals (opening hours, working hours) and closures as the engine reads them."""

from datetime import date, time

import pytest
from django.forms import inlineformset_factory

from booking.models import Therapist, WorkingHours
from clinic.forms import WeeklyIntervalFormSet
from clinic.models import Closure, OpeningHours

pytestmark = pytest.mark.django_db


def formset_for(therapist, rows):
    FormSet = inlineformset_factory(
        Therapist,
        WorkingHours,
        formset=WeeklyIntervalFormSet,
        fields=["weekday", "opens", "closes"],
        extra=0,
    )
    data = {
        "working_hours-TOTAL_FORMS": str(len(rows)),
        "working_hours-INITIAL_FORMS": "0",
    }
    for i, (weekday, opens, closes) in enumerate(rows):
        data.update(
            {
                f"working_hours-{i}-weekday": str(weekday),
                f"working_hours-{i}-opens": opens,
                f"working_hours-{i}-closes": closes,
            }
        )
    return FormSet(data, instance=therapist)


def test_overlapping_intervals_on_one_day_are_refused_with_both_named(therapist):
    WorkingHours.objects.filter(therapist=therapist).delete()
    formset = formset_for(therapist, [(0, "09:00", "12:00"), (0, "11:30", "17:00")])
    assert not formset.is_valid()
    assert "Monday: 09:00–12:00 overlaps 11:30–17:00" in str(formset.non_form_errors())


def test_a_day_with_a_break_and_the_same_hours_on_another_day_are_fine(therapist):
    WorkingHours.objects.filter(therapist=therapist).delete()
    formset = formset_for(
        therapist, [(0, "09:00", "12:00"), (0, "13:00", "17:00"), (1, "09:00", "12:00")]
    )
    assert formset.is_valid(), formset.errors


def test_an_interval_that_ends_before_it_starts_is_refused(therapist):
    formset = formset_for(therapist, [(3, "17:00", "09:00")])
    assert not formset.is_valid()


def test_weekly_intervals_read_as_plain_data_in_one_query(
    clinic, therapist, django_assert_num_queries
):
    with django_assert_num_queries(1):
        weekly = WorkingHours.objects.filter(therapist=therapist).as_weekly()
    assert weekly[therapist.pk][0] == [(time(9), time(12)), (time(13), time(17))]
    assert 5 not in weekly[therapist.pk]
    assert OpeningHours.objects.as_weekly()[clinic.pk][5] == [(time(9), time(14))]


def test_closures_covering_a_range(clinic):
    christmas = Closure.objects.create(
        clinic=clinic, starts_on=date(2026, 12, 24), ends_on=date(2026, 12, 26)
    )
    assert list(Closure.objects.covering(date(2026, 12, 26), date(2026, 12, 31))) == [christmas]
    assert list(Closure.objects.covering(date(2026, 12, 27), date(2026, 12, 31))) == []
