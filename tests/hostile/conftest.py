"""Hostile input: Hypothesis settings and the few rows every test aims at."""

import os

import pytest
from hypothesis import HealthCheck, settings

# Quick enough for every `make test` (each example is a request); HOSTILE_EXAMPLES raises
# it for a longer hunt. In CI the examples are derived from the test, so a failure there
# is the same failure on a laptop. No example database: nothing is written to the tree.
settings.register_profile(
    "hostile",
    max_examples=int(os.environ.get("HOSTILE_EXAMPLES", "25")),
    deadline=None,
    database=None,
    derandomize=os.environ.get("CI") == "true",
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # the world is set up once per test, on purpose
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@pytest.fixture
def world(seeded, booking_rules, service, therapist, at):
    """The clinic as `make run` loads it, plus Maria's 60-minute massage and one booking."""
    from booking.services import PatientDetails, book_appointment

    appointment = book_appointment(
        service=service,
        therapist=therapist,
        start=at(10),
        patient=PatientDetails(name="Pat Example", email="pat@example.com", phone="+12095550142"),
    )
    return appointment
