import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")
django.setup(set_prefix=False)

# Django's handler, but a cached page is answered before Django's request handling starts.
from clinic.pagecache import WSGIHandler  # noqa: E402

application = WSGIHandler()
