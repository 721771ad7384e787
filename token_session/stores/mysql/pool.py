"""Where the blocking store gets PyMySQL connections: :class:`MySQLPool`, or one connection
the user made, shared."""

from __future__ import annotations

import contextlib
import select
import threading
import time
from collections.abc import Iterator
from typing import Any

import pymysql
from pymysql.connections import Connection
from pymysql.constants.CLIENT import MULTI_STATEMENTS

from ...errors import BackendUnavailableError
from ..flowstore import Slots
from ..spin import ReplySpins
from .connections import Deadline, StaleConnectionError
from .format import DEFAULT_CONNECTION_LIMIT, check_connection_limit
from .lean import run_text
from .schema import Statement
from .watchdog import BUSY

__all__ = ["RECENT", "MySQLPool", "SharedConnection", "Source"]

# A connection used this recently (seconds) is not polled for a hang-up before a read (a
# system call): a server mostly drops connections that idled, and a read lost on a reused
# connection runs again anyway. A write is always preceded by the poll: one lost with its
# reply is never sent again, so it must not be sent on a connection already closed.
RECENT = 0.005


# a poll object per descriptor number (polling looks at what the number is now): made once
_POLLERS: dict[int, Any] = {}


def hung_up(fd: int) -> bool:
    """Whether the server closed an idle connection's socket (or sent something unasked,
    as MySQL's goodbye on ``wait_timeout``): then nothing is to be sent on it."""
    if fd < 0:
        return True
    poller = _POLLERS.get(fd)
    if poller is None:
        if not hasattr(select, "poll"):  # Windows
            return bool(select.select([fd], [], [], 0)[0])
        poller = _POLLERS[fd] = select.poll()
        poller.register(fd, select.POLLIN | getattr(select, "POLLRDHUP", 0))
    return bool(poller.poll(0))


def check_idle(hung: bool) -> None:
    """:class:`StaleConnectionError` if the connection was found ``hung`` up."""
    if hung:
        raise StaleConnectionError("the MySQL server closed the connection while it was idle")


@contextlib.contextmanager
def _socket_timeouts(given: Connection[Any], seconds: float) -> Iterator[None]:
    """PyMySQL's read and write timeouts at ``seconds`` meanwhile (it applies them to the
    socket before each read and write), then back to the connection's own."""
    connection: Any = given
    saved = connection._read_timeout, connection._write_timeout
    connection._read_timeout = connection._write_timeout = seconds
    try:
        yield
    finally:
        connection._read_timeout, connection._write_timeout = saved


def _connect(connection: Connection[Any], deadline: Deadline) -> None:
    """``connection.connect()``, handshake included, within ``deadline``."""
    left = deadline.left()
    saved = connection.connect_timeout
    connection.connect_timeout = min(saved or left, left)
    try:
        with _socket_timeouts(connection, left):
            connection.connect()
    finally:
        connection.connect_timeout = saved


def _close_quietly(connection: Connection[Any]) -> None:
    # already closed, or its socket is dead: either way it is gone; the goodbye it sends
    # waits for no stalled server
    with contextlib.suppress(Exception), _socket_timeouts(connection, 0.5):
        connection.close()


