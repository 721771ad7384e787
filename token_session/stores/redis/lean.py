"""A lean RESP2 connection for :class:`~token_session.stores.redis.AsyncRedisStore`'s
get, set, touch and destroy, where a command's cost is what bounds the rate.

Commands issued together go out together: a batch is written as soon as it holds as many
commands as Redis is still answering, else at the end of the event loop's turn, so that
Redis works on one batch while this process prepares the next. Replies are read in the
protocol's callback and handed to each caller's future: no task, no per-reply coroutine,
as node-redis does on its socket.

It is used only where it can connect exactly as the client's own connections do (see
:func:`lean_settings`); the store falls back to the client otherwise. The client still serves
everything else (SCAN, MGET, DEL batches).
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import select
import socket
from collections.abc import Callable
from typing import Any

from .resp import READS, Command, LeanSettings, ProtocolError, new_reader, resp

_running_loop = asyncio.get_running_loop
_Future = asyncio.Future


# A future's callbacks as (callback, context) pairs: asyncio's C and Python futures have it
_CAN_TAKE_CALLBACKS = hasattr(asyncio.Future, "_callbacks")
Wakeup = tuple["asyncio.Future[Any]", Callable[..., object], contextvars.Context]


def _wake(owner: LeanConnection, wakeups: list[Wakeup]) -> None:
    """Run the callbacks ``data_received`` took from answered futures, in order, as the event
    loop would have run them."""
    loop = owner.loop
    # the commands the resumed tasks send meanwhile are sent from this loop: no need to ask
    owner.waking_on = loop
    try:
        for position, (future, callback, context) in enumerate(wakeups):
            try:
                context.run(callback, future)
            except (SystemExit, KeyboardInterrupt):
                for rest in wakeups[position + 1 :]:  # the loop still runs the others
                    loop.call_soon(rest[1], rest[0], context=rest[2])
                raise
            except BaseException as exc:  # reported as asyncio reports a failing callback
                loop.call_exception_handler(
                    {"message": f"Exception in callback {callback!r}", "exception": exc}
                )
    finally:
        owner.waking_on = None


# (command, its future, the loop's time by which it is answered or fails, sent again once)
Waiter = tuple[Command, "asyncio.Future[Any]", float, bool]


class _Protocol(asyncio.Protocol):
    """One socket: writes what :class:`LeanConnection` gives it, answers waiters in order."""

    def __init__(self, owner: LeanConnection, reader: Any) -> None:
        self.owner = owner
        self.reader = reader
        self.waiters: collections.deque[Waiter] = collections.deque()
        # a write-capable transport; uvloop's are not asyncio.Transport instances
        self.transport: Any = None
        self.timer: asyncio.TimerHandle | None = None
        self.lost = False
        self.fileno = -1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            self.fileno = sock.fileno()

    def closed_by_peer(self) -> bool:
        """Whether Redis closed the socket while it was idle, the loop not knowing yet: a
        restarted server's socket, which must not be written to (a write is not resent)."""
        if self.waiters or self.lost or self.fileno < 0:
            return False
        try:
            return bool(select.select([self.fileno], [], [], 0)[0])
        except (OSError, ValueError):
            return True

    def write(self, batch: list[Waiter]) -> None:
        owner = self.owner
        encoding = owner.encoding, owner.encoding_errors
        try:
            data = resp((waiter[0] for waiter in batch), *encoding)
        except (UnicodeError, TypeError):  # some command cannot be sent: fail it alone
            sendable = []
            for waiter in batch:
                try:
                    resp((waiter[0],), *encoding)
                except (UnicodeError, TypeError) as exc:
                    owner.fail(waiter[0], waiter[1], exc)
                else:
                    sendable.append(waiter)
            batch = sendable
            data = resp((waiter[0] for waiter in batch), *encoding)
        # a waiter only for what is written: the replies are matched to them in order
        self.waiters.extend(batch)
        self.transport.write(data)
        if self.timer is None and self.waiters:
            self.timer = owner.loop.call_at(self.waiters[0][2], self._timed_out)

    def data_received(self, data: bytes) -> None:
        reader, waiters, answer = self.reader, self.waiters, self.owner.answer
        wakeups: list[Wakeup] = []
        try:
            reader.feed(data)
            while waiters:
                reply = reader.gets()
                if reply is False:
                    break
                command, future, _, _ = waiters.popleft()
                if isinstance(reply, Exception) or future.done():
                    answer(command, future, reply)
                    continue
                # The awaiting task's wake-up, the future's one callback, is run by _wake
                # below, not scheduled by set_result: node-redis, too, resolves a command's
                # promise on its socket's data event, and going through call_soon and the
                # loop's next turn costs a fifth of a command here.
                callbacks = future._callbacks if _CAN_TAKE_CALLBACKS else None
                if callbacks and len(callbacks) == 1:
                    callback, context = callbacks[0]
                    future.remove_done_callback(callback)
                    wakeups.append((future, callback, context))
                future.set_result(reply)
        except Exception as exc:  # not RESP: nothing after this can be trusted
            self.abort(ProtocolError(f"Redis sent what is not RESP: {exc}"), retry=False)
            _wake(self.owner, wakeups)  # what was answered before stands
            return
        if self.timer is not None:
            self.timer.cancel()
            # the oldest command waiting has until its own deadline
            self.timer = (
                self.owner.loop.call_at(waiters[0][2], self._timed_out) if waiters else None
            )
        _wake(self.owner, wakeups)

    def connection_lost(self, exc: Exception | None) -> None:
        self.abort(ConnectionError(f"connection to Redis lost: {exc or 'closed by the server'}"))

    def _timed_out(self) -> None:
        self.timer = None
        # the replies come in order: all behind the oldest wait with it
        self.abort(TimeoutError(f"Redis did not answer within {self.owner.timeout} s"), False)

    def abort(self, exc: Exception, retry: bool = True) -> None:
        if self.lost:
            return
        self.lost = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.transport is not None:
            self.transport.abort()
        waiters, self.waiters = list(self.waiters), collections.deque()
        self.owner.lost(self, waiters, exc, retry)


