"""Newsletter issues: written by staff, previewed, tested, then sent once to each subscriber."""

import csv
import email
import email.policy
import io
from collections import Counter
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.core import mail as django_mail
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from clinic import mail
from clinic.models import OutgoingEmail
from newsletter import services
from newsletter.models import Delivery, NewsletterIssue, Subscriber
from tests.conftest import REAL_WORKER, wait_for

CONFIRMED, PENDING, UNSUBSCRIBED = "confirmed", "pending", "unsubscribed"


# --- fixtures -----------------------------------------------------------------------------
@pytest.fixture
def make_subscribers(db):
    """make_subscribers(count, status="confirmed", prefix="reader"): rows written directly."""
    counter = iter(range(1, 1_000_000))

    def make(count, status=CONFIRMED, prefix="reader"):
        now = timezone.now()
        return Subscriber.objects.bulk_create(
            Subscriber(
                email=f"{prefix}{next(counter)}@example.com",
                status=status,
                signed_up_at=now,
                confirmed_at=now if status != PENDING else None,
                unsubscribed_at=now if status == UNSUBSCRIBED else None,
                consent_text="Email me the newsletter.",
                consent_at=now,
                consent_page="/newsletter/",
                consent_ip="203.0.113.0",
            )
            for _ in range(count)
        )

    return make


@pytest.fixture
def issue(clinic, make_article):
    article = make_article(title="Easing a stiff neck", summary="Three stretches for desk days.")
    issue = services.save_issue(
        issue=NewsletterIssue(
            subject="Spring news from the clinic",
            body="We have **new hours**. [Book a visit](/book/).\n\n<script>alert(1)</script>",
        )
    )
    issue.featured_articles.set([article])
    return issue


@pytest.fixture
def held(monkeypatch):
    """Nothing reaches the broker: the send and fan-out tasks are recorded instead.

    For tests that look at what is written, in either pass, without a worker sending it.
    """
    calls = {"sends": [], "fan_outs": []}
    monkeypatch.setattr(mail, "publish_sends", lambda ids, **kw: calls["sends"].extend(ids))
    monkeypatch.setattr(
        services, "publish_fan_out", lambda task, issue_id: calls["fan_outs"].append(issue_id)
    )
    return calls


@pytest.fixture
def staff_client(client, staff_user):
    staff_user.email = "dana@clinic.example"
    staff_user.save()
    client.force_login(staff_user)
    return client


def copies_by_recipient():
    """How many copies of an issue each address has in the outbox."""
    rows = OutgoingEmail.objects.filter(idempotency_key__startswith="newsletter:issue:")
    return Counter(address for row in rows for address in row.to)


def mark(email_id, state):
    """Put an outbox row in `state`, as the worker would have."""
    sent_at = timezone.now() if state == "sent" else None
    OutgoingEmail.objects.filter(pk=email_id).update(state=state, sent_at=sent_at)


def progress(issue):
    issue = NewsletterIssue.objects.with_progress().get(pk=issue.pk)
    return {
        "queued": issue.queued_count,
        "sent": issue.sent_count,
        "failed": issue.failed_count,
        "remaining": issue.remaining_count,
    }


