"""Session stores, one module per backend, and ``from_url`` to pick one by URL scheme."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import InvalidArgumentError
from .base import AsyncStore, Session, Store
from .memory import AsyncMemoryStore, MemoryStore

if TYPE_CHECKING:
    from .mongo import AsyncMongoStore, MongoStore
    from .mysql import AsyncMySQLStore, MySQLStore
    from .postgres import AsyncPostgresStore, PostgresStore
    from .redis import AsyncRedisStore, RedisStore

__all__ = [
    "AsyncMemoryStore",
    "AsyncMongoStore",
    "AsyncMySQLStore",
    "AsyncPostgresStore",
    "AsyncRedisStore",
    "AsyncStore",
    "MemoryStore",
    "MongoStore",
    "MySQLStore",
    "PostgresStore",
    "RedisStore",
    "Session",
    "Store",
    "async_from_url",
    "from_url",
]

# scheme -> (module, sync class, async class); modules load on first use, so a backend's
# driver is only needed by those who use that backend.
_SCHEMES: dict[str, tuple[str, str, str]] = {
    "memory": (".memory", "MemoryStore", "AsyncMemoryStore"),
    "redis": (".redis", "RedisStore", "AsyncRedisStore"),
    "rediss": (".redis", "RedisStore", "AsyncRedisStore"),
    "mongodb": (".mongo", "MongoStore", "AsyncMongoStore"),
    "mongodb+srv": (".mongo", "MongoStore", "AsyncMongoStore"),
    "mysql": (".mysql", "MySQLStore", "AsyncMySQLStore"),
    "postgresql": (".postgres", "PostgresStore", "AsyncPostgresStore"),
    "postgres": (".postgres", "PostgresStore", "AsyncPostgresStore"),
}


def __getattr__(name: str) -> Any:
    """Backend store classes, imported when first asked for (so are their drivers)."""
    for module, *classes in _SCHEMES.values():
        if name in classes:
            return getattr(importlib.import_module(module, __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _store_class(url: str, position: int) -> Any:
    if not isinstance(url, str):
        raise InvalidArgumentError(f"store URL must be a str, not {type(url).__name__}")
    scheme = urlsplit(url).scheme
    if scheme not in _SCHEMES:
        known = ", ".join(f"{name}://" for name in sorted(_SCHEMES))
        raise InvalidArgumentError(
            f"unknown store URL scheme {scheme!r} in {url!r}; known: {known}"
        )
    entry = _SCHEMES[scheme]
    module = importlib.import_module(entry[0], __name__)
    return getattr(module, entry[position])


def from_url(url: str, **options: Any) -> Store:
    """The blocking store for ``url`` (``memory://``, ``redis://``, ``rediss://``, ...);
    ``options`` are the store's keywords."""
    store: Store = _store_class(url, 1).from_url(url, **options)
    return store


def async_from_url(url: str, **options: Any) -> AsyncStore:
    """The asyncio store for ``url``; ``options`` are the store's keywords."""
    store: AsyncStore = _store_class(url, 2).from_url(url, **options)
    return store
