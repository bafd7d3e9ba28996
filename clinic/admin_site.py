from functools import update_wrapper

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.shortcuts import redirect
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect


class ClinicAdminSite(admin.AdminSite):
    """The admin, titled with the clinic's name as staff saved it.

    When STAFF_REQUIRE_2FA is on, only a session signed in with a second factor gets in;
    a staff member with no device yet is sent to set one up, and can do nothing else.
    """

    index_title = "Run the clinic's site"
    site_url = "/"
    login_template = "admin/staff/login.html"

    @property
    def login_form(self):
        from .auth import StaffLoginForm

        return StaffLoginForm

    def each_context(self, request):
        from .services import get_clinic_profile

        context = super().each_context(request)
        profile = get_clinic_profile()
        name = profile.name if profile else "Clinic"
        context["site_header"] = f"{name} — staff"
        context["site_title"] = name
        return context

    def has_permission(self, request):
        from .auth import two_factor_required

        return super().has_permission(request) and (
            not two_factor_required() or request.user.is_verified()
        )

    def admin_view(self, view, cacheable=False):
        from .auth import needs_device_setup

        if view == self.logout:
            # Signing out needs no second factor: someone half signed in must be able to leave.
            return update_wrapper(csrf_protect(never_cache(view)), view)
        guarded = super().admin_view(view, cacheable)

        def inner(request, *args, **kwargs):
            if needs_device_setup(request):
                return redirect("admin:two_factor_setup")
            return guarded(request, *args, **kwargs)

        return update_wrapper(inner, guarded)

    def login(self, request, extra_context=None):
        from .auth import needs_device_setup

        if request.user.is_authenticated and needs_device_setup(request):
            return redirect("admin:two_factor_setup")
        return super().login(request, extra_context)

    def get_urls(self):
        from .auth import two_factor_setup

        def setup(request):
            return two_factor_setup(request, self)

        setup_view = csrf_protect(never_cache(setup))
        return [
            path("2fa/setup/", setup_view, name="two_factor_setup"),
            *super().get_urls(),
        ]


class ClinicAdminConfig(AdminConfig):
    default_site = "clinic.admin_site.ClinicAdminSite"

    def ready(self):
        super().ready()  # autodiscovers every app's admin, axes' included
        from axes.models import AccessAttempt

        from .auth import StaffAccessAttemptAdmin

        # Failed sign-ins with an action to unlock them (staff with delete rights).
        admin.site.unregister(AccessAttempt)
        admin.site.register(AccessAttempt, StaffAccessAttemptAdmin)
