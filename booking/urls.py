from datetime import date, time

from django.urls import path, register_converter

from . import views


class DateConverter:
    regex = r"\d{4}-\d{2}-\d{2}"

    def to_python(self, value):
        return date.fromisoformat(value)  # a ValueError (say 2026-02-30) is a 404

    def to_url(self, value):
        return value if isinstance(value, str) else value.isoformat()


class TimeConverter:
    regex = r"\d{4}"

    def to_python(self, value):
        return time(int(value[:2]), int(value[2:]))

    def to_url(self, value):
        return value if isinstance(value, str) else f"{value:%H%M}"


register_converter(DateConverter, "day")
register_converter(TimeConverter, "hhmm")

app_name = "booking"
urlpatterns = [
    path("", views.choose_service, name="start"),
    path("appointment/<str:token>/", views.confirmation, name="confirmation"),
    path("appointment/<str:token>/appointment.ics", views.calendar_file, name="ics"),
    path("manage/<str:token>/", views.manage, name="manage"),
    path("manage/<str:token>/cancel/", views.cancel, name="cancel"),
    path("manage/<str:token>/move/", views.reschedule_day, name="reschedule"),
    path("manage/<str:token>/move/<day:day>/", views.reschedule_time, name="reschedule_time"),
    path(
        "manage/<str:token>/move/<day:day>/<hhmm:at>/",
        views.reschedule_confirm,
        name="reschedule_confirm",
    ),
    path(
        "therapist-calendar/<str:token>/visits.ics",
        views.therapist_calendar_feed,
        name="therapist_feed",
    ),
    path("waitlist/joined/", views.waitlist_joined, name="waitlist_joined"),
    path("waitlist/leave/<str:token>/", views.leave_waitlist, name="leave_waitlist"),
    path("waitlist/offer/<str:token>/", views.waitlist_offer, name="waitlist_offer"),
    path("health/<str:token>/", views.health_history, name="health_history"),
    path("<slug:service>/", views.choose_therapist, name="therapist"),
    path("<slug:service>/<slug:therapist>/", views.choose_day, name="day"),
    path("<slug:service>/<slug:therapist>/waitlist/", views.join_waitlist, name="waitlist"),
    path("<slug:service>/<slug:therapist>/<day:day>/", views.choose_time, name="time"),
    path(
        "<slug:service>/<slug:therapist>/<day:day>/<hhmm:at>/",
        views.details,
        name="details",
    ),
]
