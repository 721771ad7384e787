"""What connect-redis 9.0.0 (and 7.1.1 and 6.1.3) stores, as data: the key of a session,
the value bytes, the TTL, the command each operation sends, and the store's options as a URL
or keywords give them. No I/O: the shells in ``store.py`` and ``aio.py`` send the commands.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ...compat.cookie import expires_ms, now_ms
from ...compat.jsjson import loads
from ...errors import InvalidArgumentError, SessionDecodeError
from ...flows import Flow
from ..base import Session, check_sid, encode_session
from ..records import Finding, StoredSession

__all__ = ["BATCH", "TTL", "Command", "RedisCodec", "Serializer"]

logger = logging.getLogger(__package__)

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


def glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def text_of(value: bytes | str) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def shown(value: bytes | str) -> str:
    """A key as a person can read it, bytes that are not UTF-8 as ``\\xNN``."""
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value


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

    @property
    def plain_json(self) -> bool:
        """Whether values are JSON text, connect-redis's default serializer."""
        return type(self.serializer) is _NodeJSON

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
        return glob_escape(self.prefix) + "*"

    def sid_of(self, key: bytes | str) -> str:
        return text_of(key)[len(self.prefix) :]

    def split_keys(self, keys: Iterable[bytes | str]) -> tuple[list[str], dict[str, str]]:
        """The keys SCAN found that name a session (as text), and the others under the prefix
        (not UTF-8, the prefix alone, an id longer than the limit) by their ids as a person
        reads them, with the reason: no session of Node's or ours has such a key."""
        good: list[str] = []
        bad: dict[str, str] = {}
        start = len(self.prefix)
        for key in keys:
            try:
                text = key.decode("utf-8") if isinstance(key, bytes) else key
                check_sid(text[start:])
            except UnicodeDecodeError:
                bad[shown(key)[start:]] = "the key is not UTF-8 text"
            except InvalidArgumentError as exc:
                bad[shown(key)[start:]] = f"the key names no session: {exc}"
            else:
                good.append(text)
        return good, bad

    def sessions(self, keys: list[str], raws: Iterable[bytes | str | None]) -> dict[str, Session]:
        """MGET's answer for ``keys`` as sessions by id, leaving out keys gone since the SCAN
        and, with a warning, values that are no session."""
        found: dict[str, Session] = {}
        for key, raw in zip(keys, raws, strict=True):
            sid = self.sid_of(key)
            try:
                session = self.decode(sid, raw)
            except SessionDecodeError as exc:
                logger.warning("all(): skipped %s", exc)
                continue
            if session is not None:
                found[sid] = session
        return found

    # -- every session at once: SCAN, then MGET or DEL in batches. Flows (token_session.flows)
    # that yield the shell's calls and are sent their answers: ("_primaries",) for the nodes
    # to walk ([None] for one server), ("_scan", node, cursor) for one SCAN step there,
    # ("_mget", keys) and ("_delete", keys). One command each, each within the timeout.

    def scan_command(self, cursor: int) -> Command:
        return ("SCAN", cursor, "MATCH", self.match_pattern(), "COUNT", self.scan_count)

    def keys_flow(self) -> Flow[list[bytes | str]]:
        """Every key under the prefix, as Redis gives it, SCAN walking every primary as
        connect-redis 9.0.0 does."""
        keys: list[bytes | str] = []
        for node in (yield ("_primaries",)):
            cursor = 0
            while True:
                cursor, found = yield ("_scan", node, cursor)
                keys += found
                if cursor == 0:
                    break
        return unique(keys)

    def ids_flow(self) -> Flow[list[str]]:
        keys, _ = self.split_keys((yield from self.keys_flow()))
        return [self.sid_of(key) for key in keys]

    def length_flow(self) -> Flow[int]:
        keys, _ = self.split_keys((yield from self.keys_flow()))
        return len(keys)

    def all_flow(self) -> Flow[dict[str, Session]]:
        keys, bad = self.split_keys((yield from self.keys_flow()))
        for sid, reason in bad.items():
            logger.warning("all(): skipped the key '%s%s': %s", self.prefix, sid, reason)
        found: dict[str, Session] = {}
        for batch in batches(keys):
            found.update(self.sessions(batch, (yield ("_mget", batch))))
        return found

    def clear_flow(self) -> Flow[None]:
        for batch in batches((yield from self.keys_flow())):
            yield ("_delete", batch)

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


def batches(items: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


def unique(keys: Iterable[bytes | str]) -> list[bytes | str]:
    # SCAN may return a key twice; connect-redis 9.0.0 gathers them in a Set. The keys stay
    # as Redis gave them: one that is not UTF-8 can still be deleted
    return list(dict.fromkeys(keys))


# the codec's options, as keywords and in a URL's query
STORE_OPTIONS = {
    "prefix",
    "ttl",
    "scan_count",
    "serializer",
    "disable_ttl",
    "disable_touch",
    "clock",
}


def codec_of(**options: Any) -> RedisCodec:
    """The codec of a store's keyword options."""
    serializer = _serializer(options.pop("serializer", None))
    if options.keys() - STORE_OPTIONS:
        unknown = ", ".join(sorted(options.keys() - STORE_OPTIONS))
        raise InvalidArgumentError(f"unknown Redis store option(s): {unknown}")
    return RedisCodec(serializer=serializer, **options)
