"""Forward-only numbered SQL migrations, applied at start-up.

Files are ``NNNN_name.sql`` in ``storage/migrations``. Each runs in its own
transaction and is recorded with its checksum; a changed applied file stops
start-up. A session advisory lock makes concurrent start-ups safe: the second
process waits, then finds nothing left to do.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from psycopg import AsyncConnection

from storage.errors import MigrationError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any fixed 64-bit key; namespaced by this literal so other locks cannot collide.
_LOCK_KEY = int.from_bytes(hashlib.sha256(b"sanitrack.migrations").digest()[:8], "big", signed=True)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql_text: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql_text.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        migrations.append(Migration(int(match[1]), match[2], path.read_text("utf-8")))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration numbers in {directory}")
    return migrations


async def apply_migrations(url: str, directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Apply what is missing; return the versions applied by this call."""
    migrations = load_migrations(directory)
    applied_now: list[int] = []
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cursor = await conn.execute("SELECT version, checksum FROM schema_migrations")
            done = {version: checksum for version, checksum in await cursor.fetchall()}
            for migration in migrations:
                if migration.version in done:
                    if done[migration.version] != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.version:04d}_{migration.name} was changed "
                            "after it was applied; add a new migration instead"
                        )
                    continue
                async with conn.transaction():
                    # bytes: a migration holds several statements and no parameters.
                    await conn.execute(migration.sql_text.encode())
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum)"
                        " VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                log.info("applied migration %04d_%s", migration.version, migration.name)
                applied_now.append(migration.version)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now
