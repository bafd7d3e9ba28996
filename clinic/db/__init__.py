"""PostgreSQL that cannot hang a request: the database backend the site runs on.

ENGINE "clinic.db" is Django's PostgreSQL backend with three guards (clinic.db.base):

- a *deadline* on every statement, commit and health check, kept by this process rather
  than the server: a server that stops answering (paused, its machine frozen, a network
  that drops packets silently) cannot keep a worker waiting past it. The server's own
  statement_timeout (settings: DATABASE_STATEMENT_TIMEOUT) normally ends a slow query first;
  the deadline is a second later and cuts the connection under the waiting call;
- a *breaker*: after the server could not be reached or did not answer by the deadline,
  this process leaves it alone for a few seconds, so the rest of the request (its error
  page) and the next requests answer at once instead of each waiting out a timeout;
- the connect, statement, lock and idle-in-transaction timeouts themselves are libpq and
  server options set in settings (DATABASE_CONNECT_TIMEOUT and friends).
"""

import threading
from contextlib import contextmanager

_local = threading.local()


@contextmanager
def database_deadline(seconds):
    """Within this block, no statement waits for the database longer than `seconds` (0: no
    limit but the server's own)."""
    previous = getattr(_local, "seconds", None)
    _local.seconds = seconds
    try:
        yield
    finally:
        _local.seconds = previous


def deadline_override():
    return getattr(_local, "seconds", None)
