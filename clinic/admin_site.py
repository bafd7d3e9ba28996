from django.contrib import admin
from django.contrib.admin.apps import AdminConfig


class ClinicAdminSite(admin.AdminSite):
    """The admin, titled with the clinic's name as staff saved it."""

    index_title = "Run the clinic's site"
    site_url = "/"

    def each_context(self, request):
        from .services import get_clinic_profile

        context = super().each_context(request)
        profile = get_clinic_profile()
        name = profile.name if profile else "Clinic"
        context["site_header"] = f"{name} — staff"
        context["site_title"] = name
        return context


class ClinicAdminConfig(AdminConfig):
    default_site = "clinic.admin_site.ClinicAdminSite"
