"""The newsletter for staff: subscribers (view, export, erase) and issues (write, test, send)."""

from django.conf import settings
from django.contrib import admin, messages
from django.http import Http404, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from articles.models import Article
from clinic.i18n import field_name, translated_languages

from . import services
from .models import NewsletterIssue, Subscriber

# The preview shows staff-written (sanitised) HTML from the admin's own address: it may
# style itself as mail clients allow, and nothing else.
PREVIEW_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; sandbox"


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    list_display = [
        "email",
        "status",
        "language",
        "signed_up_at",
        "confirmed_at",
        "unsubscribed_at",
    ]
    list_filter = ["status", "language", "signed_up_at", "confirmed_at", "unsubscribed_at"]
    search_fields = ["email"]
    date_hierarchy = "signed_up_at"
    actions = ["export_csv", "unsubscribe_selected"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "email",
                    "status",
                    "language",
                    "signed_up_at",
                    "confirmed_at",
                    "unsubscribed_at",
                    "confirmation_sent_at",
                ]
            },
        ),
        (
            "Consent record",
            {"fields": ["consent_text", "consent_at", "consent_page", "consent_ip"]},
        ),
    ]
    # People join only by confirming their own address, and the consent record is evidence:
    # nothing here is typed by hand. Unsubscribing and erasing are actions.
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]

    def has_add_permission(self, request):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_actions(self, request):
        # Deleting is erasing: it must keep the issues' counts, and says so.
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            function, name, _ = actions["delete_selected"]
            actions["delete_selected"] = (
                function,
                name,
                "Erase the selected people (address, consent record and deliveries; "
                "issues keep their counts)",
            )
        return actions

    def delete_model(self, request, obj):
        services.erase_subscribers(subscribers=Subscriber.objects.filter(pk=obj.pk))

    def delete_queryset(self, request, queryset):
        services.erase_subscribers(subscribers=queryset)

    @admin.action(description="Export the selected people as CSV", permissions=["view"])
    def export_csv(self, request, queryset):
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        stamp = timezone.localtime().strftime("%Y-%m-%d")
        response["Content-Disposition"] = f'attachment; filename="subscribers-{stamp}.csv"'
        services.write_subscribers_csv(subscribers=queryset, out=response)
        return response

    @admin.action(description="Unsubscribe the selected people", permissions=["change"])
    def unsubscribe_selected(self, request, queryset):
        count = sum(services.unsubscribe(subscriber=subscriber) for subscriber in queryset)
        self.message_user(request, f"{count} person(s) unsubscribed.", messages.SUCCESS)


