"""Where the asyncio store gets asyncmy connections: an asyncmy pool (the user's, or the
store's own), or one connection the user made, shared."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from ...errors import BackendUnavailableError
from .connections import Deadline
from .format import DEFAULT_CONNECTION_LIMIT
from .pool import RECENT, check_idle, hung_up
from .schema import Statement

if TYPE_CHECKING:
    import asyncmy

__all__ = ["STATEMENT_CACHE", "AsyncSharedConnection", "AsyncSource", "AsyncmyPool"]

# prepared statements kept per connection: a store runs about ten different statements
STATEMENT_CACHE = 32


class AsyncSource:
    """:class:`.pool.Source` for asyncio: the same methods, awaited. The store bounds each
    operation as a whole (its task is cancelled when the time is up), so they need not.

    asyncmy's connections always take several statements in one text, but where they keep
    statements prepared, get_and_touch sends its read and touch as two prepared statements
    on one connection instead (``one_text`` false): a text of two statements cannot be
    prepared, and the server parses it anew each time. With 64 in flight on MariaDB 10.11,
    the prepared pair did 13 % more get_and_touch calls a second, with about 11 % less of
    the server's CPU and 7 % less of the client's per call (two runs of 15 rounds each).
    """

    one_text = True

    async def acquire(self, deadline: Deadline) -> tuple[asyncmy.Connection, bool]:
        raise NotImplementedError

    async def release(
        self, connection: asyncmy.Connection, broken: bool, deadline: object = None
    ) -> None:
        raise NotImplementedError

    async def discard_idle(self, deadline: Deadline) -> None:
        """Close the idle connections (after one was found dropped, the others likely were)."""

    async def close(self) -> None:
        raise NotImplementedError

    async def execute(
        self, connection: asyncmy.Connection, statement: Statement, deadline: Deadline
    ) -> Any:
        given: Any = connection
        reads_only = statement.fetch and not statement.writes
        if not (reads_only and time.monotonic() - getattr(given, "_ts_used", 0) < RECENT):
            check_idle(_hung_up(connection))
        async with connection.cursor() as cursor:  # closing it reads the writes' results
            await cursor.execute(statement.sql, statement.params)
            result = await cursor.fetchall() if statement.fetch else cursor.rowcount
        if not connection.get_autocommit():
            await connection.commit()
        given._ts_used = time.monotonic()
        return result


def _hung_up(connection: Any) -> bool:
    """:func:`.pool.hung_up` for an asyncmy connection, whether or not the loop has seen it."""
    transport = connection._transport
    if transport is None or transport.is_closing():
        return True
    protocol = connection._proto
    if protocol is None or protocol.eof or protocol.exc is not None:
        return True
    sock = transport.get_extra_info("socket")
    return sock is None or hung_up(sock.fileno())


class AsyncmyPool(AsyncSource):
    """An asyncmy ``Pool``: the one given, else one made on the running loop when first
    used, as mysql2's pool: at most ``connection_limit`` connections, opened on demand and
    kept while idle (``connect_args`` go to ``asyncmy.connect``).

    asyncmy's pool sets aside an idle connection whose socket it has seen closed, but does
    not say whether one is new: every connection counts as used before. It hands idle
    connections out oldest first (mysql2's pool, newest first), and opens one at a time.

    The connections of a pool made here keep their statements prepared on the server
    (``stmt_cache_size``, unless ``connect_args`` say otherwise): a statement is parsed once
    per connection, and rows come back in the binary protocol, which asyncmy decodes with
    less work. The rows written are the same (the values are bound, not spliced into the
    SQL text); a statement the server cannot prepare runs as text.
    """

    def __init__(
        self,
        pool: asyncmy.Pool | None = None,
        *,
        connection_limit: int = DEFAULT_CONNECTION_LIMIT,
        **connect_args: Any,
    ) -> None:
        self.pool = pool
        self.connection_limit = connection_limit
        self.connect_args = {"stmt_cache_size": STATEMENT_CACHE, **connect_args}
        # a given pool's connections prepare statements where its connect arguments say so
        made_with = self.connect_args if pool is None else getattr(pool, "_conn_kwargs", {})
        self.one_text = not (isinstance(made_with, dict) and made_with.get("stmt_cache_size"))
        self._closed = False

    def _made(self) -> asyncmy.Pool:
        import asyncmy

        self.pool = asyncmy.Pool(
            minsize=0, maxsize=self.connection_limit, pool_recycle=-1, **self.connect_args
        )
        return self.pool

    async def acquire(self, deadline: Deadline) -> tuple[asyncmy.Connection, bool]:
        if self._closed:
            raise BackendUnavailableError("the MySQL pool is closed")
        pool = self.pool if self.pool is not None else self._made()
        try:
            connection: asyncmy.Connection = await pool.acquire()
        except RuntimeError:
            if self._closed:  # closed while this waited for a connection
                raise BackendUnavailableError("the MySQL pool is closed") from None
            raise
        return connection, True

    async def release(
        self, connection: asyncmy.Connection, broken: bool, deadline: object = None
    ) -> None:
        if broken:
            connection.close()  # the pool drops a closed connection
        if self.pool is not None:
            self.pool.release(connection)

    async def discard_idle(self, deadline: Deadline) -> None:
        if self.pool is not None:
            await self.pool.clear()

    async def close(self) -> None:
        """Close the idle connections, and the busy ones once they are back."""
        self._closed = True
        if self.pool is not None:
            self.pool.close()
            await self.pool.wait_closed()


async def _aclose_quietly(connection: asyncmy.Connection) -> None:
    try:
        await connection.ensure_closed()
    except Exception:
        connection.close()


class AsyncSharedConnection(AsyncSource):
    """One connection the user made, used by one operation at a time."""

    def __init__(self, connection: asyncmy.Connection) -> None:
        self.connection = connection
        self._lock = asyncio.Lock()
        self.one_text = not getattr(connection, "_stmt_cache_size", 0)

    async def acquire(self, deadline: Deadline) -> tuple[asyncmy.Connection, bool]:
        await self._lock.acquire()
        try:
            if not self.connection.connected:
                await self.connection.connect()  # the same object, connected again
                return self.connection, False
            return self.connection, True
        except BaseException:
            self._lock.release()
            raise

    async def release(
        self, connection: asyncmy.Connection, broken: bool, deadline: object = None
    ) -> None:
        if broken:
            connection.close()
        self._lock.release()

    async def close(self) -> None:
        if self.connection.connected:
            await _aclose_quietly(self.connection)
