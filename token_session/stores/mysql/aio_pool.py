"""Where the asyncio store gets asyncmy connections: :class:`AsyncMySQLPool`, a pool the user
made with asyncmy, or one connection the user made, shared."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ...errors import BackendUnavailableError
from .format import DEFAULT_CONNECTION_LIMIT, check_connection_limit
from .schema import Statement

if TYPE_CHECKING:
    import asyncmy

__all__ = ["AsyncMySQLPool", "AsyncSharedConnection", "AsyncSource", "AsyncmyPool"]


class AsyncSource:
    """:class:`.pool.Source` for asyncio: the same methods, awaited."""

    async def acquire(self) -> tuple[asyncmy.Connection, bool]:
        raise NotImplementedError

    async def release(self, connection: asyncmy.Connection, broken: bool = False) -> None:
        raise NotImplementedError

    async def discard_idle(self) -> None:
        """Close the idle connections (after one was found dropped, the others likely were)."""

    async def close(self) -> None:
        raise NotImplementedError

    async def execute(self, connection: asyncmy.Connection, statement: Statement) -> Any:
        async with connection.cursor() as cursor:
            await cursor.execute(statement.sql, statement.params)
            result = await cursor.fetchall() if statement.fetch else cursor.rowcount
        if not connection.get_autocommit():
            await connection.commit()
        return result


class AsyncmyPool(AsyncSource):
    """A pool the user made with ``asyncmy.create_pool``."""

    def __init__(self, pool: asyncmy.Pool) -> None:
        self.pool = pool

    async def acquire(self) -> tuple[asyncmy.Connection, bool]:
        connection: asyncmy.Connection = await self.pool.acquire()
        return connection, True

    async def release(self, connection: asyncmy.Connection, broken: bool = False) -> None:
        if broken:
            connection.close()  # the pool drops a closed connection
        self.pool.release(connection)

    async def discard_idle(self) -> None:
        await self.pool.clear()

    async def close(self) -> None:
        self.pool.close()
        await self.pool.wait_closed()


async def _aclose_quietly(connection: asyncmy.Connection) -> None:
    try:
        await connection.ensure_closed()
    except Exception:
        connection.close()


class AsyncMySQLPool(AsyncSource):
    """:class:`~.pool.MySQLPool` for asyncio, of asyncmy connections (``connect_args`` go to
    ``asyncmy.connect``). It belongs to the event loop that first uses it."""

    def __init__(
        self, *, connection_limit: int = DEFAULT_CONNECTION_LIMIT, **connect_args: Any
    ) -> None:
        import asyncmy

        self._connect = asyncmy.connect
        self.connection_limit = check_connection_limit(connection_limit)
        self.connect_args = {"charset": "utf8mb4", "autocommit": True, **connect_args}
        self._slots = asyncio.Semaphore(self.connection_limit)
        self._idle: list[asyncmy.Connection] = []
        self._closed = False

    async def acquire(self) -> tuple[asyncmy.Connection, bool]:
        if self._closed:
            raise BackendUnavailableError("the MySQL pool is closed")
        await self._slots.acquire()
        try:
            if self._idle:
                return self._idle.pop(), True
            connection: asyncmy.Connection = await self._connect(**self.connect_args)
            return connection, False
        except BaseException:
            self._slots.release()
            raise

    async def release(self, connection: asyncmy.Connection, broken: bool = False) -> None:
        if broken or self._closed:
            connection.close()
        else:
            self._idle.append(connection)
        self._slots.release()

    async def discard_idle(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            await _aclose_quietly(connection)


class AsyncSharedConnection(AsyncSource):
    """One connection the user made, used by one operation at a time."""

    def __init__(self, connection: asyncmy.Connection) -> None:
        self.connection = connection
        self._lock = asyncio.Lock()

    async def acquire(self) -> tuple[asyncmy.Connection, bool]:
        await self._lock.acquire()
        try:
            if not self.connection.connected:
                await self.connection.connect()  # the same object, connected again
                return self.connection, False
            return self.connection, True
        except BaseException:
            self._lock.release()
            raise

    async def release(self, connection: asyncmy.Connection, broken: bool = False) -> None:
        if broken:
            connection.close()
        self._lock.release()

    async def close(self) -> None:
        if self.connection.connected:
            await _aclose_quietly(self.connection)
