"""How the blocking store's commands reach Redis over a plain redis-py client:
:class:`HeldConnections`, connections kept from the client's pool, one per thread sending at
a time."""

from __future__ import annotations

import os
import select
import socket
import struct
import sys
import time
from typing import Any

from ..spin import DEFAULT_SPIN, ReplySpins, answered, answering
from .resp import READS, Command, resp

__all__ = ["HeldConnections"]

# SO_RCVTIMEO and SO_SNDTIMEO take a struct timeval here; Windows takes milliseconds
_KERNEL_TIMEOUTS = sys.platform != "win32" and hasattr(socket, "SO_RCVTIMEO")
# os.getpid() is a system call: forks are counted instead
_forks = [0]
if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=lambda: _forks.__setitem__(0, _forks[0] + 1))
# a command this large is sent within what is left of its deadline, not the whole timeout
_LARGE = 16384


class _Held:
    """A pool connection and, once it is a plain blocking one bounded by the kernel
    (:meth:`HeldConnections._prepare`), its socket."""

    __slots__ = ("bound", "connection", "sock")

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.sock: socket.socket | None = None
        self.bound = 0.0  # the socket's SO_RCVTIMEO and SO_SNDTIMEO, in seconds


class HeldConnections:
    """Sends each command on a connection taken from the client's pool and kept for the
    store's next commands, skipping redis-py's per-command bookkeeping (a third of a
    command's cost on loopback): one per thread sending at the same time.

    Each command has until its deadline, connecting included. On a plain TCP or Unix socket
    (no TLS; not Windows) the deadline is the kernel's: the socket is blocking, with
    ``SO_RCVTIMEO`` and ``SO_SNDTIMEO`` set to the store's ``timeout`` once, and shortened to
    what is left when a large write or a reconnection took some of it. A reply read in
    several pieces has the timeout for each piece; Redis writes a reply at once, so only a
    server stalled halfway through one would take longer. A Python socket timeout costs a
    ``poll`` before every send and receive and a system call to set it: with the idle check,
    8 system calls a command where 2 or 3 do now; measured side by side, 3 to 13 % more
    operations a second sequentially and 10 to 28 % less CPU each.

    A connection that Redis closed while it was idle is replaced before a write goes on it
    (a ``select`` first); a read goes at once, and is sent once more on a new connection if
    it meets a broken one, as a write never is (it may have reached Redis, and once more
    could undo another client's newer write).
    """

    def __init__(self, pool: Any, timeout: float, spin: float = DEFAULT_SPIN) -> None:
        self.pool = pool
        self.timeout = timeout
        self.spins = ReplySpins(spin)
        self.idle: list[_Held] = []
        self.forks = _forks[0]
        from redis.exceptions import ConnectionError, ResponseError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        self.broken = ConnectionError
        self.reply_error = ResponseError
        self.timed_out = RedisTimeoutError
        from redis.connection import AbstractConnection

        # redis-py 6 and later; before, a connection is made by its own connect()
        self.plain_connect = (
            AbstractConnection.connect
            if hasattr(AbstractConnection, "connect_check_health")
            else None
        )

    def __call__(self, command: Command, deadline: float) -> Any:
        if self.forks != _forks[0]:  # a forked child must not share its parent's sockets
            self.idle, self.forks = [], _forks[0]
        try:
            held = self.idle.pop()
        except IndexError:
            held = _Held(self.pool.get_connection())
        try:
            try:
                return self._send(held, command, deadline)
            except self.broken:
                if command[0] not in READS:
                    raise
                return self._send(held, command, deadline)
        finally:
            self.idle.append(held)

    def _send(self, held: _Held, command: Command, deadline: float) -> Any:
        connection = held.connection
        sock: Any = connection._sock
        if sock is not None and command[0] not in READS and select.select([sock], [], [], 0)[0]:
            connection.disconnect()  # readable while idle: closed by Redis (a restart)
            sock = None
        try:
            if sock is None:
                self._connect(connection, deadline)
                sock = connection._sock
            prepared: Any = held.sock
            if sock is not prepared or sock.gettimeout() is not None:
                self._prepare(held, sock)
            encoder = connection.encoder
            data = resp((command,), encoder.encoding, encoder.encoding_errors)
            if held.sock is None:  # TLS, Windows: redis-py's timeouts bound it
                sock.settimeout(_left(deadline, self.timed_out))
                connection.send_packed_command([data], check_health=False)
                return connection.read_response(timeout=_left(deadline, self.timed_out))
            return self._exchange(held, data, deadline, command[0])
        except self.reply_error:
            raise
        except BaseException:
            # a half-read reply would answer the next command: start over on a new socket
            connection.disconnect()
            held.sock = None
            raise

    def _prepare(self, held: _Held, sock: Any) -> None:
        """Make a newly connected socket blocking with the kernel's timeouts, if it can be."""
        held.sock = None
        if _KERNEL_TIMEOUTS and type(sock) is socket.socket:
            sock.settimeout(None)
            self._bound(held, sock, self.timeout)
            held.sock = sock

    def _exchange(self, held: _Held, data: bytes, deadline: float, name: str) -> Any:
        sock, connection = held.sock, held.connection
        assert sock is not None
        answering()
        try:
            if len(data) > _LARGE:
                self._bound(held, sock, _left(deadline, self.timed_out))
            sock.sendall(data)
            self.spins[name].wait(sock.fileno())
            if deadline - time.monotonic() < held.bound - 0.01:
                self._bound(held, sock, _left(deadline, self.timed_out))
            # redis-py's parser reads the reply (RESP2 or 3, its push messages, its decoding);
            # no timeout of its own: no system call to set one
            reply = connection.read_response()
        except (TimeoutError, BlockingIOError):  # SO_SNDTIMEO ran out
            raise self.timed_out("Redis did not answer within the store's timeout") from None
        except OSError as exc:  # reset, broken pipe
            raise self.broken(f"connection to Redis lost: {exc}") from exc
        except self.broken as exc:
            # the parser's words for SO_RCVTIMEO running out
            if isinstance(exc.__context__, (TimeoutError, BlockingIOError)):
                raise self.timed_out("Redis did not answer within the store's timeout") from None
            raise
        finally:
            answered()
        if held.bound != self.timeout:
            self._bound(held, sock, self.timeout)
        return reply

    @staticmethod
    def _bound(held: _Held, sock: socket.socket, seconds: float) -> None:
        whole = int(seconds)
        micros = int((seconds - whole) * 1e6)
        # zero would be no timeout at all
        timeval = struct.pack("ll", whole, micros if whole or micros else 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
        held.bound = seconds

    def _connect(self, connection: Any, deadline: float) -> None:
        # once, handshake included, within what is left of the deadline: not the
        # connection's own retries
        own = connection.socket_connect_timeout, connection.socket_timeout
        left = _left(deadline, self.timed_out)
        connection.socket_connect_timeout = connection.socket_timeout = left
        try:
            if type(connection).connect is self.plain_connect:
                connection.connect_check_health(check_health=True, retry_socket_connect=False)
            else:  # a Sentinel's connection finds the master in its own connect()
                connection.connect()
        finally:
            connection.socket_connect_timeout, connection.socket_timeout = own

    def close(self) -> None:
        idle, self.idle = self.idle, []
        if self.forks == _forks[0]:
            for held in idle:
                # its socket has the store's timeouts: the client connects anew, with its own
                held.connection.disconnect()
                self.pool.release(held.connection)


def _left(deadline: float, timed_out: type[Exception]) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise timed_out("the store's timeout passed before Redis answered")
    return left
