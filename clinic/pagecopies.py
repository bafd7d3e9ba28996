"""Recent cached pages in each process's memory, served without asking Redis at all.

A page-cache hit that asks Redis costs a network round trip, more than Django takes to render
a small page. So each process keeps the pages it served lately (at most MAX_ENTRIES), tagged
with the page cache's version as usual, and serves one only while it knows the current
version without asking: a thread per process subscribes to a Redis channel on which every
bump_version() announces itself, re-reads the version on each announcement (the message is
only a nudge: two bumps' messages may arrive in either order) and at least every
REREAD_SECONDS besides (a silently dead subscription costs a second, not a stale page).

Until the thread has subscribed and read the version, or after any error, the version is
unknown and every lookup goes to Redis as before. A bump made by this process is known here
at once (announce), before the message comes back. Entries carry their own expiry (the
midnight and scheduled-article limits of clinic.pagecache), checked here too.

Only with the Redis cache (pass (b), production): other backends have no channels, and
LocMemCache is in-process anyway.
"""

import logging
import os
import threading
import time
from collections import OrderedDict
from contextlib import suppress

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

logger = logging.getLogger(__name__)

CHANNEL = "pagecache:announce"
MAX_ENTRIES = 256
REREAD_SECONDS = 1.0


def _source(cache):
    """What identifies the Redis behind `cache` (None: not Redis)."""
    if not isinstance(cache, RedisCache):
        return None
    return (tuple(cache._servers), cache.key_prefix)


class LocalCopies:
    def __init__(self):
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self):
        self._lock = threading.Lock()
        self._version = None
        self._generation = 0
        self._entries = OrderedDict()
        self._source = None
        self._thread = None

    # --- the version ----------------------------------------------------------------------
    def version(self):
        """The page cache's version as last announced, or None when not known for sure."""
        source = _source(caches["default"])
        if source is None or source != self._source:
            return None
        return self._version

    def follow(self, version_key):
        """Start listening, if not yet, to the Redis that just answered with a version (so
        nothing here tries a Redis that is down: the cache's back-off decides that)."""
        source = _source(caches["default"])
        if source is not None and (source != self._source or self._thread is None):
            self._follow(source, version_key)

    def announce(self, version):
        """This process set the version: trust it now, and no reading made before it."""
        with self._lock:
            self._generation += 1
            self._version = version

    def _set(self, version, generation):
        with self._lock:
            if generation is None or generation == self._generation:
                self._version = version

    def _follow(self, source, version_key):
        with self._lock:
            if self._source == source and self._thread is not None:
                return
            self._source = source
            self._version = None
            self._entries.clear()
            self._thread = threading.Thread(
                target=self._listen, args=(source, version_key), name="pagecache", daemon=True
            )
            self._thread.start()

    def _listen(self, source, version_key):
        cache = caches["default"]  # this thread's own cache object
        while self._source == source:
            pubsub = None
            try:
                client = cache._cache.get_client(write=False)
                pubsub = client.pubsub()
                pubsub.subscribe(cache.make_key(CHANNEL))
                nudged, last = True, 0.0
                while self._source == source:
                    if nudged or time.monotonic() - last >= REREAD_SECONDS:
                        generation = self._generation
                        self._set(cache.get(version_key), generation)
                        last = time.monotonic()
                    message = pubsub.get_message(timeout=REREAD_SECONDS)
                    nudged = message is not None
            except Exception:  # noqa: BLE001  # unknown version: lookups ask Redis meanwhile
                self._set(None, None)
                logger.warning("Page-cache announcements unavailable", exc_info=True)
                time.sleep(REREAD_SECONDS)
            finally:
                if pubsub is not None:
                    with suppress(Exception):  # closing a broken link
                        pubsub.close()

    # --- the entries ----------------------------------------------------------------------
    def entry(self, key, version):
        """The kept entry for `key` at `version`, if it has not expired."""
        found = self._entries.get(key)
        if found is None or found[0] != version or found[5] <= time.time():
            return None
        return found

    def keep(self, key, entry):
        if self._source is None:
            return
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > MAX_ENTRIES:
                self._entries.popitem(last=False)


copies = LocalCopies()


def publish(version):
    """Tell every process that the version changed (and this one at once)."""
    copies.announce(version)
    cache = caches["default"]
    if _source(cache) is None:
        return
    try:
        cache._cache.get_client(write=True).publish(cache.make_key(CHANNEL), "bumped")
    except Exception:  # noqa: BLE001  # the others re-read the version within a second
        logger.warning("Could not announce a page-cache version", exc_info=True)
