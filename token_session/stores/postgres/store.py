"""The blocking store: flows run on psycopg connections, a clean-up thread."""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Any, TypeVar

import psycopg

from ...errors import BackendUnavailableError
from ..base import Session
from ..flowstore import FlowStore
from ..spin import ReplySpins, answered, answering
from .core import Flow, PostgresCore
from .pool import Source, source_for
from .shell import PostgresShell
from .wire import execute

__all__ = ["PostgresStore"]

log = logging.getLogger(__package__)
T = TypeVar("T")


def _prune_periodically(store_ref: weakref.ref[PostgresStore], stop: threading.Event) -> None:
    while True:
        store = store_ref()
        delay = None if store is None else store._prune_delay()
        del store
        if delay is None or stop.wait(delay):
            return
        store = store_ref()
        if store is None:
            return
        try:
            deleted = store.prune_sessions()
            log.debug("deleted %d expired sessions", deleted)
        except Exception as exc:
            store._prune_failed(exc)
        del store


class PostgresStore(PostgresShell, FlowStore[PostgresCore]):
    """A blocking store on psycopg 3, row for row what connect-pg-simple 10.0.0 (or, with
    ``format="connect-session-knex"``, connect-session-knex 5.0.0) writes.

    ``connection`` is a ``psycopg.Connection`` (one operation at a time), a psycopg_pool
    ``ConnectionPool`` or a :class:`PostgresPool`; without one the store makes a pool of
    ``pool_size`` connections (10) from ``conninfo`` and ``connect_args``. On a connection
    the user gives, each statement commits on its own unless that connection has a
    transaction open, which it then joins. The clean-up thread starts with the first
    operation and stops on :meth:`close`. ``spin`` (seconds, default 0.0001; 0: never) is
    how long to poll for an answer before sleeping until it comes
    (:mod:`token_session.stores.spin`).
    """

    def _setup(self, connection: Any) -> None:
        self._source: Source
        self._source, self._owns_source = source_for(
            connection, self.conninfo, self.options.pool_size, self.connect_args
        )
        self._spins = ReplySpins(self.options.spin)
        self._stop = threading.Event()
        self._pruner: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def _start_pruner(self) -> None:
        with self._start_lock:
            if self._pruner is not None or self._closed or self.options.prune_interval is None:
                return
            self._pruner = threading.Thread(
                target=_prune_periodically,
                args=(weakref.ref(self), self._stop),
                name="token-session-postgres-pruner",
                daemon=True,
            )
            weakref.finalize(self, self._stop.set)
            self._pruner.start()

    def _run(self, flow: Flow[T]) -> T:
        try:
            statement = next(flow)  # checks the arguments: nothing is sent if they are bad
        except StopIteration as done:
            result: T = done.value
            return result
        if self._pruner is None and self.options.prune_interval is not None:
            self._start_pruner()
        deadline = time.monotonic() + self.timeout
        source, spins = self._source, self._spins
        connection: psycopg.Connection[Any] | None = None
        broken = False
        answering()
        try:
            connection, reused = source.acquire(deadline)
            while True:
                try:
                    value = execute(connection.pgconn, statement, deadline, spins[statement.sql])
                except psycopg.Error as exc:  # reported by the server: the flow decides
                    statement = flow.throw(exc)
                    continue
                except BackendUnavailableError as exc:
                    if not self._may_retry(exc, reused):
                        raise
                    source.release(connection, broken=True)
                    connection = None
                    source.discard_idle()
                    connection, reused = source.acquire(deadline)
                    value = execute(connection.pgconn, statement, deadline, spins[statement.sql])
                reused = False
                statement = flow.send(value)
        except StopIteration as done:
            result = done.value
            return result
        except BaseException:
            # mid-statement (a stall, an interrupt) or lost: the connection cannot go on;
            # after an error the server reported it can (a user's aborted transaction too)
            broken = connection is not None and connection.pgconn.transaction_status in (
                psycopg.pq.TransactionStatus.ACTIVE,
                psycopg.pq.TransactionStatus.UNKNOWN,
            )
            raise
        finally:
            answered()
            if connection is not None:
                source.release(connection, broken=broken)

    def get_and_touch(self, sid: str) -> Session | None:
        """get, then touch with the cookie restarted, in one round trip where SQL can say
        what touch would write (:meth:`PostgresCore.get_and_touch`)."""
        return self._run(self.core.get_and_touch(sid))

    def prune_sessions(self) -> int:
        """Delete expired rows now (what the clean-up thread runs); how many."""
        return self._run(self.core.prune())

    def close(self) -> None:
        """Stop the clean-up thread; close the connections if the store made them."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._pruner is not None and self._pruner is not threading.current_thread():
            self._pruner.join()
        if self._owns_source:
            self._source.close()
