"""The blocking store: :class:`MySQLStore`, on PyMySQL, with a clean-up thread."""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any, TypeVar

import pymysql
from pymysql.connections import Connection

from ...errors import InvalidArgumentError
from ..base import Session
from ..flowstore import FlowStore
from ..spin import ReplySpins, answered, answering
from .connections import Deadline, Driver, on_connections
from .format import MySQLStoreCore
from .pool import MySQLPool, SharedConnection, Source
from .schema import Flow
from .shell import StoreBase
from .watchdog import Watchdog

__all__ = ["MySQLStore"]

logger = logging.getLogger(__package__)
T = TypeVar("T")

_DRIVER = Driver(pymysql.MySQLError, pymysql.InterfaceError, (pymysql.MySQLError,))


def _clean_periodically(
    store_ref: weakref.ref[MySQLStore], stop: threading.Event, interval: float
) -> None:
    while not stop.wait(interval):
        store = store_ref()
        if store is None:
            return
        try:
            deleted = store.clear_expired_sessions()
            logger.debug("cleared %d expired sessions", deleted)
        except Exception as exc:
            logger.warning("clearing expired sessions failed: %s", exc)
        del store


class MySQLStore(StoreBase["Connection[Any] | MySQLPool"], FlowStore[MySQLStoreCore]):
    """A blocking store on PyMySQL, row for row what express-mysql-session writes.

    ``connection`` is a PyMySQL ``Connection`` (shared, one operation at a time) or a
    :class:`MySQLPool`; without one the store makes a pool from ``host``, ``port``, ``user``,
    ``password``, ``database``, ``connection_limit`` and ``connect_args`` (more
    ``pymysql.connect`` keywords). The other options are express-mysql-session's, in
    snake_case, with its defaults; times are in milliseconds. With ``clear_expired`` a daemon
    thread deletes expired rows every ``check_expiration_interval`` ms until :meth:`close`.
    ``timeout`` (seconds) bounds each operation; ``spin`` (seconds, default 0.0001; 0: never)
    is how long to poll for an answer before sleeping until it comes
    (:mod:`token_session.stores.spin`).
    """

    def _setup(
        self,
        connection: Connection[Any] | MySQLPool | None,
        limit: int,
        connect_args: dict[str, Any],
    ) -> None:
        self._source: Source
        if connection is None:
            self._source = MySQLPool(connection_limit=limit, **connect_args)
        elif isinstance(connection, MySQLPool):
            self._source = connection
        elif isinstance(connection, Connection):
            self._source = SharedConnection(connection)
        else:
            raise InvalidArgumentError(
                "connection must be a pymysql Connection or a MySQLPool, "
                f"not {type(connection).__name__}"
            )
        self._source.spins = ReplySpins(self.spin)
        self._watchdog = Watchdog(self.timeout)
        self._stop = threading.Event()
        self._cleaner: threading.Thread | None = None
        if self.core.clear_expired:
            self._cleaner = threading.Thread(
                target=_clean_periodically,
                args=(weakref.ref(self), self._stop, self.core.check_expiration_interval / 1000),
                name="token-session-mysql-cleaner",
                daemon=True,
            )
            weakref.finalize(self, self._stop.set)
            self._cleaner.start()

    def _run(self, flow: Flow[T]) -> T:
        """Run ``flow`` within the store's timeout, carrying out the requests of
        :func:`.connections.on_connections` on the source."""
        deadline = Deadline(self.timeout)
        watchdog = self._watchdog
        if watchdog.timeout != self.timeout:
            watchdog = self._watchdog = Watchdog(self.timeout)
        watchdog.watch(deadline)
        send = on_connections(flow, _DRIVER, self.timeout).send
        source, answer = self._source, None
        answering()
        try:
            while True:
                request = send(answer)
                try:
                    answer = getattr(source, request[0])(*request[1:], deadline)
                except BaseException as exc:  # the plan decides what it means
                    answer = deadline.failure(exc)
        except StopIteration as done:
            result: T = done.value
            return result
        finally:
            answered()
            watchdog.over(deadline)

    def get_and_touch(self, sid: str) -> Session | None:
        """What :meth:`get` returns, the row's ``expires`` restarted as ``touch(sid,
        refreshed(session, now))`` would: in one round trip on the store's own connections
        (:meth:`.format.MySQLStoreCore.get_and_touch`)."""
        return self._run(self.core.get_and_touch(sid, self._source.one_text))

    def clear_expired_sessions(self) -> int:
        """Delete expired rows now (what the clean-up thread runs); returns how many."""
        return self._run(self.core.clear_expired_sessions())

    def close(self) -> None:
        """Stop the clean-up thread; end the connection(s) if ``end_connection_on_close``."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._watchdog.close()
        if self._cleaner is not None and self._cleaner is not threading.current_thread():
            self._cleaner.join()
        if self.end_connection_on_close:
            self._source.close()
