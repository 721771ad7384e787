"""The asyncio store: flows run on pipelined psycopg connections, a clean-up task."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from typing import Any, TypeVar

import psycopg

from ...errors import BackendUnavailableError
from ..base import Session
from ..flowstore import AsyncFlowStore
from .core import Flow, PostgresCore
from .pipe import AsyncSource, Pipe, async_source_for
from .shell import PostgresShell

__all__ = ["AsyncPostgresStore"]

log = logging.getLogger(__package__)
T = TypeVar("T")


async def _prune_periodically(store_ref: weakref.ref[AsyncPostgresStore]) -> None:
    while True:
        store = store_ref()
        delay = None if store is None else store._prune_delay()
        del store
        if delay is None:
            return
        await asyncio.sleep(delay)
        store = store_ref()
        if store is None:
            return
        try:
            deleted = await store.prune_sessions()
            log.debug("deleted %d expired sessions", deleted)
        except Exception as exc:
            store._prune_failed(exc)
        del store


class AsyncPostgresStore(PostgresShell, AsyncFlowStore[PostgresCore]):
    """:class:`PostgresStore` for asyncio, with the same options.

    Without ``connection`` the store keeps ``pool_size`` (10) connections of its own in
    pipeline mode: every task's statements share them, many per round trip. A psycopg
    ``AsyncConnection`` or psycopg_pool ``AsyncConnectionPool`` given as ``connection`` is
    borrowed one operation at a time. The clean-up task starts with the first operation
    (or ``async with``) and ends on :meth:`close`. A store belongs to one event loop.
    """

    def _setup(self, connection: Any) -> None:
        self._source: AsyncSource
        self._source, self._owns_source = async_source_for(
            connection, self.conninfo, self.options.pool_size, self.connect_args
        )
        self._pruner: asyncio.Task[None] | None = None

    def _start_pruner(self) -> None:
        if self._pruner is None and self.options.prune_interval is not None and not self._closed:
            self._pruner = asyncio.get_running_loop().create_task(
                _prune_periodically(weakref.ref(self)), name="token-session-postgres-pruner"
            )

    async def _run(self, flow: Flow[T]) -> T:
        try:
            statement = next(flow)  # checks the arguments: nothing is sent if they are bad
        except StopIteration as done:
            result: T = done.value
            return result
        if self._pruner is None:
            self._start_pruner()
        deadline = time.monotonic() + self.timeout
        source = self._source
        pipe: Pipe | None = None
        try:
            pipe, reused = await source.acquire(deadline)
            while True:
                try:
                    value = await pipe.send(statement, deadline)
                except psycopg.errors.InvalidSqlStatementName:
                    # sent while its Parse was failing, or deallocated: made again
                    value = await pipe.send(statement, deadline)
                except psycopg.Error as exc:  # reported by the server: the flow decides
                    statement = flow.throw(exc)
                    continue
                except BackendUnavailableError as exc:
                    if not self._may_retry(exc, reused):
                        raise
                    dropped, pipe = pipe, None
                    await source.release(dropped, broken=True)
                    source.discard_idle()
                    pipe, reused = await source.acquire(deadline)
                    value = await pipe.send(statement, deadline)
                reused = False
                statement = flow.send(value)
        except StopIteration as done:
            result = done.value
            return result
        finally:
            if pipe is not None:
                await source.release(pipe, broken=pipe.broken is not None)

    async def get_and_touch(self, sid: str) -> Session | None:
        """:meth:`PostgresStore.get_and_touch`, awaited."""
        return await self._run(self.core.get_and_touch(sid))

    async def prune_sessions(self) -> int:
        """Delete expired rows now (what the clean-up task runs); how many."""
        return await self._run(self.core.prune())

    async def close(self) -> None:
        """Cancel the clean-up task; close the connections if the store made them."""
        if self._closed:
            return
        self._closed = True
        pruner, self._pruner = self._pruner, None
        if pruner is not None and pruner is not asyncio.current_task():
            pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pruner
        if self._owns_source:
            await self._source.close()

    async def _started(self) -> None:
        self._start_pruner()
