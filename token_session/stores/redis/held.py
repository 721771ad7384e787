"""How the blocking store's commands reach Redis over a plain redis-py client:
:class:`HeldConnections`, connections kept from the client's pool, one per thread sending at
a time."""

from __future__ import annotations

import os
import select
import time
from typing import Any

from .resp import READS, Command, resp

__all__ = ["HeldConnections"]


class HeldConnections:
    """Sends each command on a connection taken from the client's pool and kept for the
    store's next commands, skipping redis-py's per-command bookkeeping (a third of a
    command's cost on loopback): one per thread sending at the same time.

    Each command has until its deadline, connecting included. A connection that Redis
    closed while it was idle is replaced before anything is written to it; a read that
    meets a broken connection is sent once more on a new one, a write never (it may have
    reached Redis, and once more could undo another client's newer write).
    """

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.idle: list[Any] = []
        self.pid = os.getpid()
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
        if self.pid != os.getpid():  # a forked child must not share its parent's sockets
            self.idle, self.pid = [], os.getpid()
        try:
            connection = self.idle.pop()
        except IndexError:
            connection = self.pool.get_connection()
        try:
            try:
                return self._send(connection, command, deadline)
            except self.broken:
                if command[0] not in READS:
                    raise
                return self._send(connection, command, deadline)
        finally:
            self.idle.append(connection)

    def _send(self, connection: Any, command: Command, deadline: float) -> Any:
        sock = getattr(connection, "_sock", None)
        if sock is not None and select.select([sock], [], [], 0)[0]:
            connection.disconnect()  # readable while idle: closed by Redis (a restart)
        try:
            if getattr(connection, "_sock", None) is None:
                self._connect(connection, deadline)
            encoder = connection.encoder
            connection._sock.settimeout(_left(deadline, self.timed_out))
            connection.send_packed_command(
                [resp((command,), encoder.encoding, encoder.encoding_errors)], check_health=False
            )
            return connection.read_response(timeout=_left(deadline, self.timed_out))
        except self.reply_error:
            raise
        except BaseException:
            # a half-read reply would answer the next command: start over on a new socket
            connection.disconnect()
            raise

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
        if self.pid == os.getpid():
            for connection in idle:
                # its socket has the store's timeouts: the client connects anew, with its own
                connection.disconnect()
                self.pool.release(connection)


def _left(deadline: float, timed_out: type[Exception]) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise timed_out("the store's timeout passed before Redis answered")
    return left
