"""Redis store, byte for byte what connect-redis 9.0.0 writes (and 7.1.1 and 6.1.3 wrote).

The rules live in :class:`RedisCodec`, which does no I/O: the key of a session, the value
bytes, the TTL, and the command each operation sends. :class:`RedisStore` (redis-py) and
:class:`AsyncRedisStore` (``redis.asyncio``) only send those commands. Either takes any client
that speaks redis-py's API (``Redis``, ``RedisCluster``, a Sentinel master, their asyncio
twins); nothing checks its class.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from ...compat.cookie import expires_ms, now_ms
from ...compat.jsjson import loads
from ...errors import (
    InvalidArgumentError,
    SessionDecodeError,
)
from ..base import Session, check_sid, encode_session
from ..records import (
    Finding,
    Page,
    RawRecord,
    StoredSession,
    WriteResult,
    check_limit,
    plan_writes,
)
from .lean import LeanConnection, lean_settings
from .senders import (
    AutoPipeline,
    ConnectionPipeline,
    Errors,
    HeldConnection,
    Replies,
    plain_pool,
)

__all__ = ["AsyncRedisStore", "RedisCodec", "RedisRecords", "RedisStore"]

log = logging.getLogger(__name__)

Command = tuple[Any, ...]
TTL = float | Callable[[Mapping[str, Any]], float]

# How many keys one MGET or DEL carries in all() and clear().
BATCH = 500


class Serializer(Protocol):
    def stringify(self, session: Any) -> str: ...

    def parse(self, text: str) -> Any: ...


class _NodeJSON:
    """connect-redis's default serializer: ``JSON`` (stringify / parse)."""

    @staticmethod
    def stringify(session: Any) -> str:
        return encode_session(session)

    @staticmethod
    def parse(text: str) -> Any:
        return loads(text)


class _PythonStyle:
    """A serializer object with ``dumps`` / ``loads`` (as Python's json and pickle-likes)."""

    def __init__(self, impl: Any) -> None:
        self.impl = impl

    def stringify(self, session: Any) -> str:
        text = self.impl.dumps(session)
        return text.decode("utf-8") if isinstance(text, bytes) else str(text)

    def parse(self, text: str) -> Any:
        return self.impl.loads(text)


def _serializer(value: Any) -> Serializer:
    if value is None:
        return _NodeJSON()
    if hasattr(value, "stringify") and hasattr(value, "parse"):
        return value  # type: ignore[no-any-return]
    if hasattr(value, "dumps") and hasattr(value, "loads"):
        return _PythonStyle(value)
    raise InvalidArgumentError("serializer needs stringify/parse or dumps/loads methods")


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


