"""The site's cache on Redis, made optional: a Redis that is down or hanging is a cache miss.

Every page reads the clinic's profile through the cache and the rate limits count in it, so
a Redis outage must cost speed, never a page. Django's RedisCache raises on any Redis error;
this subclass logs a warning, answers as if the key were missing, and then leaves Redis
alone for a few seconds (in this process), so a hanging Redis costs one socket timeout per
process every RETRY_AFTER_SECONDS instead of one per cache call. The socket timeouts come
from the cache's OPTIONS (settings: REDIS_TIMEOUT).

Why not django-redis with DJANGO_REDIS_IGNORE_EXCEPTIONS: it would swallow the errors just
as well, but it waits a full timeout on every call while Redis hangs (a page makes several)
and adds a dependency for what fits in this file.
"""

import logging
import time

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# Seconds Redis is left alone after a failure before the next call tries it again.
RETRY_AFTER_SECONDS = 5.0

# {servers: monotonic time before which Redis is not tried}, shared by every thread's client
# (Django builds one cache object per thread).
_down_until = {}


class ResilientRedisCacheClient(RedisCacheClient):
    def __init__(self, servers, **options):
        super().__init__(servers, **options)
        self._key = tuple(servers)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        # Django builds a new redis.Redis for every call, and redis-py fills a table of 170
        # response callbacks each time: a third of a cached page's cost. One per pool will
        # do (it is thread-safe; the connections come from the pool either way).
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(
                connection_pool=self._get_connection_pool(write)
            )
        return client

    def _call(self, miss, method, *args):
        """Run `method`, or answer `miss` while Redis is down or after it fails."""
        if time.monotonic() < _down_until.get(self._key, 0):
            return miss
        try:
            return method(*args)
        except (RedisError, OSError) as exc:
            _down_until[self._key] = time.monotonic() + RETRY_AFTER_SECONDS
            logger.warning(
                "Cache unavailable, reading from the database for %ss: %s: %s",
                RETRY_AFTER_SECONDS,
                exc.__class__.__name__,
                exc,
            )
            return miss

    def add(self, key, value, timeout):
        return self._call(False, super().add, key, value, timeout)

    def get(self, key, default):
        return self._call(default, super().get, key, default)

    def set(self, key, value, timeout):
        return self._call(None, super().set, key, value, timeout)

    def touch(self, key, timeout):
        return self._call(False, super().touch, key, timeout)

    def delete(self, key):
        return self._call(False, super().delete, key)

    def get_many(self, keys):
        return self._call({}, super().get_many, keys)

    def has_key(self, key):
        return self._call(False, super().has_key, key)

    def incr(self, key, delta):
        # A missing key raises ValueError (Django's contract); an unreachable one is missing.
        result = self._call(_MISSING, super().incr, key, delta)
        if result is _MISSING:
            raise ValueError(f"Key {key!r} not found (the cache is unavailable).")
        return result

    def set_many(self, data, timeout):
        return self._call(None, super().set_many, data, timeout)

    def delete_many(self, keys):
        return self._call(None, super().delete_many, keys)

    def clear(self):
        return self._call(False, super().clear)


_MISSING = object()


class ResilientRedisCache(RedisCache):
    """Django's RedisCache whose failures are logged and read as misses (see the module)."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ResilientRedisCacheClient