class Source:
    """Connections for the store: ``acquire`` gives one and whether it was used before (it
    may have been dropped since), ``release`` takes it back (``broken``: to be closed).
    Each waits at most what is left of the operation's deadline. ``one_text``: whether
    get_and_touch sends its read and touch in one text (its connections take several
    statements in one text)."""

    def acquire(self, deadline: Deadline) -> tuple[Connection[Any], bool]:
        raise NotImplementedError

    one_text = False
    # how execute waits for each statement's answer (see ..spin); the store sets it
    spins = ReplySpins(0)

    def release(self, connection: Connection[Any], broken: bool, deadline: Deadline) -> None:
        raise NotImplementedError

    def discard_idle(self, deadline: Deadline) -> None:
        """Close the idle connections (after one was found dropped, the others likely were)."""

    def close(self) -> None:
        raise NotImplementedError

    def execute(self, connection: Connection[Any], statement: Statement, deadline: Deadline) -> Any:
        """Run ``statement``; the store's :class:`.watchdog.Watchdog` stops it when the
        deadline comes (the socket has no timeout: no poll before each read and write)."""
        given: Any = connection
        reads_only = statement.fetch and not statement.writes
        if not (reads_only and time.monotonic() - getattr(given, "_ts_used", 0) < RECENT):
            sock = given._sock
            check_idle(sock is None or hung_up(sock.fileno()))
        deadline.busy = connection
        try:
            deadline.left()  # after busy is set: the watchdog stops what starts before the deadline
            # what a cursor's execute and fetchall do, without making and closing a cursor
            escape = given.escape
            encoders = given.encoders
            text = statement.sql % tuple([escape(value, encoders) for value in statement.params])
            rows, affected = run_text(given, text, self.spins[statement.sql])
            result = rows if statement.fetch else affected
            if not connection.get_autocommit():
                connection.commit()
        finally:
            with BUSY:
                deadline.busy = None
        given._ts_used = time.monotonic()
        return result


class MySQLPool(Source):
    """A thread-safe pool of PyMySQL connections, as mysql2's ``createPool`` is to the Node
    store: connections are opened on demand, at most ``connection_limit`` at once, and a
    caller waits while all are busy. ``connect_args`` go to ``pymysql.connect``.
    """

    one_text = True

    def __init__(
        self, *, connection_limit: int = DEFAULT_CONNECTION_LIMIT, **connect_args: Any
    ) -> None:
        self.connection_limit = check_connection_limit(connection_limit)
        self.connect_args = {"charset": "utf8mb4", "autocommit": True, **connect_args}
        # for get_and_touch's one step; what is sent is still only the store's own SQL,
        # with its values escaped
        self.connect_args["client_flag"] = connect_args.get("client_flag", 0) | MULTI_STATEMENTS
        self._slots: Slots[Connection[Any]] = Slots(self.connection_limit)

    def acquire(self, deadline: Deadline) -> tuple[Connection[Any], bool]:
        """A connection, and whether it was used before (it may have been dropped since)."""
        idle = self._slots.take(deadline.left, _closed)
        if idle is not None:
            return idle, True
        try:
            connection: Connection[Any] = pymysql.connect(**self.connect_args, defer_connect=True)
            _connect(connection, deadline)
            return connection, False
        except BaseException:
            self._slots.forget()
            raise

    def release(
        self, connection: Connection[Any], broken: bool = False, deadline: object = None
    ) -> None:
        if broken or self._slots.closed:
            _close_quietly(connection)
            self._slots.forget()
            return
        self._slots.put(connection)

    def discard_idle(self, deadline: object = None) -> None:
        for connection in self._slots.drain():
            _close_quietly(connection)

    def close(self) -> None:
        """Close the idle connections; busy ones are closed when released."""
        for connection in self._slots.drain(close=True):
            _close_quietly(connection)


def _closed() -> BaseException:
    return BackendUnavailableError("the MySQL pool is closed")


class SharedConnection(Source):
    """One connection the user made, used by one operation at a time."""

    def __init__(self, connection: Connection[Any]) -> None:
        self.connection = connection
        self._lock = threading.Lock()
        self.one_text = bool(connection.client_flag & MULTI_STATEMENTS)

    def acquire(self, deadline: Deadline) -> tuple[Connection[Any], bool]:
        if not self._lock.acquire(timeout=deadline.left()):
            raise TimeoutError("the connection was busy for the whole timeout")
        try:
            if not self.connection.open:
                _connect(self.connection, deadline)  # the same object, connected again
                return self.connection, False
            return self.connection, True
        except BaseException:
            self._lock.release()
            raise

    def release(
        self, connection: Connection[Any], broken: bool = False, deadline: object = None
    ) -> None:
        if broken:
            _close_quietly(connection)  # reopened by the next acquire
        self._lock.release()

    def close(self) -> None:
        if self.connection.open:
            _close_quietly(self.connection)
