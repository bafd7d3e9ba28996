"""Hostile input at the health history and consent form and its link: never a 500, nothing
signed unless every answer is acceptable, and a refused form keeps what was typed."""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from booking.health import health_token
from booking.models import HealthHistory
from tests.hostile.test_public_inputs import HOSTILE, check, hostile, segments

pytestmark = pytest.mark.django_db

VALID = {
    "conditions": "",
    "medications": "",
    "areas_to_avoid": "",
    "pressure": "ask",
    "emergency_name": "Robin Example",
    "emergency_phone": "+12095550199",
    "intake_clot_signs": "no",
    "intake_surgery_or_immobility": "no",
    "intake_blood_thinners": "no",
    "intake_pregnant": "no",
    "consent_version": "1",
    "signed_name": "Pat Example",
    "agree": "on",
}
FIELDS = list(VALID)


@pytest.fixture
def web():
    """A browser that gets the 500 page instead of the exception, as a patient would."""
    from django.test import Client

    return Client(raise_request_exception=False)


@pytest.fixture
def form_url(world):
    return f"/book/health/{health_token(world, emailed=True)}/"


@HOSTILE
@given(field=st.sampled_from(FIELDS), value=hostile)
@example(field="conditions", value="a\x00b")
@example(field="signed_name", value="\x00")
@example(field="consent_version", value="99999999999999999999")
@example(field="emergency_phone", value="\x00")
@example(field="pressure", value="'\"; DROP TABLE booking_healthhistory; --")
def test_the_form_refuses_any_bad_answer_and_signs_nothing(web, form_url, field, value):
    before = HealthHistory.objects.count()
    response = check(web.post(form_url, {**VALID, field: value}), f"a hostile {field}")
    if response.status_code == 303:  # acceptable: one more version, nothing else
        assert HealthHistory.objects.count() == before + 1
        HealthHistory.objects.order_by("-pk").first().delete()
    else:
        assert response.status_code == 400
        assert HealthHistory.objects.count() == before
        page = response.content.decode()
        assert "Please check the fields marked below." in page
        assert "Robin Example" in page or field == "emergency_name"


@HOSTILE
@given(data=st.fixed_dictionaries({name: hostile for name in FIELDS}))
def test_the_form_filled_with_garbage_signs_nothing(web, form_url, data):
    response = check(web.post(form_url, data), "the form full of garbage")
    assert response.status_code == 400
    assert not HealthHistory.objects.exists()


@HOSTILE
@given(token=hostile)
@example(token="\x00")
@example(token="a" * 400)
def test_a_hostile_link_is_a_plain_not_found(web, world, token):
    for segment in segments(token):
        check(web.get(f"/book/health/{segment}/"), "the health form")
        check(web.post(f"/book/health/{segment}/", VALID), "signing")
    assert not HealthHistory.objects.exists()