class LeanConnection:
    """Sends the store's commands on one socket of its own, connecting on first use and
    again after a loss. Each command is answered or fails within ``timeout`` of its call,
    connecting included. A read the loss left unanswered is sent once more on the new socket
    within that time; a write never is (see ``READS``). A socket Redis closed while idle
    is replaced before anything is written to it.

    A reply becomes its caller's future's result here; ``answer(command, future, reply)``
    settles the future of an error reply (an exception instance) or of a cancelled caller,
    and ``fail(command, future, exc)`` a future with a failure.
    """

    def __init__(
        self,
        settings: LeanSettings,
        timeout: float,
        answer: Callable[[Command, asyncio.Future[Any], Any], None],
        fail: Callable[[Command, asyncio.Future[Any], BaseException], None],
    ) -> None:
        self.settings = settings
        self.timeout = timeout
        self.encoding = settings.encoding
        self.encoding_errors = settings.encoding_errors
        self.answer = answer
        self.fail = fail
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self.protocol: _Protocol | None = None
        self.connecting: asyncio.Task[None] | None = None
        self.queued: list[Waiter] = []
        self.flush_scheduled = False
        self.closed = False
        # the loop while _wake runs tasks on it: get_running_loop() costs a getpid() system
        # call each time before Python 3.12, as much as a tenth of a command
        self.waking_on: asyncio.AbstractEventLoop | None = None

    def __call__(self, command: Command) -> asyncio.Future[Any]:
        loop = self.waking_on
        if loop is None:
            loop = _running_loop()
        if loop is not self.loop:  # first use, or a new event loop: start afresh there
            self.loop, self.protocol, self.connecting = loop, None, None
        # what loop.create_future() gives on asyncio's and uvloop's loops, one call less
        future: asyncio.Future[Any] = _Future(loop=loop)
        queued = self.queued
        queued.append((command, future, loop.time() + self.timeout, False))
        protocol = self.protocol
        if protocol is not None and protocol.closed_by_peer():
            protocol.abort(ConnectionError("connection closed by Redis"), retry=False)
            protocol = None
        # as soon as a batch is as large as the one Redis is answering, it goes: Redis then
        # works on one batch while this process prepares the next
        if protocol is not None and len(queued) >= len(protocol.waiters) and not protocol.lost:
            # written here, not by _flush: a flush already scheduled stays the only one
            self.queued = []
            protocol.write(queued)
        elif not self.flush_scheduled:
            self.flush_scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self.flush_scheduled = False
        protocol = self.protocol
        if protocol is not None and protocol.closed_by_peer():
            protocol.abort(ConnectionError("connection closed by Redis"), retry=False)
        if protocol is None or protocol.lost:
            if self.connecting is None:
                self.connecting = self.loop.create_task(self._connect())
            return  # _connect flushes once connected
        batch, self.queued = self.queued, []
        if batch:
            protocol.write(batch)

    async def _connect(self) -> None:
        try:
            if self.closed:
                raise ConnectionError("the store is closed")
            # the oldest command waiting has until its deadline, connecting included
            left = self.queued[0][2] - self.loop.time() if self.queued else self.timeout
            self.protocol = await asyncio.wait_for(self._open(), max(left, 0.0))
        except BaseException as exc:
            self.connecting = None
            self.protocol = None
            batch, self.queued = self.queued, []
            failure = exc if isinstance(exc, Exception) else ConnectionError("cancelled")
            if isinstance(exc, asyncio.TimeoutError):
                failure = TimeoutError("connecting to Redis timed out")
            for command, future, _, _ in batch:
                self.fail(command, future, failure)
            if not isinstance(exc, Exception):
                raise
            return
        self.connecting = None
        self._flush()

    async def _open(self) -> _Protocol:
        settings = self.settings
        reader = new_reader(settings.hiredis)
        if settings.path is not None:
            _, protocol = await self.loop.create_unix_connection(
                lambda: _Protocol(self, reader), settings.path
            )
        else:
            transport, protocol = await self.loop.create_connection(
                lambda: _Protocol(self, reader), settings.host or "localhost", settings.port
            )
            sock = transport.get_extra_info("socket")
            if sock is not None and settings.keepalive:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        await self._handshake(protocol)
        return protocol

    async def _handshake(self, protocol: _Protocol) -> None:
        settings = self.settings
        commands: list[Command] = []
        if settings.username or settings.password:  # as redis-py: a user without password too
            user = (settings.username,) if settings.username else ()
            commands.append(("AUTH", *user, settings.password or ""))
        if settings.db:
            commands.append(("SELECT", settings.db))
        if settings.client_name:
            commands.append(("CLIENT", "SETNAME", settings.client_name))
        if not commands:
            return
        futures = [self.loop.create_future() for _ in commands]
        deadline = self.loop.time() + self.timeout
        protocol.write([(c, f, deadline, True) for c, f in zip(commands, futures, strict=True)])
        for command, future in zip(commands, futures, strict=True):
            try:
                await future
            except Exception as exc:
                protocol.abort(ConnectionError(f"{command[0]} failed: {exc}"), retry=False)
                raise ConnectionError(f"Redis refused {command[0]}: {exc}") from None

    def lost(self, protocol: _Protocol, waiters: list[Waiter], exc: Exception, retry: bool) -> None:
        """The socket is gone: send the reads it left unanswered once more, fail the rest."""
        if protocol is self.protocol:
            self.protocol = None
        again: list[Waiter] = []
        now = self.loop.time()
        for command, future, deadline, retried in waiters:
            if future.done():
                continue
            if retry and not retried and not self.closed and command[0] in READS and deadline > now:
                again.append((command, future, deadline, True))
            else:
                self.fail(command, future, exc)
        if again:
            self.queued[:0] = again
            if not self.flush_scheduled:
                self.flush_scheduled = True
                self.loop.call_soon(self._flush)

    def close(self) -> None:
        """Close the socket; what is still waiting fails."""
        self.closed = True
        closed = ConnectionError("the store was closed")
        batch, self.queued = self.queued, []
        for command, future, _, _ in batch:
            self.fail(command, future, closed)
        if self.protocol is not None:
            self.protocol.abort(closed, retry=False)
