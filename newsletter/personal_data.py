"""The newsletter's part of a person's data (clinic.personal_data): their subscription."""

from clinic.personal_data import PersonalData, isoformat, register

from .models import Subscriber
from .services import erase_subscribers


def _subscribers(email):
    return Subscriber.objects.filter(email__iexact=email.strip())


@register
class Subscription(PersonalData):
    """The sign-up and its consent record; erasing it also removes the copies sent."""

    key = "newsletter"
    erased_label = "{} newsletter subscription(s)"
    summary_template = "admin/newsletter/_personal_data.html"
    erase_template = "admin/newsletter/_personal_data_erase.html"
    order = 20

    def summary(self, email, *, now):
        return {"subscriber": _subscribers(email).first()}

    def export(self, email):
        subscriber = _subscribers(email).first()
        if subscriber is None:
            return None
        return {
            "email": subscriber.email,
            "status": subscriber.status,
            "language": subscriber.language,
            "signed_up_at": isoformat(subscriber.signed_up_at),
            "confirmed_at": isoformat(subscriber.confirmed_at),
            "unsubscribed_at": isoformat(subscriber.unsubscribed_at),
            "consent_text": subscriber.consent_text,
            "consent_at": isoformat(subscriber.consent_at),
            "consent_page": subscriber.consent_page,
            "consent_ip": subscriber.consent_ip,
        }

    patient_template = "admin/newsletter/_patient.html"

    def patient_summary(self, patient, *, now):
        return {"subscriptions": list(patient.newsletter_subscriptions.all())}

    def repoint(self, *, source, target):
        Subscriber.objects.filter(patient=source).update(patient=target)

    def attach_proven(self, patient):
        """A confirmed sign-up proved the same address: it belongs to this record."""
        Subscriber.objects.confirmed().filter(
            email__iexact=patient.email, patient__isnull=True
        ).update(patient=patient)

    def erase(self, email, *, now):
        # The newsletter's own erasure keeps each issue's figures true and removes the
        # copies it sent.
        return erase_subscribers(subscribers=_subscribers(email))
