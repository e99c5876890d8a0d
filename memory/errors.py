"""Errors raised by the storage layer.

StorageError
├── DatabaseUnavailable   the database cannot be reached (retry later, check DADANG_DATABASE_URL)
└── MigrationError        the schema could not be brought to the current revision
"""


class StorageError(Exception):
    """Base class for storage failures."""


class DatabaseUnavailable(StorageError):
    """The database did not answer; the caller may retry once it is back."""


class MigrationError(StorageError):
    """Applying Alembic migrations failed; the message says which revision and why."""
