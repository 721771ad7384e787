"""RESP2's bytes for the Redis stores' commands and replies: :func:`resp` packs commands
(with hiredis's packer where it is installed), :class:`PythonReader` reads replies where
hiredis is not; :func:`lean_settings` says which redis-py pools' connections speak plain RESP2,
so that ``lean.py``'s connection can stand in for them.

Both Python halves stay, as measured without hiredis, side by side in one run: through
redis-py's connection the asyncio store spends 1.3 to 2.3 times the lean connection's CPU per
get, touch or get+touch (set: 1.0 to 1.8; the redis-py@64 column of ``bench/bench_redis.py
--parser python``), and redis-py's packer costs the blocking store 3 to 56 percent more CPU
per command than :func:`python_resp`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

_HiredisReader: Any
_pack_command: Any
try:
    from hiredis import Reader as _HiredisReader
except ImportError:  # pragma: no cover - without hiredis the Python reader serves
    _HiredisReader = None
try:
    from hiredis import pack_command as _pack_command  # hiredis 2.1+
except ImportError:  # pragma: no cover - without it the Python packer serves
    _pack_command = None

Command = tuple[Any, ...]

# What may be sent again after a connection broke with it unanswered: it may have reached
# Redis, and only a read is the same done twice. A SET, EXPIRE or DEL sent again could undo
# another client's write made in between (a newer SET, a DEL then a SET of the same id).
READS = frozenset({"GET", "PTTL", "MGET", "SCAN"})


class ReplyError(Exception):
    """An error reply (``-ERR ...``) read by :class:`PythonReader`."""


class ProtocolError(ConnectionError):
    """The server sent bytes that are not RESP."""


def resp(commands: Iterable[Command], encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """The store's commands (``str``, ``int`` and ``bytes`` arguments) as RESP arrays of
    bulk strings, the bytes redis-py's packer writes for them, at a fraction of its cost."""
    if _pack_command is not None and encoding == "utf-8" and errors == "strict":
        return b"".join([_pack_command(command) for command in commands])
    return python_resp(commands, encoding, errors)


def python_resp(commands: Iterable[Command], encoding: str, errors: str) -> bytes:
    """:func:`resp` without hiredis, or for another encoding than strict UTF-8."""
    parts: list[bytes] = []
    for command in commands:
        parts.append(b"*%d\r\n" % len(command))
        for arg in command:
            if type(arg) is str:
                data = arg.encode(encoding, errors)
            elif type(arg) is int:
                data = b"%d" % arg
            elif type(arg) is bytes:  # a key that is not UTF-8, deleted by clear()
                data = arg
            else:  # as hiredis refuses what it cannot pack
                raise TypeError(
                    f"a command argument must be str, int or bytes, not {type(arg).__name__}"
                )
            parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


class _IncompleteError(Exception):
    pass


class PythonReader:
    """RESP2 replies from a byte stream, with hiredis.Reader's interface: ``feed`` bytes,
    ``gets`` a reply or False when none is complete yet; an error reply is returned as a
    :class:`ReplyError`, not raised."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.start = 0

    def feed(self, data: bytes) -> None:
        self.buffer += data

    def gets(self) -> Any:
        try:
            reply, end = self._parse(self.start)
        except _IncompleteError:
            return False
        self.start = end
        if end > 65536:
            del self.buffer[:end]
            self.start = 0
        return reply

    def _parse(self, at: int) -> tuple[Any, int]:
        buffer = self.buffer
        line_end = buffer.find(b"\r\n", at)
        if line_end < 0:
            raise _IncompleteError
        kind, line, after = buffer[at], bytes(buffer[at + 1 : line_end]), line_end + 2
        if kind == 43:  # + simple string
            return line, after
        if kind == 45:  # - error
            return ReplyError(line.decode("utf-8", "replace")), after
        if kind == 58:  # : integer
            return int(line), after
        if kind == 36:  # $ bulk string
            size = int(line)
            if size < 0:
                return None, after
            if len(buffer) < after + size + 2:
                raise _IncompleteError
            return bytes(buffer[after : after + size]), after + size + 2
        if kind == 42:  # * array
            count = int(line)
            if count < 0:
                return None, after
            items = []
            for _ in range(count):
                item, after = self._parse(after)
                items.append(item)
            return items, after
        raise ProtocolError(f"not a RESP reply: {bytes(buffer[at : at + 20])!r}")


def new_reader(hiredis: bool) -> Any:
    """A reader of replies: hiredis's, or :class:`PythonReader`."""
    return _HiredisReader() if hiredis else PythonReader()