@dataclass(frozen=True)
class RedisCodec:
    """What connect-redis does, as data: keys, values, TTLs and commands. No I/O."""

    prefix: str = "sess:"
    ttl: TTL = 86400
    scan_count: int = 100
    serializer: Serializer = field(default_factory=_NodeJSON)
    disable_ttl: bool = False
    disable_touch: bool = False
    clock: Callable[[], int] = now_ms

    def __post_init__(self) -> None:
        # connect-redis: `opts.prefix == null ? "sess:"`, `opts.ttl || 86400`,
        # `opts.scanCount || 100`
        if self.prefix is None:
            object.__setattr__(self, "prefix", "sess:")
        if not self.ttl:
            object.__setattr__(self, "ttl", 86400)
        if not self.scan_count:
            object.__setattr__(self, "scan_count", 100)
        if not isinstance(self.prefix, str):
            raise InvalidArgumentError("prefix must be a str")
        if not callable(self.ttl) and (
            isinstance(self.ttl, bool) or not isinstance(self.ttl, (int, float))
        ):
            raise InvalidArgumentError("ttl must be seconds or a function of the session")
        if isinstance(self.scan_count, bool) or not isinstance(self.scan_count, int):
            raise InvalidArgumentError("scan_count must be an int")

    def key(self, sid: str) -> str:
        return self.prefix + check_sid(sid)

    def ttl_of(self, session: Mapping[str, Any]) -> float:
        """connect-redis ``getTTL``: the option's function, else whole seconds until
        ``cookie.expires`` rounded up, else the ``ttl`` option. NaN for an Invalid Date."""
        if callable(self.ttl):
            return self.ttl(session)
        expiry = expires_ms(session)
        if expiry is None:
            return self.ttl
        return math.ceil((expiry - self.clock()) / 1000) if math.isfinite(expiry) else math.nan

    def get_command(self, sid: str) -> Command:
        return ("GET", self.key(sid))

    def decode(self, sid: str, raw: bytes | str | None) -> Session | None:
        if not raw:  # connect-redis: `if (!data) return null`
            return None
        serializer = self.serializer
        try:
            if not isinstance(raw, bytes):
                value = serializer.parse(raw)
            elif type(serializer) is _NodeJSON:
                try:  # parsed from the bytes where they are UTF-8, as they almost always are
                    value = loads(raw)
                except UnicodeDecodeError:
                    value = loads(raw.decode("utf-8", "replace"))
            else:  # node-redis reads a reply as UTF-8, bytes that are not as U+FFFD
                value = serializer.parse(raw.decode("utf-8", "replace"))
        except (ValueError, TypeError) as exc:
            raise SessionDecodeError(sid, f"{type(exc).__name__}: {exc}") from None
        if not isinstance(value, dict):
            raise SessionDecodeError(sid, f"{type(value).__name__}, not an object")
        return value

    def set_command(self, sid: str, session: Mapping[str, Any]) -> Command:
        """SET with EX (or without, under ``disable_ttl``); a DEL when the TTL is not > 0,
        as connect-redis 9.0.0 destroys a session whose cookie has expired."""
        key = self.key(sid)
        if type(session) is not dict and not isinstance(session, Mapping):
            raise InvalidArgumentError(f"session must be a dict, not {type(session).__name__}")
        value = self.serializer.stringify(session)
        ttl = self.ttl_of(session)
        if not ttl > 0:
            return ("DEL", key)
        if self.disable_ttl:
            return ("SET", key, value)
        return ("SET", key, value, "EX", int(ttl))

    def touch_command(self, sid: str, session: Mapping[str, Any]) -> Command | None:
        """EXPIRE with the session's TTL; nothing under ``disable_touch`` / ``disable_ttl``.

        EXPIRE never creates a key, so a touch cannot revive a destroyed session; a TTL that
        is not > 0 makes Redis delete the key, as it does for connect-redis.
        """
        key = self.key(sid)
        if self.disable_touch or self.disable_ttl:
            return None
        if type(session) is not dict and not isinstance(session, Mapping):
            raise InvalidArgumentError(f"session must be a dict, not {type(session).__name__}")
        ttl = self.ttl_of(session)
        # an unreadable cookie.expires counts as expired, as set_command deletes such a session
        return ("EXPIRE", key, int(ttl) if math.isfinite(ttl) else 0)

    def destroy_command(self, sid: str) -> Command:
        return ("DEL", self.key(sid))

    def match_pattern(self) -> str:
        # connect-redis matches `prefix + "*"` with the prefix raw, so a prefix holding glob
        # characters ("sess[1]:") also matches other keys; we escape it and find only ours.
        return _glob_escape(self.prefix) + "*"

    def sid_of(self, key: bytes | str) -> str:
        return _text(key)[len(self.prefix) :]

    def sessions(self, keys: list[str], raws: Iterable[bytes | str | None]) -> dict[str, Session]:
        """MGET's answer for ``keys`` as sessions by id, leaving out keys gone since the SCAN."""
        found: dict[str, Session] = {}
        for key, raw in zip(keys, raws, strict=True):
            sid = self.sid_of(key)
            session = self.decode(sid, raw)
            if session is not None:
                found[sid] = session
        return found

    # -- records: the stored text and expiry as they are (the token-session command) --

    def record_commands(self, sid: str) -> list[Command]:
        key = self.key(sid)
        return [("GET", key), ("PTTL", key)]

    def record_of(
        self, sid: str, raw: bytes | str | None, pttl: int, now: int
    ) -> StoredSession | None:
        """GET's and PTTL's answers as a record; None for a key that is gone.

        PTTL is -1 for a key without expiry, -2 for no key.
        """
        if raw is None or pttl == -2:
            return None
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError:
            raise SessionDecodeError(sid, "the value is not UTF-8 text") from None
        return StoredSession(sid, text, None if pttl < 0 else now + pttl)

    def put_command(self, record: StoredSession, now: int) -> Command | None:
        """SET of the text as is, expiring when the record does (to the millisecond, so
        that the remaining TTL survives a copy); None when it has expired already."""
        key = self.key(record.sid)
        if self.disable_ttl or record.expires_ms is None:
            return ("SET", key, record.text)
        remaining = record.expires_ms - now
        if remaining <= 0:
            return None
        return ("SET", key, record.text, "PX", remaining)

    @staticmethod
    def eviction_finding(policy: str | None, maxmemory: int | None) -> Finding:
        check = "eviction policy"
        if policy is None:
            return Finding(
                "info", check, "CONFIG GET is not allowed here: check maxmemory-policy by hand"
            )
        if policy == "noeviction":
            return Finding("ok", check, "maxmemory-policy is noeviction: sessions are not evicted")
        if not maxmemory:
            return Finding(
                "warning",
                check,
                f"maxmemory-policy is {policy}; with maxmemory 0 (no limit) nothing is evicted "
                "yet, but setting a limit would evict sessions",
                "CONFIG SET maxmemory-policy noeviction (and in redis.conf)",
            )
        return Finding(
            "error",
            check,
            f"maxmemory-policy is {policy} with maxmemory {maxmemory}: Redis may evict live "
            "sessions (every session has a TTL, so volatile-* policies pick them too)",
            "CONFIG SET maxmemory-policy noeviction (and in redis.conf), or keep sessions on a "
            "Redis of their own",
        )

    def ttl_finding(self, total: int, without_ttl: list[str]) -> Finding:
        check = "keys without TTL"
        if self.disable_ttl:
            return Finding(
                "info",
                check,
                f"disable_ttl is set: {len(without_ttl)} of {total} "
                f"keys under {self.prefix!r} have no TTL, as configured",
            )
        if not without_ttl:
            return Finding("ok", check, f"all {total} keys under {self.prefix!r} have a TTL")
        sample = ", ".join(without_ttl[:5])
        return Finding(
            "warning",
            check,
            f"{len(without_ttl)} of {total} keys under {self.prefix!r} have no TTL and never "
            f"expire (e.g. {sample})",
            "give each an expiry (EXPIRE key SECONDS), or remove them "
            "(token-session rm SID); connect-redis always sets one unless disableTTL",
        )


