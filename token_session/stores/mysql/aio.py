"""The asyncio store: :class:`AsyncMySQLStore`, on asyncmy, with a clean-up task."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from asyncio import get_running_loop as _running_loop
from collections import deque
from typing import TYPE_CHECKING, Any, TypeVar

from ...errors import InvalidArgumentError
from ..base import Session
from ..flowstore import AsyncFlowStore
from .aio_pool import AsyncmyPool, AsyncSharedConnection, AsyncSource
from .connections import Deadline, Driver, Failure, failure_error, on_connections
from .format import MySQLStoreCore
from .schema import Flow
from .shell import StoreBase

if TYPE_CHECKING:
    import asyncmy

__all__ = ["AsyncMySQLStore"]

logger = logging.getLogger(__package__)
T = TypeVar("T")


async def _aclean_periodically(store_ref: weakref.ref[AsyncMySQLStore], interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        store = store_ref()
        if store is None:
            return
        try:
            deleted = await store.clear_expired_sessions()
            logger.debug("cleared %d expired sessions", deleted)
        except Exception as exc:
            logger.warning("clearing expired sessions failed: %s", exc)
        del store


class _Alarm:
    """An operation's time limit: :class:`_Alarms` cancels its task when the time is up, as
    ``asyncio.timeout`` does (which Python 3.10 lacks)."""

    __slots__ = ("at", "rang", "task")

    def __init__(self, task: asyncio.Task[Any] | None, at: float) -> None:
        self.task = task
        self.at = at
        self.rang = False

    def failure(self, exc: BaseException, deadline: Deadline) -> Failure:
        if self.rang and isinstance(exc, asyncio.CancelledError):
            self.rang = False
            uncancel = getattr(self.task, "uncancel", None)  # Python 3.11+
            if uncancel is not None:
                uncancel()
            return Failure(TimeoutError("no answer in time"), True)
        return deadline.failure(exc)


class _Alarms:
    """The alarms of a store's operations on one loop, with one timer for all: every
    operation has the same timeout, so they are due in the order they started, and the
    timer waits for the first one not over."""

    __slots__ = ("loop", "queue", "timeout", "timer")

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop = loop
        self.timeout = timeout
        self.queue: deque[_Alarm] = deque()
        self.timer: asyncio.TimerHandle | None = None

    def start(self) -> _Alarm:
        alarm = _Alarm(asyncio.current_task(), self.loop.time() + self.timeout)
        self.queue.append(alarm)
        if self.timer is None:
            self.timer = self.loop.call_at(alarm.at, self._ring)
        return alarm

    def stop(self, alarm: _Alarm) -> None:
        alarm.task = None
        queue = self.queue
        while queue and queue[0].task is None:
            queue.popleft()

    def _ring(self) -> None:
        self.timer = None
        queue, now = self.queue, self.loop.time()
        while queue:
            alarm = queue[0]
            if alarm.task is not None:
                if alarm.at > now:
                    self.timer = self.loop.call_at(alarm.at, self._ring)
                    return
                alarm.rang = True
                alarm.task.cancel()
            queue.popleft()


class AsyncMySQLStore(
    StoreBase["asyncmy.Connection | asyncmy.Pool"], AsyncFlowStore[MySQLStoreCore]
):
    """:class:`~.store.MySQLStore` for asyncio, on asyncmy, with the same options.

    ``connection`` is an asyncmy ``Connection`` (one operation at a time) or an asyncmy
    ``Pool``; without one the store makes an asyncmy pool of its own on the running loop
    (``connect_args`` go to ``asyncmy.connect``). The clean-up task starts with the first
    operation (or ``async with``) and ends on :meth:`close`. A store belongs to one event
    loop.
    """

    def _setup(
        self,
        connection: asyncmy.Connection | asyncmy.Pool | None,
        limit: int,
        connect_args: dict[str, Any],
    ) -> None:
        import asyncmy

        self._driver = Driver(
            asyncmy.MySQLError,
            asyncmy.InterfaceError,
            (asyncmy.MySQLError, OSError, asyncio.TimeoutError),
        )
        self._source: AsyncSource
        if connection is None:
            self._source = AsyncmyPool(connection_limit=limit, **connect_args)
        elif isinstance(connection, asyncmy.Pool):
            self._source = AsyncmyPool(connection)
        elif isinstance(connection, asyncmy.Connection):
            self._source = AsyncSharedConnection(connection)
        else:
            raise InvalidArgumentError(
                f"connection must be an asyncmy Connection or Pool, not {type(connection).__name__}"
            )
        self._cleaner: asyncio.Task[None] | None = None
        self._alarms: _Alarms | None = None
        # the first operations create the table one at a time: two CREATE TABLE IF NOT EXISTS
        # racing leave the second a note that asyncmy logs as a warning ("Table ... already
        # exists")
        self._table_lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    def _start_cleaner(self) -> None:
        if self._cleaner is None and self.core.clear_expired and not self._closed:
            self._cleaner = asyncio.get_running_loop().create_task(
                _aclean_periodically(weakref.ref(self), self.core.check_expiration_interval / 1000),
                name="token-session-mysql-cleaner",
            )

    async def _run(self, flow: Flow[T]) -> T:
        """Run ``flow`` within the store's timeout, carrying out the requests of
        :func:`.connections.on_connections` on the source."""
        if self._cleaner is None:
            self._start_cleaner()
        deadline = Deadline(self.timeout)
        alarms = self._alarms
        if alarms is None or alarms.timeout != self.timeout or alarms.loop is not _running_loop():
            alarms = self._alarms = _Alarms(_running_loop(), self.timeout)
        alarm = alarms.start()
        try:
            if not self.core.table_ready:
                await self._prepare_table(alarm, deadline)
            return await self._carry_out(flow, alarm, deadline)
        finally:
            alarms.stop(alarm)

    async def _carry_out(self, flow: Flow[T], alarm: _Alarm, deadline: Deadline) -> T:
        send = on_connections(flow, self._driver, self.timeout).send
        source, answer = self._source, None
        try:
            while True:
                request = send(answer)
                try:
                    answer = await getattr(source, request[0])(*request[1:], deadline)
                except BaseException as exc:  # cancelled too: the plan releases the connection
                    answer = alarm.failure(exc, deadline)
        except StopIteration as done:
            result: T = done.value
            return result

    async def _prepare_table(self, alarm: _Alarm, deadline: Deadline) -> None:
        """Create the table if it is missing, one operation at a time, within the calling
        operation's time."""
        loop = _running_loop()
        if self._table_lock is None or self._table_lock[0] is not loop:
            self._table_lock = (loop, asyncio.Lock())
        lock = self._table_lock[1]
        try:
            await lock.acquire()
        except BaseException as exc:
            failure = alarm.failure(exc, deadline)
            if not failure.timed_out:
                raise
            raise failure_error(failure, self.timeout) from None
        try:
            if not self.core.table_ready:
                await self._carry_out(self.core.prepare(), alarm, deadline)
        finally:
            lock.release()

    async def get_and_touch(self, sid: str) -> Session | None:
        """:meth:`.store.MySQLStore.get_and_touch`, awaited: get then touch as prepared
        statements on one connection, or one text where the connections prepare nothing
        (:class:`.aio_pool.AsyncSource`)."""
        return await self._run(self.core.get_and_touch(sid, self._source.one_text))

    async def clear_expired_sessions(self) -> int:
        """Delete expired rows now (what the clean-up task runs); returns how many."""
        return await self._run(self.core.clear_expired_sessions())

    async def close(self) -> None:
        """Cancel the clean-up task; end the connection(s) if ``end_connection_on_close``."""
        if self._closed:
            return
        self._closed = True
        cleaner, self._cleaner = self._cleaner, None
        if cleaner is not None and cleaner is not asyncio.current_task():
            cleaner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await cleaner
        if self.end_connection_on_close:
            await self._source.close()

    async def _started(self) -> None:
        self._start_cleaner()