class _Cells(HTMLParser):
    """The text of each <td> of a changelist row, by the field's class (field-queued, …)."""

    def __init__(self):
        super().__init__()
        self.rows, self._field = [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr":
            self.rows.append({})
        classes = (attrs.get("class") or "").split()
        field = next((c.removeprefix("field-") for c in classes if c.startswith("field-")), None)
        if tag in ("td", "th") and field and self.rows:
            self._field = field
            self.rows[-1][field] = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._field = None

    def handle_data(self, data):
        if self._field:
            self.rows[-1][self._field] += data.strip()


def changelist_rows(response):
    parser = _Cells()
    parser.feed(response.content.decode())
    return [row for row in parser.rows if row]


# --- writing and previewing ------------------------------------------------------------------
@pytest.mark.django_db
def test_the_preview_is_the_email_as_it_arrives_sanitised_with_cards_and_absolute_links(
    staff_client, issue
):
    url = reverse("admin:newsletter_issue_preview", args=[issue.pk])
    response = staff_client.get(url)
    assert response.status_code == 200
    assert "default-src 'none'" in response["Content-Security-Policy"]
    page = response.content.decode()
    assert "<script" not in page and "alert(1)" not in page
    assert "<strong>new hours</strong>" in page
    assert f'href="{settings.SITE_URL}/book/"' in page  # a relative link made absolute
    assert f'href="{settings.SITE_URL}/articles/' in page  # the featured article's card
    assert "Three stretches for desk days." in page
    assert page == services.preview_issue(issue=issue)["body_html"]

    text = staff_client.get(url, {"part": "text"})
    assert text["Content-Type"].startswith("text/plain")
    assert text.content.decode().startswith("Subject: Spring news from the clinic")
    assert "Easing a stiff neck" in text.content.decode()


@pytest.mark.django_db
def test_the_preview_is_for_staff_only(client, issue):
    response = client.get(reverse("admin:newsletter_issue_preview", args=[issue.pk]))
    assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.django_db
def test_a_test_send_reaches_only_the_staff_member_and_is_marked(
    staff_client, issue, make_subscribers, django_capture_on_commit_callbacks
):
    make_subscribers(3)
    url = reverse("admin:newsletter_issue_send", args=[issue.pk])
    with django_capture_on_commit_callbacks(execute=False):  # written, not sent
        response = staff_client.post(url, {"send_test": "1"})
    assert response.status_code == 302
    (row,) = OutgoingEmail.objects.all()
    assert row.to == ["dana@clinic.example"]
    assert row.subject == "[Test] Spring news from the clinic"
    assert row.category == OutgoingEmail.Category.TRANSACTIONAL
    assert not Delivery.objects.exists()
    issue.refresh_from_db()
    assert issue.status == "draft"


@pytest.mark.django_db
def test_an_issue_cannot_change_once_sending_started(issue, held):
    assert services.start_sending_issue(issue=issue) is True
    issue.subject = "Changed afterwards"
    with pytest.raises(services.IssueNotDraft):
        services.save_issue(issue=issue)
    # A double-clicked Send starts one send; a sent issue is never sent again.
    assert services.start_sending_issue(issue=issue) is True  # resumes, writes nobody twice
    NewsletterIssue.objects.filter(pk=issue.pk).update(status="sent", sent_at=timezone.now())
    assert services.start_sending_issue(issue=issue) is False


# --- sending ----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_each_copy_carries_one_click_unsubscribe_headers_and_footer_link(
    issue, make_subscribers, held, django_capture_on_commit_callbacks
):
    (reader,) = make_subscribers(1)
    services.start_sending_issue(issue=issue)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.fan_out_issue(issue_id=issue.pk) is True
    row = Delivery.objects.get(subscriber=reader).email
    link = services.unsubscribe_url(reader)
    assert link.startswith(settings.SITE_URL) and row.category == "bulk"
    assert mail.send_outgoing_email(email_id=row.pk) is True
    (message,) = django_mail.outbox
    sent = email.message_from_bytes(message.message().as_bytes(), policy=email.policy.default)
    # A long header may be folded onto a second line; unfolded it is the link.
    assert str(sent["List-Unsubscribe"]).strip() == f"<{link}>"
    assert sent["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert sent["To"] == reader.email
    assert link in message.body
    assert f'href="{link}"' in message.alternatives[0][0]
    assert held["sends"] == [row.pk]  # published once, on commit


@pytest.mark.django_db
def test_the_fan_out_writes_each_batch_in_a_fixed_number_of_queries(issue, make_subscribers, held):
    make_subscribers(20)
    services.start_sending_issue(issue=issue)
    rendered = services._render_issue_versions(issue)
    with CaptureQueriesContext(connection) as small:
        assert services.send_issue_batch(issue_id=issue.pk, batch_size=5, rendered=rendered) == 5
    with CaptureQueriesContext(connection) as large:
        assert services.send_issue_batch(issue_id=issue.pk, batch_size=15, rendered=rendered) == 15
    assert len(large) == len(small)


@pytest.mark.django_db(transaction=True)
def test_an_issue_reaches_500_confirmed_subscribers_once_even_when_the_send_runs_again(
    issue, make_subscribers, delivered, monkeypatch
):
    readers = make_subscribers(500)
    make_subscribers(15, status=PENDING, prefix="pending")
    make_subscribers(15, status=UNSUBSCRIBED, prefix="gone")

    # A worker starts the send, writes one batch, and dies: the fan-out never continues.
    with monkeypatch.context() as patch:
        patch.setattr(services, "publish_fan_out", lambda task, issue_id: None)
        assert services.start_sending_issue(issue=issue) is True
    assert services.send_issue_batch(issue_id=issue.pk, batch_size=120) == 120
    # Meanwhile one reader not reached yet unsubscribes.
    late = readers[-1]
    services.unsubscribe(subscriber=late)

    # Staff resume; in pass (b) the real worker fans out, and the send runs once more here.
    assert services.start_sending_issue(issue=issue) is True
    assert wait_for(lambda: NewsletterIssue.objects.get(pk=issue.pk).status == "sent", 60)
    assert services.fan_out_issue(issue_id=issue.pk) is True

    expected = {reader.email for reader in readers[:-1]}
    copies = copies_by_recipient()
    assert set(copies) == expected
    assert set(copies.values()) == {1}
    assert Delivery.objects.filter(issue=issue).count() == 499
    sent = OutgoingEmail.objects.filter(state="sent", idempotency_key__startswith="newsletter:")
    assert wait_for(lambda: sent.count() == 499, 120)
    subjects = delivered(expected=499)
    assert Counter(subjects) == {"Spring news from the clinic": 499}
    assert progress(issue) == {"queued": 0, "sent": 499, "failed": 0, "remaining": 0}


@pytest.mark.skipif(not REAL_WORKER, reason="reads what the real worker wrote (pass (b))")
@pytest.mark.django_db(transaction=True)
def test_the_real_worker_sends_the_headers_and_nothing_to_the_unsubscribed(
    issue, make_subscribers, delivered, mail_dir
):
    (reader,) = make_subscribers(1)
    make_subscribers(1, status=UNSUBSCRIBED, prefix="gone")
    services.start_sending_issue(issue=issue)
    sent = OutgoingEmail.objects.filter(state="sent", idempotency_key__startswith="newsletter:")
    assert wait_for(lambda: sent.exists(), 60)
    assert delivered(expected=1) == ["Spring news from the clinic"]
    (message,) = [
        email.message_from_string(chunk.lstrip(), policy=email.policy.default)
        for path in mail_dir.glob("*.log")
        for chunk in path.read_text().split("-" * 79)
        if chunk.strip()
    ]
    assert message["To"] == reader.email
    assert str(message["List-Unsubscribe"]).strip() == f"<{services.unsubscribe_url(reader)}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


@pytest.mark.django_db
def test_a_batch_that_fails_writes_nothing(issue, make_subscribers, held, monkeypatch):
    make_subscribers(3)
    services.start_sending_issue(issue=issue)

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(Delivery.objects, "bulk_create", broken)
    with pytest.raises(RuntimeError):
        services.send_issue_batch(issue_id=issue.pk)
    assert not OutgoingEmail.objects.exists()
    assert held["sends"] == []


# --- staff: progress, offers, subscribers --------------------------------------------------
@pytest.mark.django_db
def test_the_admin_shows_queued_sent_failed_and_remaining_without_a_query_per_issue(
    staff_client, issue, make_subscribers, held, make_article
):
    make_subscribers(10)
    services.start_sending_issue(issue=issue)
    services.send_issue_batch(issue_id=issue.pk, batch_size=7)
    emails = OutgoingEmail.objects.filter(newsletter_delivery__issue=issue).order_by("pk")
    ids = list(emails.values_list("pk", flat=True))
    for email_id in ids[:4]:
        mark(email_id, "sent")
    mark(ids[4], "failed")

    changelist = reverse("admin:newsletter_newsletterissue_changelist")
    with CaptureQueriesContext(connection) as one_issue:
        response = staff_client.get(changelist)
    (row,) = changelist_rows(response)
    assert (row["queued"], row["sent"], row["failed"], row["remaining"]) == ("2", "4", "1", "3")

    for n in range(5):
        services.save_issue(issue=NewsletterIssue(subject=f"Draft {n}", body="Soon."))
    with CaptureQueriesContext(connection) as six_issues:
        staff_client.get(changelist)
    assert len(six_issues) == len(one_issue)

    change = staff_client.get(
        reverse("admin:newsletter_newsletterissue_change", args=[issue.pk])
    ).content.decode()
    assert "Queued 2 · Sent 4 · Failed 1 · Remaining 3" in change


@pytest.mark.django_db
def test_a_new_article_is_offered_as_a_one_click_draft(staff_client, clinic, make_article):
    article = make_article(title="Why your calves cramp", summary="And what helps.")
    changelist = reverse("admin:newsletter_newsletterissue_changelist")
    offer = "Draft an issue from “Why your calves cramp”"
    assert offer in staff_client.get(changelist).content.decode()

    url = reverse("admin:newsletter_issue_draft_from_article", args=[article.pk])
    assert staff_client.get(url).status_code == 405  # a link prefetch drafts nothing
    response = staff_client.post(url)
    issue = NewsletterIssue.objects.get()
    assert response["Location"] == reverse(
        "admin:newsletter_newsletterissue_change", args=[issue.pk]
    )
    assert (issue.subject, issue.status) == ("Why your calves cramp", "draft")
    assert list(issue.featured_articles.all()) == [article]
    assert offer not in staff_client.get(changelist).content.decode()


@pytest.mark.django_db
def test_staff_send_from_the_admin_after_a_confirmation_page(
    staff_client, issue, make_subscribers, held, django_capture_on_commit_callbacks
):
    make_subscribers(4)
    url = reverse("admin:newsletter_issue_send", args=[issue.pk])
    page = staff_client.get(url).content.decode()
    assert "Send to 4 subscribers" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(url, {"send_all": "1"})
    assert response.status_code == 302
    issue.refresh_from_db()
    assert issue.status == "sending" and held["fan_outs"] == [issue.pk]


@pytest.mark.django_db
def test_subscribers_are_listed_filtered_searched_and_not_edited_by_hand(
    staff_client, make_subscribers
):
    make_subscribers(2)
    make_subscribers(1, status=PENDING, prefix="waiting")
    changelist = reverse("admin:newsletter_subscriber_changelist")
    page = staff_client.get(changelist, {"status__exact": "pending"}).content.decode()
    assert "waiting" in page and "reader1@" not in page
    page = staff_client.get(changelist, {"q": "reader2"}).content.decode()
    assert "reader2@example.com" in page and "reader1@" not in page
    assert staff_client.get(reverse("admin:newsletter_subscriber_add")).status_code == 403

    subscriber = Subscriber.objects.get(email="reader1@example.com")
    url = reverse("admin:newsletter_subscriber_change", args=[subscriber.pk])
    staff_client.post(url, {"email": "changed@example.com", "consent_text": "Forged"})
    subscriber.refresh_from_db()
    assert (subscriber.email, subscriber.consent_text) == (
        "reader1@example.com",
        "Email me the newsletter.",
    )


@pytest.mark.django_db
def test_csv_export_has_the_consent_record_and_defuses_formulas(staff_client, make_subscribers):
    reader, other = make_subscribers(2)
    Subscriber.objects.filter(pk=reader.pk).update(
        consent_page='=HYPERLINK("http://evil.example","x")',
        consent_text="@SUM(A1)",
    )
    Subscriber.objects.filter(pk=other.pk).update(consent_page="-1+2", consent_text="+cmd")
    response = staff_client.post(
        reverse("admin:newsletter_subscriber_changelist"),
        {"action": "export_csv", "_selected_action": [reader.pk, other.pk]},
    )
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["email"] for row in rows] == [reader.email, other.email]
    first, second = rows
    assert first["consent_page"] == '\'=HYPERLINK("http://evil.example","x")'
    assert first["consent_text"] == "'@SUM(A1)"
    assert (second["consent_page"], second["consent_text"]) == ("'-1+2", "'+cmd")
    assert first["status"] == "confirmed" and first["consent_ip"] == "203.0.113.0"
    assert first["signed_up_at"].startswith(str(timezone.now().year))


