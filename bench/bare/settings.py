"""The ceiling for bench/http.py: bare Django rendering a ~10 KB template, nothing else.

No database, no middleware, no sessions: what one Django request costs at least on this
machine, served by the same gunicorn settings as the site.
"""

from pathlib import Path

DEBUG = False
SECRET_KEY = "bench-only"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "bench.bare.urls"
WSGI_APPLICATION = "bench.bare.wsgi.application"
INSTALLED_APPS = []
MIDDLEWARE = []
DATABASES = {}
USE_I18N = False
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [Path(__file__).resolve().parent],
    }
]
