"""What the site holds about a person: each app's part, run together, none reaching into
another app's tables. (What each part does is tested beside it: tests/booking/test_retention.py.)"""

import ast
from pathlib import Path

import pytest

from booking.services import cancel_appointment
from clinic import personal_data
from tests.booking.test_retention import book  # noqa: F401  # the fixture

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(package):
    """Every module a package's source imports, at any depth (imports inside functions too)."""
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module)
    return found


def test_the_booking_never_reaches_into_the_newsletter():
    assert {m for m in imported_modules("booking") if m.split(".")[0] == "newsletter"} == set()


def test_each_app_registers_its_own_part_once_the_outbox_last():
    keys = ["appointments", "waitlist", "health_histories", "newsletter", "patients", "emails"]
    assert [part.key for part in personal_data.parts()] == keys
    personal_data.register(type(personal_data.parts()[0]))  # again: still once
    assert len(personal_data.parts()) == len(keys)


class Refusing(personal_data.PersonalData):
    key = "refusing"

    def export(self, email):
        return None

    def refusal(self, email, *, now):
        return "Not yet."

    def erase(self, email, *, now):
        raise AssertionError("a refused erasure erased")


def test_one_part_refusing_erases_nothing_anywhere(book, monkeypatch):  # noqa: F811
    visit = book(10)
    # Cancelled, so the booking's own part has nothing against erasing: only Refusing has.
    cancel_appointment(appointment=visit, by_staff=True)
    monkeypatch.setattr(personal_data, "_parts", [*personal_data.parts(), Refusing()])
    with pytest.raises(personal_data.ErasureRefused, match="Not yet."):
        personal_data.erase(email="pat@example.com")
    visit.refresh_from_db()
    assert visit.patient_name == "Pat Example"
    assert personal_data.summary(email="pat@example.com")["refusals"] == ["Not yet."]


def test_what_was_erased_is_told_in_words():
    erased = {"appointments": 2, "newsletter": 0, "emails": 3}
    assert personal_data.describe(erased) == (
        "2 appointment(s) anonymised, 0 newsletter subscription(s) and 3 sent email(s) deleted"
    )