@dataclass(frozen=True)
class LeanSettings:
    """Where and how to connect, taken from a redis-py asyncio pool's settings."""

    host: str | None
    port: int
    path: str | None
    db: int
    username: str | None
    password: str | None
    client_name: str | None
    keepalive: bool
    encoding: str
    encoding_errors: str
    hiredis: bool


# Connection settings that change nothing on the wire for the store's commands, or that only
# redis-py itself reads (retries and health checks: the lean connection reconnects on its own;
# timeouts: it waits the store's `timeout`).
_HARMLESS = {
    "socket_read_size",
    "retry",
    "retry_on_error",
    "retry_on_timeout",
    "health_check_interval",
    "decode_responses",  # the store decodes the bytes itself
    "lib_name",
    "lib_version",
    "driver_info",
    "legacy_responses",
    "himport_registry",
    "event_dispatcher",
    "maint_notifications_pool_handler",
    "maint_notifications_config",
    "orig_host_address",
    "orig_socket_timeout",
    "orig_socket_connect_timeout",
    "socket_keepalive_options",
    "socket_type",
}
_UNDERSTOOD = {
    "host",
    "port",
    "path",
    "db",
    "username",
    "password",
    "client_name",
    "socket_timeout",
    "socket_connect_timeout",
    "socket_keepalive",
    "encoding",
    "encoding_errors",
    "parser_class",
    "protocol",
    "credential_provider",
    "redis_connect_func",
}


def lean_settings(pool: Any) -> LeanSettings | None:
    """The settings of a pool of plain TCP or Unix-socket connections speaking RESP2 with a
    password at most; None for anything else (TLS, a credential provider, RESP3, a custom
    connection class or parser, a Sentinel pool, a setting this module does not know)."""
    from redis.asyncio.connection import Connection, UnixDomainSocketConnection

    kwargs: dict[str, Any] = getattr(pool, "connection_kwargs", None) or {}
    connection_class = getattr(pool, "connection_class", None)
    if connection_class not in (Connection, UnixDomainSocketConnection):
        return None
    if set(kwargs) - _HARMLESS - _UNDERSTOOD:
        return None
    if kwargs.get("credential_provider") or kwargs.get("redis_connect_func"):
        return None
    if kwargs.get("protocol") not in (None, 2, "2"):
        return None
    use_hiredis = _HiredisReader is not None
    parser = kwargs.get("parser_class")
    if parser is not None:
        from redis._parsers import _AsyncHiredisParser, _AsyncRESP2Parser

        if parser not in (_AsyncHiredisParser, _AsyncRESP2Parser):
            return None
        use_hiredis = parser is _AsyncHiredisParser and _HiredisReader is not None
    unix = connection_class is UnixDomainSocketConnection
    return LeanSettings(
        host=None if unix else str(kwargs.get("host", "localhost")),
        port=int(kwargs.get("port", 6379)),
        path=kwargs.get("path") if unix else None,
        db=int(kwargs.get("db") or 0),
        username=kwargs.get("username"),
        password=kwargs.get("password"),
        client_name=kwargs.get("client_name"),
        keepalive=bool(kwargs.get("socket_keepalive")),
        encoding=kwargs.get("encoding") or "utf-8",
        encoding_errors=kwargs.get("encoding_errors") or "strict",
        hiredis=use_hiredis,
    )