def _batches(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


def _mget(client: Any) -> Callable[[list[str]], Any]:
    # a cluster's plain MGET refuses keys of different slots
    mget: Callable[[list[str]], Any] = getattr(client, "mget_nonatomic", client.mget)
    return mget


def _unique(keys: Iterable[bytes | str]) -> list[str]:
    # SCAN may return a key twice; connect-redis 9.0.0 gathers them in a Set
    return list(dict.fromkeys(_text(key) for key in keys))


@dataclass(frozen=True)
class _Url:
    """A store URL split: the client's URL and options (redis-py's), the store's own options,
    and whether it names a cluster (``?cluster=1``)."""

    client_url: str
    store_options: dict[str, Any]
    client_options: dict[str, Any]
    cluster: bool


def _flag(value: str) -> bool:
    return value.lower() in ("1", "true", "yes", "on")


def _options(url: str, options: dict[str, Any]) -> _Url:
    """Split a redis:// URL's query into store options (ours) and client options (redis-py)."""
    parts = urlsplit(url)
    store_options: dict[str, Any] = {}
    client_query = []
    cluster = False
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in ("prefix",):
            store_options[name] = value
        elif name in ("ttl", "scan_count"):
            store_options[name] = int(value)
        elif name in ("disable_ttl", "disable_touch"):
            store_options[name] = _flag(value)
        elif name == "cluster":
            cluster = _flag(value)
        else:
            client_query.append(f"{name}={value}")
    client_url = urlunsplit(parts._replace(query="&".join(client_query)))
    store_options.update({k: v for k, v in options.items() if k in _STORE_OPTIONS})
    client_options = {k: v for k, v in options.items() if k not in _STORE_OPTIONS}
    return _Url(client_url, store_options, client_options, cluster)


_STORE_OPTIONS = {
    "prefix",
    "ttl",
    "scan_count",
    "serializer",
    "disable_ttl",
    "disable_touch",
    "clock",
}


def _codec(**options: Any) -> RedisCodec:
    serializer = _serializer(options.pop("serializer", None))
    return RedisCodec(serializer=serializer, **options)


class RedisStore:
    """connect-redis over redis-py: ``RedisStore(client, prefix="sess:", ttl=86400, ...)``.

    Options keep connect-redis's names in snake_case: ``prefix``, ``ttl`` (seconds, or a
    function of the session), ``scan_count``, ``serializer`` (``stringify``/``parse`` or
    ``dumps``/``loads``; default: JSON exactly as Node writes it), ``disable_ttl``,
    ``disable_touch``.
    """

    def __init__(self, client: Any, *, owns_client: bool = False, **options: Any) -> None:
        self.client = client
        self.codec = _codec(**options)
        self._owns_client = owns_client
        self._errors = Errors()
        pool = plain_pool(client)
        self._lane = HeldConnection(client, pool) if pool is not None else None
        self._send: Callable[[Command], Any] = self._lane or (lambda c: client.execute_command(*c))

    @classmethod
    def from_url(cls, url: str, *, socket_timeout: float = 5.0, **options: Any) -> RedisStore:
        """``redis://`` / ``rediss://`` / ``unix://`` URL; store options may go in its query
        (``?prefix=app:&ttl=3600``), and ``?cluster=1`` makes it a Redis Cluster's (any of
        its nodes). Commands fail with BackendUnavailableError after ``socket_timeout``
        seconds without an answer."""
        import redis
        import redis.cluster

        parsed = _options(url, options)
        client_options = parsed.client_options
        client_options.setdefault("socket_connect_timeout", socket_timeout)
        client_class = redis.cluster.RedisCluster if parsed.cluster else redis.Redis
        client = client_class.from_url(
            parsed.client_url, socket_timeout=socket_timeout, **client_options
        )
        return cls(client, owns_client=True, **parsed.store_options)

    def _run(self, command: Command) -> Any:
        try:
            return self._send(command)
        except Exception as exc:
            raise self._errors.wrap(exc, command[0]) from exc

    def get(self, sid: str) -> Session | None:
        return self.codec.decode(sid, self._run(self.codec.get_command(sid)))

    def set(self, sid: str, session: Mapping[str, Any]) -> None:
        self._run(self.codec.set_command(sid, session))

    def touch(self, sid: str, session: Mapping[str, Any]) -> None:
        command = self.codec.touch_command(sid, session)
        if command is not None:
            self._run(command)

    def destroy(self, sid: str) -> None:
        self._run(self.codec.destroy_command(sid))

    def ids(self) -> list[str]:
        return [self.codec.sid_of(key) for key in self._keys()]

    def length(self) -> int:
        return len(self._keys())

    def all(self) -> dict[str, Session]:
        sessions: dict[str, Session] = {}
        for batch in _batches(self._keys()):
            sessions.update(
                self.codec.sessions(batch, self._call("MGET", _mget(self.client), batch))
            )
        return sessions

    def clear(self) -> None:
        for batch in _batches(self._keys()):
            self._call("DEL", self.client.delete, *batch)

    def _keys(self) -> list[str]:
        keys: list[str] = self._call("SCAN", self._scan)
        return keys

    def _scan(self) -> list[str]:
        # RedisCluster.scan_iter walks every primary, as connect-redis 9.0.0 does
        found = self.client.scan_iter(match=self.codec.match_pattern(), count=self.codec.scan_count)
        return _unique(found)

    def _call(self, name: str, function: Callable[..., Any], *args: Any) -> Any:
        try:
            return function(*args)
        except Exception as exc:
            raise self._errors.wrap(exc, name) from exc

    def close(self) -> None:
        """Give back the store's connection; close the client if this store made it."""
        if self._lane is not None:
            self._lane.close()
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> RedisStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncRedisStore:
    """:class:`RedisStore` over ``redis.asyncio`` (``Redis``, ``RedisCluster``, ...).

    Operations awaited concurrently go to Redis together, written in one go on one
    connection (on a cluster: in one pipeline per turn of the event loop);
    ``auto_pipeline=False`` sends each on its own through the client.
    """

    def __init__(
        self, client: Any, *, owns_client: bool = False, auto_pipeline: bool = True, **options: Any
    ) -> None:
        self.client = client
        self.codec = _codec(**options)
        self._owns_client = owns_client
        self._errors = Errors()
        pool = plain_pool(client)
        settings = lean_settings(pool) if pool is not None and auto_pipeline else None
        self._lean: LeanConnection | None = None
        # each sends one command and gives its answer, errors already ours
        self._run: Callable[[Command], Awaitable[Any]]
        if not auto_pipeline:
            self._run = self._execute
        elif settings is not None:
            replies = Replies(self._errors)
            self._lean = LeanConnection(settings, replies.answer, replies.fail)
            self._run = self._lean
        elif pool is not None:
            timeout = getattr(pool, "connection_kwargs", {}).get("socket_timeout")
            self._run = ConnectionPipeline(pool, timeout, self._errors)
        else:
            self._run = AutoPipeline(client, self._errors)

    @classmethod
    def from_url(cls, url: str, *, socket_timeout: float = 5.0, **options: Any) -> AsyncRedisStore:
        """See :meth:`RedisStore.from_url`."""
        import redis.asyncio
        import redis.asyncio.cluster

        parsed = _options(url, options)
        client_options = parsed.client_options
        client_options.setdefault("socket_connect_timeout", socket_timeout)
        client_class = redis.asyncio.cluster.RedisCluster if parsed.cluster else redis.asyncio.Redis
        client = client_class.from_url(
            parsed.client_url, socket_timeout=socket_timeout, **client_options
        )
        return cls(client, owns_client=True, **parsed.store_options)

    async def _execute(self, command: Command) -> Any:
        try:
            return await self.client.execute_command(*command)
        except Exception as exc:
            raise self._errors.wrap(exc, command[0]) from exc

    async def get(self, sid: str) -> Session | None:
        return self.codec.decode(sid, await self._run(self.codec.get_command(sid)))

    async def set(self, sid: str, session: Mapping[str, Any]) -> None:
        await self._run(self.codec.set_command(sid, session))

    async def touch(self, sid: str, session: Mapping[str, Any]) -> None:
        command = self.codec.touch_command(sid, session)
        if command is not None:
            await self._run(command)

    async def destroy(self, sid: str) -> None:
        await self._run(self.codec.destroy_command(sid))

    async def ids(self) -> list[str]:
        return [self.codec.sid_of(key) for key in await self._keys()]

    async def length(self) -> int:
        return len(await self._keys())

    async def all(self) -> dict[str, Session]:
        sessions: dict[str, Session] = {}
        for batch in _batches(await self._keys()):
            raws = await self._await("MGET", _mget(self.client)(batch))
            sessions.update(self.codec.sessions(batch, raws))
        return sessions

    async def clear(self) -> None:
        for batch in _batches(await self._keys()):
            await self._await("DEL", self.client.delete(*batch))

    async def _keys(self) -> list[str]:
        try:
            return _unique([key async for key in self._scan_iter()])
        except Exception as exc:
            raise self._errors.wrap(exc, "SCAN") from exc

    def _scan_iter(self) -> AsyncIterator[Any]:
        iterator: AsyncIterator[Any] = self.client.scan_iter(
            match=self.codec.match_pattern(), count=self.codec.scan_count
        )
        return iterator

    async def _await(self, name: str, pending: Any) -> Any:
        try:
            return await pending
        except Exception as exc:
            raise self._errors.wrap(exc, name) from exc

    async def close(self) -> None:
        """Close the store's own connection; close the client if this store made it."""
        if self._lean is not None:
            self._lean.close()
        if self._owns_client:
            await self.client.aclose()

    async def __aenter__(self) -> AsyncRedisStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _position(text: str, cursor: str | None) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidArgumentError(f"{cursor!r} is not a cursor this store gave") from None


class RedisRecords:
    """Record access to a :class:`RedisStore` (see :mod:`.records`), in SCAN order; the
    cursor is SCAN's."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self.codec = store.codec

    def _pipeline(self, commands: list[Command]) -> list[Any]:
        def run() -> list[Any]:
            pipe = self.store.client.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)
            results: list[Any] = pipe.execute(raise_on_error=False)
            return results

        return self.store._call("pipeline", run)  # type: ignore[no-any-return]

    def _records(self, sids: list[str], failed: dict[str, str]) -> list[StoredSession]:
        commands = [c for sid in sids for c in self.codec.record_commands(sid)]
        answers = self._pipeline(commands)
        now = self.codec.clock()
        records = []
        for index, sid in enumerate(sids):
            raw, pttl = answers[2 * index], answers[2 * index + 1]
            error = next((a for a in (raw, pttl) if isinstance(a, Exception)), None)
            if error is not None:
                failed[sid] = str(error)
                continue
            try:
                record = self.codec.record_of(sid, raw, pttl, now)
            except SessionDecodeError as exc:
                failed[sid] = exc.reason
                continue
            if record is not None:
                records.append(record)
        return records

    def page(self, cursor: str | None, limit: int) -> Page:
        check_limit(limit)
        if hasattr(self.store.client, "get_primaries"):  # a cluster (no Redis subclass)
            keys, cursor = self._scan_cluster(cursor, limit)
        else:
            keys, cursor = self._scan(cursor, limit)
        failed: dict[str, str] = {}
        records = self._records([self.codec.sid_of(key) for key in _unique(keys)], failed)
        return Page(records, cursor, failed)

    def _scan(self, cursor: str | None, limit: int) -> tuple[list[Any], str | None]:
        """Keys from SCAN at ``cursor``, and the cursor after them (None at the end)."""
        position = _position(cursor or "0", cursor)
        keys: list[Any] = []
        while True:  # SCAN may answer a step with no keys: go on until some or the end
            position, found = self.store._call(
                "SCAN", self.store.client.scan, position, self.codec.match_pattern(), limit
            )
            keys += found
            if keys or position == 0:
                return keys, None if position == 0 else str(position)

    def _scan_cluster(self, cursor: str | None, limit: int) -> tuple[list[Any], str | None]:
        """:meth:`_scan` over a cluster's primaries, one after another in the order of their
        names; the cursor is ``host:port/position``, the primary and the SCAN cursor there."""
        client = self.store.client
        primaries = sorted(client.get_primaries(), key=lambda node: node.name)
        names = [node.name for node in primaries]
        index, position = 0, 0
        if cursor:
            name, _, at = cursor.rpartition("/")
            if name not in names:
                raise InvalidArgumentError(f"cursor {cursor!r} names no primary of this cluster")
            index, position = names.index(name), _position(at, cursor)
        keys: list[Any] = []
        while True:
            node = primaries[index]
            scan = functools.partial(client.scan, target_nodes=node)
            positions, found = self.store._call(
                "SCAN", scan, position, self.codec.match_pattern(), limit
            )
            keys += found
            position = positions[node.name]
            if position == 0:
                index, position = index + 1, 0
                if index == len(primaries):
                    return keys, None
            if keys:
                return keys, f"{names[index]}/{position}"

    def read(self, sid: str) -> StoredSession | None:
        failed: dict[str, str] = {}
        records = self._records([sid], failed)
        if failed:
            raise SessionDecodeError(sid, failed[sid])
        return records[0] if records else None

    def raw(self, sid: str) -> RawRecord | None:
        raw, pttl = self._pipeline(self.codec.record_commands(sid))
        if raw is None:
            return None
        text = raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else str(raw)
        return RawRecord(text, {"key": self.codec.key(sid), "value": text, "pttl": pttl})

    def write(self, records: Sequence[StoredSession]) -> WriteResult:
        now = self.codec.clock()
        result, planned = plan_writes(records, lambda r: self.codec.put_command(r, now))
        if planned:
            answers = self._pipeline([command for _, command in planned])
            for (sid, _), answer in zip(planned, answers, strict=True):
                if isinstance(answer, Exception):
                    result.failed[sid] = str(answer)
                else:
                    result.written.append(sid)
        return result

    def delete(self, sid: str) -> bool:
        return bool(self.store._run(self.codec.destroy_command(sid)))

    def purge_expired(self) -> None:
        return None  # Redis deletes expired keys itself

    def doctor(self) -> list[Finding]:
        from redis import exceptions

        try:
            policy = self.store.client.config_get("maxmemory-policy").get("maxmemory-policy")
            maxmemory = int(self.store.client.config_get("maxmemory").get("maxmemory") or 0)
        except exceptions.ResponseError:  # CONFIG renamed or refused (managed Redis)
            policy, maxmemory = None, None
        except Exception as exc:
            raise self.store._errors.wrap(exc, "CONFIG GET") from exc
        policy = _text(policy) if policy is not None else None
        findings = [self.codec.eviction_finding(policy, maxmemory)]
        keys = self.store._keys()
        without_ttl: list[str] = []
        for batch in _batches(keys):
            answers = self._pipeline([("PTTL", key) for key in batch])
            without_ttl += [k for k, ttl in zip(batch, answers, strict=True) if ttl == -1]
        findings.append(self.codec.ttl_finding(len(keys), without_ttl))
        return findings
