"""Where the blocking store gets PyMySQL connections: :class:`MySQLPool`, or one connection
the user made, shared."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import pymysql
from pymysql.connections import Connection

from ...errors import BackendUnavailableError
from .format import DEFAULT_CONNECTION_LIMIT, check_connection_limit
from .schema import Statement

__all__ = ["MySQLPool", "SharedConnection", "Source"]


def _close_quietly(connection: Connection[Any]) -> None:
    # already closed, or its socket is dead: either way it is gone
    with contextlib.suppress(Exception):
        connection.close()


class Source:
    """Connections for the store: ``acquire`` gives one and whether it was used before (it
    may have been dropped since), ``release`` takes it back (``broken``: to be closed)."""

    def acquire(self) -> tuple[Connection[Any], bool]:
        raise NotImplementedError

    def release(self, connection: Connection[Any], broken: bool = False) -> None:
        raise NotImplementedError

    def discard_idle(self) -> None:
        """Close the idle connections (after one was found dropped, the others likely were)."""

    def close(self) -> None:
        raise NotImplementedError

    def execute(self, connection: Connection[Any], statement: Statement) -> Any:
        with connection.cursor() as cursor:
            cursor.execute(statement.sql, statement.params)
            result = cursor.fetchall() if statement.fetch else cursor.rowcount
        if not connection.get_autocommit():
            connection.commit()
        return result


class MySQLPool(Source):
    """A thread-safe pool of PyMySQL connections, as mysql2's ``createPool`` is to the Node
    store: connections are opened on demand, at most ``connection_limit`` at once, and a
    caller waits while all are busy. ``connect_args`` go to ``pymysql.connect``.
    """

    def __init__(
        self, *, connection_limit: int = DEFAULT_CONNECTION_LIMIT, **connect_args: Any
    ) -> None:
        self.connection_limit = check_connection_limit(connection_limit)
        self.connect_args = {"charset": "utf8mb4", "autocommit": True, **connect_args}
        self._changed = threading.Condition(threading.Lock())
        self._idle: list[Connection[Any]] = []
        self._open = 0
        self._waiting = 0
        self._closed = False

    def acquire(self) -> tuple[Connection[Any], bool]:
        """A connection, and whether it was used before (it may have been dropped since)."""
        with self._changed:
            while True:
                if self._closed:
                    raise BackendUnavailableError("the MySQL pool is closed")
                if self._idle:
                    return self._idle.pop(), True
                if self._open < self.connection_limit:
                    self._open += 1
                    break
                self._waiting += 1
                try:
                    self._changed.wait()
                finally:
                    self._waiting -= 1
        try:
            return pymysql.connect(**self.connect_args), False
        except BaseException:
            self._forget()
            raise

    def _forget(self) -> None:
        with self._changed:
            self._open -= 1
            if self._waiting:
                self._changed.notify()

    def release(self, connection: Connection[Any], broken: bool = False) -> None:
        if broken or self._closed:
            _close_quietly(connection)
            self._forget()
            return
        with self._changed:
            self._idle.append(connection)
            if self._waiting:
                self._changed.notify()

    def discard_idle(self) -> None:
        with self._changed:
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            if self._waiting:
                self._changed.notify(len(idle))
        for connection in idle:
            _close_quietly(connection)

    def close(self) -> None:
        """Close the idle connections; busy ones are closed when released."""
        with self._changed:
            self._closed = True
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._changed.notify_all()
        for connection in idle:
            _close_quietly(connection)


class SharedConnection(Source):
    """One connection the user made, used by one operation at a time."""

    def __init__(self, connection: Connection[Any]) -> None:
        self.connection = connection
        self._lock = threading.Lock()

    def acquire(self) -> tuple[Connection[Any], bool]:
        self._lock.acquire()
        try:
            if not self.connection.open:
                self.connection.connect()  # the same object, connected again
                return self.connection, False
            return self.connection, True
        except BaseException:
            self._lock.release()
            raise

    def release(self, connection: Connection[Any], broken: bool = False) -> None:
        if broken:
            _close_quietly(connection)  # reopened by the next acquire
        self._lock.release()

    def close(self) -> None:
        if self.connection.open:
            _close_quietly(self.connection)