@admin.register(NewsletterIssue)
class NewsletterIssueAdmin(admin.ModelAdmin):
    list_display = [
        "subject",
        "status",
        "created_at",
        "sent_at",
        "queued",
        "sent",
        "failed",
        "remaining",
    ]
    list_filter = ["status"]
    search_fields = ["subject"]
    filter_horizontal = ["featured_articles"]
    change_form_template = "admin/newsletter/newsletterissue/change_form.html"
    change_list_template = "admin/newsletter/newsletterissue/change_list.html"
    content_fields = [
        "subject",
        "body",
        *(
            field_name(field, code)
            for code in translated_languages(NewsletterIssue, "subject")
            for field in ("subject", "body")
        ),
        "featured_articles",
    ]
    progress_fields = ["status", "progress", "created_at", "sending_started_at", "sent_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).with_progress()

    def get_fields(self, request, obj=None):
        return self.content_fields if obj is None else [*self.content_fields, *self.progress_fields]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not obj.is_draft:
            # Every subscriber gets the same issue: it is frozen once sending starts.
            return [*self.content_fields, *self.progress_fields]
        return self.progress_fields

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or obj.is_draft)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "featured_articles":
            kwargs["queryset"] = Article.objects.published().order_by("-published_at")
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        services.save_issue(issue=obj)

    @admin.display(description="queued")
    def queued(self, obj):
        return obj.queued_count

    @admin.display(description="sent")
    def sent(self, obj):
        return obj.sent_count

    @admin.display(description="failed")
    def failed(self, obj):
        return obj.failed_count

    @admin.display(description="remaining")
    def remaining(self, obj):
        return obj.remaining_count

    @admin.display(description="progress")
    def progress(self, obj):
        return (
            f"Queued {obj.queued_count} · Sent {obj.sent_count} · Failed {obj.failed_count} · "
            f"Remaining {obj.remaining_count}"
            + (f" (erased since: {obj.erased_count})" if obj.erased_count else "")
        )

    def get_urls(self):
        def view(function):
            return self.admin_site.admin_view(function)

        return [
            path("<int:pk>/preview/", view(self.preview_view), name="newsletter_issue_preview"),
            path("<int:pk>/send/", view(self.send_view), name="newsletter_issue_send"),
            path(
                "draft-from-article/<int:article_pk>/",
                view(self.draft_from_article_view),
                name="newsletter_issue_draft_from_article",
            ),
            *super().get_urls(),
        ]

    def _issue(self, request, pk):
        issue = self.get_object(request, str(pk))
        if issue is None or not self.has_view_permission(request, issue):
            raise Http404
        return issue

    def preview_view(self, request, pk):
        """The issue exactly as it will arrive: the HTML part, or ?part=text for the text;
        ?lang=<code> for the copy the subscribers reading that language get."""
        asked = request.GET.get("lang", "")
        language = asked if asked in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE
        copy = services.preview_issue(issue=self._issue(request, pk), language=language)
        if request.GET.get("part") == "text":
            body = f"Subject: {copy['subject']}\n\n{copy['body_text']}"
            response = HttpResponse(body, content_type="text/plain; charset=utf-8")
        else:
            response = HttpResponse(copy["body_html"])
        response["Content-Security-Policy"] = PREVIEW_CSP
        return response

    def send_view(self, request, pk):
        """Send a test to yourself, or send (or resume sending) to every confirmed subscriber."""
        issue = self._issue(request, pk)
        if not self.has_change_permission(request, issue):
            raise Http404
        change_url = reverse("admin:newsletter_newsletterissue_change", args=[issue.pk])
        if request.method == "POST":
            if "send_test" in request.POST:
                if not request.user.email:
                    self.message_user(
                        request, "Your staff account has no email address.", messages.ERROR
                    )
                    return HttpResponseRedirect(request.path)
                services.send_test_issue(issue=issue, to=request.user.email)
                self.message_user(
                    request, f"A test copy is on its way to {request.user.email}.", messages.SUCCESS
                )
                return HttpResponseRedirect(request.path)
            if "send_all" in request.POST:
                if services.start_sending_issue(issue=issue):
                    self.message_user(
                        request,
                        "Sending to every confirmed subscriber. The progress is shown below.",
                        messages.SUCCESS,
                    )
                else:
                    self.message_user(request, "This issue was sent already.", messages.WARNING)
                return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Test and send “{issue.subject}”",
            "issue": issue,
            "change_url": change_url,
            "confirmed_count": Subscriber.objects.confirmed().count(),
        }
        return TemplateResponse(request, "admin/newsletter/newsletterissue/send.html", context)

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "articles_to_offer": services.articles_to_offer()
            if self.has_add_permission(request)
            else [],
        }
        return super().changelist_view(request, extra_context)

    def draft_from_article_view(self, request, article_pk):
        """One click (a POST): a draft issue announcing a published article, opened to edit."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_add_permission(request):
            raise Http404
        article = get_object_or_404(Article.objects.published(), pk=article_pk)
        issue = services.draft_issue_from_article(article=article)
        self.message_user(
            request, "A draft issue was written from the article: edit it, then send it."
        )
        return HttpResponseRedirect(
            reverse("admin:newsletter_newsletterissue_change", args=[issue.pk])
        )