@pytest.mark.django_db
def test_erasing_people_removes_them_and_their_copies_but_the_issue_keeps_its_counts(
    staff_client, issue, make_subscribers, held
):
    readers = make_subscribers(4)
    services.start_sending_issue(issue=issue)
    services.fan_out_issue(issue_id=issue.pk)
    rows = {d.subscriber_id: d.email_id for d in Delivery.objects.all()}
    mark(rows[readers[0].pk], "sent")
    mark(rows[readers[1].pk], "failed")
    mark(rows[readers[3].pk], "sent")
    before = progress(issue)
    assert before == {"queued": 1, "sent": 2, "failed": 1, "remaining": 0}

    erased = readers[:3]
    response = staff_client.post(
        reverse("admin:newsletter_subscriber_changelist"),
        {"action": "delete_selected", "post": "yes", "_selected_action": [r.pk for r in erased]},
    )
    assert response.status_code == 302
    assert list(Subscriber.objects.all()) == [readers[3]]
    assert list(Delivery.objects.values_list("subscriber", flat=True)) == [readers[3].pk]
    assert copies_by_recipient() == {readers[3].email: 1}  # their addresses are gone
    assert progress(issue) == {"queued": 0, "sent": 2, "failed": 1, "remaining": 0}
    issue.refresh_from_db()
    assert (issue.erased_sent, issue.erased_failed, issue.erased_unsent) == (1, 1, 1)


@pytest.mark.django_db
def test_erase_is_offered_instead_of_a_plain_delete(staff_client, make_subscribers):
    make_subscribers(1)
    page = staff_client.get(reverse("admin:newsletter_subscriber_changelist")).content.decode()
    assert "Erase the selected people" in page
    assert "Export the selected people as CSV" in page


@pytest.mark.django_db
def test_unsubscribing_from_the_admin_goes_through_the_service(staff_client, make_subscribers):
    (reader,) = make_subscribers(1)
    with transaction.atomic():
        staff_client.post(
            reverse("admin:newsletter_subscriber_changelist"),
            {"action": "unsubscribe_selected", "_selected_action": [reader.pk]},
        )
    reader.refresh_from_db()
    assert reader.status == "unsubscribed" and reader.unsubscribed_at is not None
