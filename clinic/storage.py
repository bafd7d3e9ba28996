"""Uploads on S3-compatible object storage, so several app servers share them.

The bucket stays private: nothing in it is public, and every page links to the site's own
/media/ address (clinic.views.media), which checks who may see a file before it answers
(a draft's sizes and every hero original only to staff). So this storage's url() is the
site's address, never the bucket's; signed_url() gives a short-lived signed address for the
one case that wants the bucket directly (public sizes, with MEDIA_S3_REDIRECT_PUBLIC).
"""

from urllib.parse import urljoin

from django.conf import settings
from django.utils.encoding import filepath_to_uri
from storages.backends.s3 import S3Storage


class S3MediaStorage(S3Storage):
    """django-storages' S3 backend with the site's own /media/ addresses."""

    def url(self, name, parameters=None, expire=None, http_method=None):
        # The page cache keeps pages for minutes: a signed address in them would expire,
        # and an unsigned one would bypass the access check. The media view serves it.
        return urljoin(settings.MEDIA_URL, filepath_to_uri(name))

    def signed_url(self, name, *, expire):
        """A GET address for `name` straight from the bucket, valid `expire` seconds."""
        return super().url(name, expire=expire)


def is_object_storage(storage):
    return isinstance(getattr(storage, "_wrapped", storage), S3Storage)
