"""How the Redis stores' commands reach Redis, over any redis-py client.

- :class:`ConnectionPipeline` (asyncio): the commands awaited at once, written together on
  one of the pool's connections; :class:`AutoPipeline` does the same through a client's
  pipeline (a cluster's routes each command to its node). The lean connection of
  ``lean.py`` comes before both where it can.
- :class:`Errors` turns redis-py's exceptions into ours.
"""

from __future__ import annotations

import asyncio
import math
import sys
from typing import Any

from ...errors import BackendUnavailableError, InvalidArgumentError, TokenSessionError
from .resp import READS, resp

if sys.version_info >= (3, 11):
    from asyncio import timeout as timeout_after
else:
    # redis-py depends on async-timeout below Python 3.11.3
    from async_timeout import timeout as timeout_after  # type: ignore[import-not-found, unused-ignore]

Command = tuple[Any, ...]
__all__ = [
    "AutoPipeline",
    "ConnectionPipeline",
    "Errors",
    "Replies",
    "decodes_replies",
    "key_of",
    "plain_pool",
    "primaries_of",
    "scan_step",
    "timeout_after",
]

# Error replies that say the server cannot serve now, not that the command is wrong: as the
# lean connection reads them (redis-py gives them classes of their own, listed in Errors)
_UNAVAILABLE_REPLIES = ("LOADING ", "MASTERDOWN ", "CLUSTERDOWN ", "TRYAGAIN ", "READONLY ")


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
            exceptions.ReadOnlyError,
            asyncio.TimeoutError,
            OSError,
        )

    def wrap(self, exc: BaseException, command: str) -> TokenSessionError:
        if "Cluster mode is not enabled" in str(exc):  # redis-py's RedisClusterException
            return InvalidArgumentError(
                "a Redis Cluster client (?cluster=1) on a Redis that is no cluster node: "
                "drop ?cluster=1, or name a node of the cluster"
            )
        if "Redis Cluster cannot be connected" in str(exc):
            return BackendUnavailableError(
                f"no node of the Redis Cluster answers during {command}: {exc}"
            )
        if isinstance(exc, self.unavailable) or str(exc).startswith(_UNAVAILABLE_REPLIES):
            return BackendUnavailableError(
                f"Redis unavailable during {command}: {exc or type(exc).__name__}; "
                "check that Redis is up and reachable (the store retries on the next call)"
            )
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


def decodes_replies(client: Any) -> bool:
    """Whether ``client`` gives text for Redis's bytes (``decode_responses``)."""
    get_encoder = getattr(client, "get_encoder", None)
    if get_encoder is not None:
        return bool(getattr(get_encoder(), "decode_responses", False))
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", None) or {}
    return bool(kwargs.get("decode_responses"))


def key_of(command: Command) -> Any:
    """The key a command of the store's names (EVALSHA and EVAL: their one key)."""
    return command[3] if command[0] in ("EVALSHA", "EVAL") else command[1]


def primaries_of(client: Any) -> list[Any]:
    """The nodes a SCAN walks: a cluster's primaries, else ``[None]``, the one server."""
    primaries = getattr(client, "get_primaries", None)
    return list(primaries()) if primaries is not None else [None]


def scan_step(answer: Any, node: Any = None) -> tuple[int, list[bytes | str]]:
    """A SCAN's answer as (the next cursor, the keys): Redis's reply, redis-py's
    ``(cursor, keys)``, or a cluster's ``({node name: cursor}, keys)`` for ``node``."""
    cursor, keys = answer
    if node is not None:
        cursor = cursor[node.name]
    return int(cursor), list(keys)


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
    """Sends the commands issued while the event loop was busy as one pipeline per node.

    node-redis writes every command in flight on its connection without waiting for the
    answers before; this does the same over any redis-py asyncio client. On a cluster the
    commands go in one pipeline per node, at the same time, so that a node that fails or
    stalls fails only its own commands. Each command gets its own answer or error, within
    ``timeout``.
    """

    def __init__(self, client: Any, timeout: float, errors: Errors) -> None:
        super().__init__(errors)
        self.client = client
        self.timeout = timeout
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
        groups = await self._by_node(batch)
        if len(groups) == 1:
            await self._send_group(batch)
        else:
            await asyncio.gather(*(self._send_group(group) for group in groups))

    async def _by_node(self, batch: Pending) -> list[Pending]:
        node_of = getattr(self.client, "get_node_from_key", None)
        if node_of is None or len(batch) == 1:
            return [batch]
        groups: dict[str, Pending] = {}
        try:
            async with timeout_after(self.timeout):
                await self.client.initialize()  # the slots' owners, once
            for item in batch:
                groups.setdefault(node_of(key_of(item[0])).name, []).append(item)
        except Exception:  # the owners unknown for now: the cluster pipeline finds them
            return [batch]
        return list(groups.values())

    async def _send_group(self, batch: Pending) -> None:
        try:
            async with timeout_after(self.timeout):
                if len(batch) == 1:
                    results = [await self.client.execute_command(*batch[0][0])]
                else:
                    pipe = self.client.pipeline(transaction=False)
                    for command, _ in batch:
                        pipe.execute_command(*command)
                    results = await pipe.execute(raise_on_error=False)
        except BaseException as exc:  # the whole group failed (connection lost, cancelled)
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
    of reads that meets a broken connection before any answer is sent once more on a new
    one, within the same ``timeout``; otherwise its remaining commands fail and the
    connection is dropped.
    """

    def __init__(self, pool: Any, timeout: float, errors: Errors) -> None:
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
            async with timeout_after(self.timeout):
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
        reads = all(command[0] in READS for command, _ in batch)
        try:
            async with timeout_after(self.timeout):
                for attempt in (1, 2):
                    try:
                        encoder = connection.encoder
                        await connection.send_packed_command(
                            resp((c for c, _ in batch), encoder.encoding, encoder.encoding_errors)
                        )
                        for command, future in batch:
                            try:
                                result = await connection.read_response(timeout=math.inf)
                            except self.reply_error as exc:
                                result = exc
                            answered += 1
                            self.answer(command, future, result)
                        return
                    except self.broken:
                        if answered or attempt == 2 or not reads:
                            raise
                        await connection.disconnect()  # a stale socket: once more on a new one
        except BaseException as exc:
            # unread answers would be taken for the next batch's: drop the connection
            await connection.disconnect()
            self._fail(batch[answered:], exc)
            if not isinstance(exc, Exception):
                raise
