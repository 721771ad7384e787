"""Where the asyncio store sends its statements: psycopg ``AsyncConnection`` objects in
libpq's pipeline mode.

The statements of every task go out on one connection as they come, each followed by its
own sync point (an error fails that statement alone), and the results are read back in
order as soon as they arrive: many statements per round trip, one wake-up for all the
results a read brings. The store keeps a few such connections (:class:`PipePool`); a
connection or pool the user gives is borrowed for one operation at a time instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import Any, Protocol

import psycopg
from psycopg import pq

from ...errors import BackendUnavailableError, InvalidArgumentError
from .format import Statement
from .pool import connect_timeout
from .wire import StalledError, forget, read_result, send, unavailable

__all__ = ["DEFAULT_PIPES", "AsyncSource", "Pipe", "PipePool", "async_source_for"]

DEFAULT_PIPES = 10  # as many as node-postgres's pool: each commit waits for its own WAL flush
_SYNC = pq.ExecStatus.PIPELINE_SYNC


class Pipe:
    """One connection in pipeline mode, shared by any number of tasks."""

    def __init__(self, connection: psycopg.AsyncConnection[Any]) -> None:
        self.connection = connection
        self.pgconn = connection.pgconn
        self.loop = asyncio.get_running_loop()
        self.fileno = self.pgconn.socket
        # (future, fetch, deadline, prepared statement name) of each statement sent, in order
        self.pending: deque[tuple[asyncio.Future[Any], bool, float, bytes | None]] = deque()
        self.broken: BackendUnavailableError | None = None
        self._value: Any = None
        self._error: Exception | None = None
        self._flush_scheduled = False
        self._writing = False
        self._timer: asyncio.TimerHandle | None = None
        self.pgconn.enter_pipeline_mode()
        self.loop.add_reader(self.fileno, self._readable)

    def send(self, statement: Statement, deadline: float) -> asyncio.Future[Any]:
        """The future of the statement's result (rows or count), failed with the server's
        error, or with BackendUnavailableError if the connection fails or no answer comes
        by ``deadline``."""
        if self.broken is not None:
            raise self.broken
        try:
            name = send(self.pgconn, statement, True)
            self.pgconn.pipeline_sync()
        except psycopg.OperationalError as exc:
            self.fail(unavailable(exc))
            raise unavailable(exc) from exc
        future = self.loop.create_future()
        self.pending.append((future, statement.fetch, deadline, name))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)
        if self._timer is None:
            self._timer = self.loop.call_later(deadline - time.monotonic(), self._check_deadline)
        return future

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self.broken is None:
            self._writable()

    def _writable(self) -> None:
        try:
            more = self.pgconn.flush()
        except psycopg.OperationalError as exc:
            self.fail(unavailable(exc))
            return
        if more and not self._writing:
            self._writing = True
            self.loop.add_writer(self.fileno, self._writable)
        elif not more and self._writing:
            self._writing = False
            self.loop.remove_writer(self.fileno)

    def _readable(self) -> None:
        pgconn = self.pgconn
        try:
            pgconn.consume_input()
            while self.pending and not pgconn.is_busy():
                result = pgconn.get_result()
                if result is None:  # the end of one statement's results
                    continue
                if result.status == _SYNC:
                    future, _, _, name = self.pending.popleft()
                    value, error, self._value, self._error = self._value, self._error, None, None
                    if error is not None:
                        forget(pgconn, name)  # its Parse may be what failed
                    if not future.done():
                        if error is None:
                            future.set_result(value)
                        else:
                            future.set_exception(error)
                    continue
                try:
                    self._value = read_result(result, self.pending[0][1])
                except Exception as exc:
                    self._error = self._error or exc
        except psycopg.OperationalError as exc:
            self.fail(unavailable(exc))

    def _check_deadline(self) -> None:
        self._timer = None
        if not self.pending:
            return
        now = time.monotonic()
        earliest = min(entry[2] for entry in self.pending)
        if earliest <= now:
            self.fail(StalledError("PostgreSQL server did not answer in time"))
        else:
            self._timer = self.loop.call_later(earliest - now, self._check_deadline)

    def fail(self, error: BackendUnavailableError) -> None:
        """The connection is unusable: fail what waits on it and close it."""
        if self.broken is not None:
            return
        self.broken = error
        self._stop_watching()
        pending, self.pending = self.pending, deque()
        for future, *_ in pending:
            if not future.done():
                future.set_exception(error)
        with contextlib.suppress(Exception):
            self.pgconn.finish()

    def _stop_watching(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        with contextlib.suppress(Exception):
            self.loop.remove_reader(self.fileno)
            if self._writing:
                self.loop.remove_writer(self.fileno)

    def detach(self) -> bool:
        """Hand a borrowed connection back as it was; False if it cannot be (it is broken
        or a cancelled statement is still on its way)."""
        if self.broken is not None or self.pending:
            return False
        self._stop_watching()
        try:
            self.pgconn.exit_pipeline_mode()
        except psycopg.Error:
            return False
        return True


class AsyncSource(Protocol):
    async def acquire(self, deadline: float) -> tuple[Pipe, bool]:
        """A pipe, and whether its connection was used before (it may be dropped since)."""
        ...

    async def release(self, pipe: Pipe, *, broken: bool) -> None: ...

    def discard_idle(self) -> None: ...

    async def close(self) -> None: ...


async def _connect(conninfo: str, deadline: float, args: dict[str, Any]) -> Any:
    try:
        return await asyncio.wait_for(
            psycopg.AsyncConnection.connect(
                conninfo, connect_timeout=connect_timeout(deadline), **args, autocommit=True
            ),
            deadline - time.monotonic(),
        )
    except (psycopg.OperationalError, asyncio.TimeoutError, OSError) as exc:
        raise unavailable(exc) from exc


class PipePool:
    """``size`` pipelined connections of the store's own, opened on demand, taken in
    turn. It belongs to the event loop that first uses it."""

    def __init__(self, conninfo: str, size: int, connect_args: dict[str, Any]) -> None:
        self.conninfo = conninfo
        self.connect_args = connect_args
        self.pipes: list[Pipe | None] = [None] * size
        self._connecting: list[asyncio.Task[Pipe] | None] = [None] * size
        self._turn = 0
        self._closed = False

    async def acquire(self, deadline: float) -> tuple[Pipe, bool]:
        if self._closed:
            raise BackendUnavailableError("the PostgreSQL store is closed")
        slot = self._turn
        self._turn = (slot + 1) % len(self.pipes)
        pipe = self.pipes[slot]
        if pipe is not None and pipe.broken is None:
            return pipe, True
        task = self._connecting[slot]
        if task is None:
            task = asyncio.get_running_loop().create_task(self._open(slot, deadline))
            self._connecting[slot] = task
        return await asyncio.shield(task), False

    async def _open(self, slot: int, deadline: float) -> Pipe:
        try:
            pipe = Pipe(await _connect(self.conninfo, deadline, self.connect_args))
            self.pipes[slot] = pipe
            return pipe
        finally:
            self._connecting[slot] = None

    async def release(self, pipe: Pipe, *, broken: bool) -> None:
        pass  # shared; a failed pipe is replaced by the next acquire of its slot

    def discard_idle(self) -> None:
        for pipe in self.pipes:
            if pipe is not None and not pipe.pending:
                pipe.fail(BackendUnavailableError("PostgreSQL connection discarded"))

    async def close(self) -> None:
        self._closed = True
        for pipe in self.pipes:
            if pipe is not None:
                pipe.fail(BackendUnavailableError("the PostgreSQL store is closed"))


class _Borrowed:
    """A psycopg ``AsyncConnection`` or psycopg_pool ``AsyncConnectionPool`` the user gave:
    a connection is borrowed for one operation and handed back out of pipeline mode."""

    def __init__(self, connection: Any, pool: Any) -> None:
        self.connection = connection
        self.pool = pool

    async def acquire(self, deadline: float) -> tuple[Pipe, bool]:
        remaining = max(0.0, deadline - time.monotonic())
        if self.pool is not None:
            from psycopg_pool import PoolTimeout

            try:
                connection = await self.pool.getconn(timeout=remaining)
            except PoolTimeout as exc:
                raise StalledError(
                    f"no PostgreSQL connection from the pool in time: {exc}"
                ) from exc
        else:
            connection = self.connection
            try:
                await asyncio.wait_for(connection.lock.acquire(), remaining)
            except asyncio.TimeoutError:
                raise StalledError("the PostgreSQL connection stayed busy") from None
            if connection.closed:
                connection.lock.release()
                raise BackendUnavailableError("the PostgreSQL connection given is closed")
        return Pipe(connection), self.pool is not None

    async def release(self, pipe: Pipe, *, broken: bool) -> None:
        if not pipe.detach():
            pipe.fail(BackendUnavailableError("PostgreSQL connection left unusable"))
        if self.pool is not None:
            await self.pool.putconn(pipe.connection)
        else:
            self.connection.lock.release()

    def discard_idle(self) -> None:
        pass

    async def close(self) -> None:
        pass


def async_source_for(
    connection: object, conninfo: str, size: int | None, connect_args: dict[str, Any]
) -> tuple[AsyncSource, bool]:
    """The source for the ``connection`` argument, and whether the store owns it."""
    if connection is None:
        return PipePool(conninfo, size or DEFAULT_PIPES, connect_args), True
    if isinstance(connection, psycopg.AsyncConnection):
        return _Borrowed(connection, None), False
    with contextlib.suppress(ImportError):
        from psycopg_pool import AsyncConnectionPool

        if isinstance(connection, AsyncConnectionPool):
            return _Borrowed(None, connection), False
    raise InvalidArgumentError(
        "connection must be a psycopg AsyncConnection or a psycopg_pool AsyncConnectionPool, "
        f"not {type(connection).__name__}"
    )
