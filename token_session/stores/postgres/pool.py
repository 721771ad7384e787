"""Where the blocking store gets a connection: a pool of its own, a psycopg_pool
``ConnectionPool`` or one ``psycopg.Connection`` the user gave. Each ``acquire`` waits no
later than the operation's deadline."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Mapping
from typing import Any, Protocol

import psycopg

from ...errors import BackendUnavailableError, InvalidArgumentError
from ..flowstore import Slots
from .wire import StalledError, unavailable

__all__ = ["DEFAULT_POOL_SIZE", "PostgresPool", "Source", "connect_timeout", "source_for"]

DEFAULT_POOL_SIZE = 10  # node-postgres Pool's `max`


def connect_timeout(deadline: float) -> int:
    """libpq's ``connect_timeout`` (whole seconds, at least 2 as libpq counts it) for what
    is left before ``deadline``; no time left is a stall."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise StalledError("PostgreSQL server did not answer in time")
    return max(2, math.ceil(remaining))


def _close_quietly(connection: psycopg.Connection[Any]) -> None:
    with contextlib.suppress(Exception):
        connection.close()


class Source(Protocol):
    def acquire(self, deadline: float) -> tuple[psycopg.Connection[Any], bool]:
        """A connection, and whether it was used before (it may have been dropped since)."""
        ...

    def release(self, connection: psycopg.Connection[Any], *, broken: bool) -> None: ...

    def discard_idle(self) -> None: ...

    def close(self) -> None: ...


class PostgresPool:
    """A thread-safe pool of psycopg connections, as node-postgres's ``Pool`` is to the Node
    store: opened on demand, at most ``size`` at once (10), a caller waiting while all are
    busy. ``connect_args`` go to ``psycopg.connect``."""

    def __init__(
        self, conninfo: str = "", *, size: int = DEFAULT_POOL_SIZE, **connect_args: Any
    ) -> None:
        self.conninfo = conninfo
        self.size = size
        self.connect_args = {**connect_args, "autocommit": True}
        self._slots: Slots[psycopg.Connection[Any]] = Slots(size)

    def acquire(self, deadline: float) -> tuple[psycopg.Connection[Any], bool]:
        def left() -> float:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StalledError("no PostgreSQL connection free in time")
            return remaining

        idle = self._slots.take(left, _closed)
        if idle is not None:
            return idle, True
        try:
            connection = psycopg.Connection.connect(
                self.conninfo, connect_timeout=connect_timeout(deadline), **self.connect_args
            )
        except BaseException as exc:
            self._slots.forget()
            if isinstance(exc, psycopg.OperationalError):
                raise unavailable(exc) from exc
            raise
        return connection, False

    def release(self, connection: psycopg.Connection[Any], *, broken: bool = False) -> None:
        if broken or self._slots.closed:
            _close_quietly(connection)
            self._slots.forget()
            return
        self._slots.put(connection)

    def discard_idle(self) -> None:
        """Close the idle connections (one was found dropped: the others likely were)."""
        for connection in self._slots.drain():
            _close_quietly(connection)

    def close(self) -> None:
        for connection in self._slots.drain(close=True):
            _close_quietly(connection)

    def __enter__(self) -> PostgresPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _closed() -> BaseException:
    return BackendUnavailableError("the PostgreSQL pool is closed")


class _UserPool:
    """A psycopg_pool ``ConnectionPool`` the user made (and closes)."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    def acquire(self, deadline: float) -> tuple[psycopg.Connection[Any], bool]:
        from psycopg_pool import PoolTimeout

        try:
            connection: psycopg.Connection[Any] = self.pool.getconn(
                timeout=max(0.0, deadline - time.monotonic())
            )
        except PoolTimeout as exc:
            raise StalledError(f"no PostgreSQL connection from the pool in time: {exc}") from exc
        return connection, True

    def release(self, connection: psycopg.Connection[Any], *, broken: bool = False) -> None:
        if broken:
            _close_quietly(connection)  # the pool replaces a closed connection
        self.pool.putconn(connection)

    def discard_idle(self) -> None:
        self.pool.check()

    def close(self) -> None:
        pass


class _UserConnection:
    """One ``psycopg.Connection`` the user made: one operation at a time, under its lock."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self.connection = connection

    def acquire(self, deadline: float) -> tuple[psycopg.Connection[Any], bool]:
        if not self.connection.lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise StalledError("the PostgreSQL connection stayed busy")
        if self.connection.closed:
            self.connection.lock.release()
            raise BackendUnavailableError("the PostgreSQL connection given to the store is closed")
        return self.connection, False

    def release(self, connection: psycopg.Connection[Any], *, broken: bool = False) -> None:
        if broken:
            _close_quietly(connection)
        self.connection.lock.release()

    def discard_idle(self) -> None:
        pass

    def close(self) -> None:
        pass


def source_for(
    connection: object, conninfo: str, size: int | None, connect_args: Mapping[str, Any]
) -> tuple[Source, bool]:
    """The source for the ``connection`` argument, and whether the store owns it."""
    if connection is None:
        return PostgresPool(conninfo, size=size or DEFAULT_POOL_SIZE, **connect_args), True
    if isinstance(connection, PostgresPool):
        return connection, False
    if isinstance(connection, psycopg.Connection):
        return _UserConnection(connection), False
    with contextlib.suppress(ImportError):
        from psycopg_pool import ConnectionPool

        if isinstance(connection, ConnectionPool):
            return _UserPool(connection), False
    raise InvalidArgumentError(
        "connection must be a psycopg Connection, a psycopg_pool ConnectionPool or a "
        f"PostgresPool, not {type(connection).__name__}"
    )
