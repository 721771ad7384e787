"""MySQL / MariaDB store (see :mod:`.format`)."""

from __future__ import annotations

from .format import (
    DEFAULT_CHECK_EXPIRATION_INTERVAL,
    DEFAULT_CONNECTION_LIMIT,
    DEFAULT_EXPIRATION,
    SID_COLUMN_LENGTH,
    AsyncMySQLPool,
    AsyncMySQLStore,
    MySQLPool,
    MySQLRecords,
    MySQLSchema,
    MySQLStore,
    MySQLStoreCore,
    Statement,
)
from .format import expires_seconds as expires_seconds
from .format import js_round as js_round

__all__ = [
    "DEFAULT_CHECK_EXPIRATION_INTERVAL",
    "DEFAULT_CONNECTION_LIMIT",
    "DEFAULT_EXPIRATION",
    "SID_COLUMN_LENGTH",
    "AsyncMySQLPool",
    "AsyncMySQLStore",
    "MySQLPool",
    "MySQLRecords",
    "MySQLSchema",
    "MySQLStore",
    "MySQLStoreCore",
    "Statement",
]
