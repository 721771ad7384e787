"""How the Redis stores' commands reach Redis, over any redis-py client.

- :class:`HeldConnection` (blocking): one connection kept from a plain client's pool.
- :class:`ConnectionPipeline` (asyncio): the commands awaited at once, written together on
  one of the pool's connections; :class:`AutoPipeline` does the same through a client's
  pipeline (a cluster's routes each command to its node). The lean connection of
  ``lean.py`` comes before both where it can.
- :class:`Errors` turns redis-py's exceptions into ours.
- :func:`client_from_url` makes the client of a store URL.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from ...errors import BackendUnavailableError, TokenSessionError
from .format import url_options
from .resp import resp

if sys.version_info >= (3, 11):
    from asyncio import timeout as _timeout
else:
    # redis-py depends on async-timeout below Python 3.11.3
    from async_timeout import timeout as _timeout  # type: ignore[import-not-found, unused-ignore]

Command = tuple[Any, ...]


class Errors:
    """Turns redis-py's exceptions into ours, keeping them as the cause."""

    def __init__(self) -> None:
        from redis import exceptions

        # the server or the way to it is down; anything else is the command's own failure
        self.unavailable: tuple[type[BaseException], ...] = (
            exceptions.ConnectionError,
            exceptions.TimeoutError,
            exceptions.BusyLoadingError,
            exceptions.ClusterDownError,
            exceptions.TryAgainError,
            OSError,
        )

    def wrap(self, exc: BaseException, command: str) -> TokenSessionError:
        if isinstance(exc, self.unavailable):
            return BackendUnavailableError(f"Redis unavailable during {command}: {exc}")
        return TokenSessionError(f"Redis {command} failed: {exc}")


def plain_pool(client: Any) -> Any:
    """The connection pool of a client that sends each command on a connection from one pool
    (``Redis``, a Sentinel master, their asyncio twins); None for a cluster, a
    single-connection client or one with client-side caching, which keep their own paths."""
    pool = getattr(client, "connection_pool", None)
    if pool is None or not hasattr(pool, "get_connection") or not hasattr(pool, "release"):
        return None
    if getattr(client, "connection", None) is not None or getattr(pool, "cache", None):
        return None
    return pool


def client_from_url(
    url: str, options: dict[str, Any], socket_timeout: float, *, aio: bool
) -> tuple[Any, dict[str, Any]]:
    """The redis-py client (``redis.asyncio``'s with ``aio``) of a store URL and options,
    and the store's own options; a ``RedisCluster`` for ``?cluster=1``."""
    parsed = url_options(url, options, socket_timeout)
    if aio:
        import redis.asyncio
        import redis.asyncio.cluster

        client_class: Any = (
            redis.asyncio.cluster.RedisCluster if parsed.cluster else redis.asyncio.Redis
        )
    else:
        import redis
        import redis.cluster

        client_class = redis.cluster.RedisCluster if parsed.cluster else redis.Redis
    return client_class.from_url(parsed.client_url, **parsed.client_options), parsed.store_options


def mget_of(client: Any) -> Callable[[list[str]], Any]:
    """The client's MGET of keys in any slots: a cluster's plain MGET refuses keys of
    different slots."""
    mget: Callable[[list[str]], Any] = getattr(client, "mget_nonatomic", client.mget)
    return mget


class HeldConnection:
    """Sends each command on one connection borrowed from the client's pool, skipping
    redis-py's per-command bookkeeping (a third of a command's cost on loopback).

    Only one thread uses it at a time: a thread that finds it busy goes through the client
    as usual. A command that meets a broken connection is sent once more on a new one (all
    the store's commands are idempotent); a timeout is not retried.
    """

    def __init__(self, client: Any, pool: Any) -> None:
        self.client = client
        self.pool = pool
        self.lock = threading.Lock()
        self.connection: Any = None
        self.pid = os.getpid()
        from redis.exceptions import ConnectionError, ResponseError

        self.broken = ConnectionError
        self.reply_error = ResponseError

    def __call__(self, command: Command) -> Any:
        if not self.lock.acquire(blocking=False):
            return self.client.execute_command(*command)
        try:
            try:
                return self._send(command)
            except self.broken:
                return self._send(command)
        finally:
            self.lock.release()

    def _send(self, command: Command) -> Any:
        if self.pid != os.getpid():  # a forked child must not share its parent's socket
            self.connection, self.pid = None, os.getpid()
        if self.connection is None:
            self.connection = self.pool.get_connection()
        connection = self.connection
        try:
            encoder = connection.encoder
            connection.send_packed_command(
                [resp((command,), encoder.encoding, encoder.encoding_errors)]
            )
            return connection.read_response()
        except self.reply_error:
            raise
        except BaseException:
            # a half-read reply would answer the next command: start over on a new socket
            connection.disconnect()
            raise

    def close(self) -> None:
        with self.lock:
            connection, self.connection = self.connection, None
            if connection is not None and self.pid == os.getpid():
                self.pool.release(connection)


