"""Errors of the storage package, grouped by how the caller reacts."""


class StorageError(Exception):
    """Base of every storage error."""


class MigrationError(StorageError):
    """A migration file is malformed, or an applied one was changed afterwards."""


class EmbeddedPostgresError(StorageError):
    """The embedded PostgreSQL server could not be started."""
