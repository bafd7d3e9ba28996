"""Exit 0 when the PostgreSQL and Redis given as arguments answer (used by `make test`)."""

import socket
import sys
from urllib.parse import urlsplit


def reachable(url, default_port):
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    database_url, redis_url = sys.argv[1], sys.argv[2]
    sys.exit(0 if reachable(database_url, 5432) and reachable(redis_url, 6379) else 1)