Pending = list[tuple[Command, "asyncio.Future[Any]"]]


class Replies:
    """How each awaiting caller gets its answer, or its error as ours: the store's methods
    await the future directly, one coroutine less per command."""

    def __init__(self, errors: Errors) -> None:
        self.errors = errors

    def answer(self, command: Command, future: asyncio.Future[Any], result: Any) -> None:
        if future.done():  # its caller was cancelled
            return
        if isinstance(result, Exception):
            error = self.errors.wrap(result, command[0])
            error.__cause__ = result
            future.set_exception(error)
        else:
            future.set_result(result)

    def fail(self, command: Command, future: asyncio.Future[Any], exc: BaseException) -> None:
        if isinstance(exc, Exception):
            self.answer(command, future, exc)
        elif not future.done():
            future.set_exception(exc)


class Batches(Replies):
    """What the two redis-py based senders share: the commands waiting to go."""

    def __init__(self, errors: Errors) -> None:
        super().__init__(errors)
        self.pending: Pending = []

    def _enqueue(self, command: Command) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending.append((command, future))
        return future

    def _fail(self, batch: Pending, exc: BaseException) -> None:
        for command, future in batch:
            self.fail(command, future, exc)


class AutoPipeline(Batches):
    """Sends the commands issued while the event loop was busy as one pipeline.

    node-redis writes every command in flight on its connection without waiting for the
    answers before; this does the same over any redis-py asyncio client (a cluster's pipeline
    routes each command to its node). Each command still gets its own answer or error.
    """

    def __init__(self, client: Any, errors: Errors) -> None:
        super().__init__(errors)
        self.client = client
        self.tasks: set[asyncio.Task[None]] = set()

    def __call__(self, command: Command) -> asyncio.Future[Any]:
        if not self.pending:
            asyncio.get_running_loop().call_soon(self._flush)
        return self._enqueue(command)

    def _flush(self) -> None:
        batch, self.pending = self.pending, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self.tasks.add(task)  # keep a reference until it is done
        task.add_done_callback(self.tasks.discard)

    async def _send(self, batch: Pending) -> None:
        try:
            if len(batch) == 1:
                results = [await self.client.execute_command(*batch[0][0])]
            else:
                pipe = self.client.pipeline(transaction=False)
                for command, _ in batch:
                    pipe.execute_command(*command)
                results = await pipe.execute(raise_on_error=False)
        except BaseException as exc:  # the whole batch failed (connection lost, cancelled)
            self._fail(batch, exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (command, future), result in zip(batch, results, strict=True):
            self.answer(command, future, result)


class ConnectionPipeline(Batches):
    """The commands awaited at the same time, written together on one connection of the
    client's pool and answered in order, as node-redis does on its socket.

    One batch is on the wire at a time; commands issued meanwhile form the next one. A batch
    that meets a broken connection before any answer is sent once more on a new one; after
    that, or on a timeout, its remaining commands fail and the connection is dropped.
    """

    def __init__(self, pool: Any, timeout: float | None, errors: Errors) -> None:
        super().__init__(errors)
        self.pool = pool
        self.timeout = timeout
        self.draining: asyncio.Task[None] | None = None
        from redis.exceptions import ConnectionError, ResponseError

        self.broken = ConnectionError
        self.reply_error = ResponseError

    def __call__(self, command: Command) -> asyncio.Future[Any]:
        future = self._enqueue(command)
        if self.draining is None:
            self.draining = asyncio.get_running_loop().create_task(self._drain())
        return future

    async def _drain(self) -> None:
        try:
            connection = await self.pool.get_connection()
        except BaseException as exc:
            self.draining = None
            batch, self.pending = self.pending, []
            self._fail(batch, exc)
            if not isinstance(exc, Exception):
                raise
            return
        try:
            while self.pending:
                batch, self.pending = self.pending, []
                await self._send(connection, batch)
                await asyncio.sleep(0)  # let the callers just answered issue their next commands
        finally:
            self.draining = None
            await self.pool.release(connection)

    async def _send(self, connection: Any, batch: Pending) -> None:
        answered = 0
        try:
            for attempt in (1, 2):
                try:
                    encoder = connection.encoder
                    await connection.send_packed_command(
                        resp((c for c, _ in batch), encoder.encoding, encoder.encoding_errors)
                    )
                    async with _timeout(self.timeout):
                        for command, future in batch:
                            try:
                                result = await connection.read_response(timeout=math.inf)
                            except self.reply_error as exc:
                                result = exc
                            answered += 1
                            self.answer(command, future, result)
                    return
                except self.broken:
                    if answered or attempt == 2:
                        raise
                    await connection.disconnect()  # a stale socket: once more on a new one
        except BaseException as exc:
            # unread answers would be taken for the next batch's: drop the connection
            await connection.disconnect()
            self._fail(batch[answered:], exc)
            if not isinstance(exc, Exception):
                raise
