"""An in-process store with session-memory-store 0.2.2's options and defaults.

session-memory-store keeps sessions in node-cache 3.x: every session expires ``expires``
seconds (default 43200, 0 = never) after it was last set or touched, and expired entries are
dropped when read or by a periodic sweep. Where it is wrong we do better, on purpose:

- It ignores ``cookie.expires``; we honour it as connect-redis does (a session whose cookie
  has expired is deleted), so per-session TTLs work here as on every other store.
- Its ``touch`` deletes then re-inserts the session it is given, reviving a session destroyed
  meanwhile and undoing a ``set`` made since that session was read; ours only moves the
  expiry of a session that is still there.
- Its ``length`` returns ``this.store.keys.length``, the arity of the ``keys`` function
  (always 0); ours counts the live sessions.
- It passes ``this.checkperiod`` (undefined) to node-cache, so its ``checkperiod`` option
  never takes effect; ours sweeps expired sessions at most every ``checkperiod`` seconds,
  during writes, without a thread.

Each session is kept as its JSON text, so the store never shares a dict with its caller.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..compat.cookie import expires_ms, now_ms
from ..errors import InvalidArgumentError
from .base import Session, check_sid, decode_session, encode_session, refreshed
from .records import (
    Finding,
    Page,
    RawRecord,
    StoredSession,
    WriteResult,
    check_limit,
    plan_writes,
)

__all__ = ["AsyncMemoryStore", "MemoryRecords", "MemoryStore"]

NEVER = 0


class MemoryStore:
    """Thread-safe in-memory store; ``expires`` and ``checkperiod`` are in seconds."""

    def __init__(
        self,
        *,
        expires: float = 60 * 60 * 12,
        checkperiod: float = 10 * 60,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        for name, value in (("expires", expires), ("checkperiod", checkperiod)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise InvalidArgumentError(f"{name} must be a number of seconds >= 0")
        self.expires = expires
        self.checkperiod = checkperiod
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[str, int]] = {}  # sid -> (JSON text, expiry ms or NEVER)
        self._next_sweep = clock() + checkperiod * 1000

    @classmethod
    def from_url(cls, url: str, **options: Any) -> MemoryStore:
        """``memory://`` with optional ``?expires=SECONDS&checkperiod=SECONDS``."""
        return cls(**{**memory_url_options(url), **options})

    def _expiry(self, session: Mapping[str, Any], now: int) -> int:
        cookie_expiry = expires_ms(session)
        if cookie_expiry is not None:
            # an Invalid Date expires at once, as connect-redis deletes such a session
            return math.floor(cookie_expiry) if math.isfinite(cookie_expiry) else now
        return NEVER if self.expires == 0 else now + int(self.expires * 1000)

    def _live(self, sid: str, now: int) -> tuple[str, int] | None:
        entry = self._entries.get(sid)
        if entry is not None and entry[1] != NEVER and entry[1] <= now:
            del self._entries[sid]
            return None
        return entry

    def _sweep(self, now: int) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.checkperiod * 1000
        expired = [sid for sid, (_, at) in self._entries.items() if at != NEVER and at <= now]
        for sid in expired:
            del self._entries[sid]

    def _store(self, sid: str, text: str | None, expiry: int, now: int) -> None:
        """Keep ``text`` (None: the stored text) until ``expiry``; under the lock."""
        if text is None:
            entry = self._live(sid, now)
            if entry is None:
                return  # touch never revives a session destroyed or expired meanwhile
            text = entry[0]
        if expiry != NEVER and expiry <= now:
            self._entries.pop(sid, None)
        else:
            self._entries[sid] = (text, expiry)
        self._sweep(now)

    def get(self, sid: str) -> Session | None:
        sid = check_sid(sid)
        with self._lock:
            entry = self._live(sid, self._clock())
        return None if entry is None else decode_session(sid, entry[0])

    def raw(self, sid: str) -> tuple[str, int | None] | None:
        """The stored JSON text and expiry (epoch ms, None for never), or None."""
        sid = check_sid(sid)
        with self._lock:
            entry = self._live(sid, self._clock())
        if entry is None:
            return None
        return entry[0], (None if entry[1] == NEVER else entry[1])

    def set(self, sid: str, session: Mapping[str, Any]) -> None:
        sid = check_sid(sid)
        text = encode_session(session)
        now = self._clock()
        expiry = self._expiry(session, now)
        with self._lock:
            self._store(sid, text, expiry, now)

    def touch(self, sid: str, session: Mapping[str, Any]) -> None:
        """Move the expiry only, as connect-redis's ``EXPIRE`` does: the stored data stays,
        so a ``set`` that lands between a caller's ``get`` and its ``touch`` is kept."""
        sid = check_sid(sid)
        if type(session) is not dict and not isinstance(session, Mapping):
            raise InvalidArgumentError(f"session must be a dict, not {type(session).__name__}")
        now = self._clock()
        expiry = self._expiry(session, now)
        with self._lock:
            self._store(sid, None, expiry, now)

    def get_and_touch(self, sid: str) -> Session | None:
        """:meth:`get`, then :meth:`touch` with the session restarted (``refreshed``), under
        one lock."""
        sid = check_sid(sid)
        now = self._clock()
        with self._lock:
            entry = self._live(sid, now)
            if entry is None:
                return None
            session = decode_session(sid, entry[0])
            self._store(sid, entry[0], self._expiry(refreshed(session, now), now), now)
        return session

    def destroy(self, sid: str) -> None:
        sid = check_sid(sid)
        with self._lock:
            self._entries.pop(sid, None)

    def _live_items(self) -> list[tuple[str, str]]:
        now = self._clock()
        with self._lock:
            return [
                (sid, text) for sid, (text, at) in self._entries.items() if at == NEVER or at > now
            ]

    def all(self) -> dict[str, Session]:
        return {sid: decode_session(sid, text) for sid, text in self._live_items()}

    def ids(self) -> list[str]:
        return [sid for sid, _ in self._live_items()]

    def length(self) -> int:
        return len(self._live_items())

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def purge_expired(self) -> int:
        """Drop the expired sessions now; returns how many."""
        now = self._clock()
        with self._lock:
            expired = [sid for sid, (_, at) in self._entries.items() if at != NEVER and at <= now]
            for sid in expired:
                del self._entries[sid]
        return len(expired)

    def close(self) -> None:
        """Nothing to release; the sessions stay readable."""

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncMemoryStore:
    """The asyncio face of :class:`MemoryStore` (same options); nothing in it blocks."""

    def __init__(self, **options: Any) -> None:
        self.sync = MemoryStore(**options)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> AsyncMemoryStore:
        return cls(**{**memory_url_options(url), **options})

    async def get(self, sid: str) -> Session | None:
        return self.sync.get(sid)

    async def set(self, sid: str, session: Mapping[str, Any]) -> None:
        self.sync.set(sid, session)

    async def touch(self, sid: str, session: Mapping[str, Any]) -> None:
        self.sync.touch(sid, session)

    async def get_and_touch(self, sid: str) -> Session | None:
        return self.sync.get_and_touch(sid)

    async def destroy(self, sid: str) -> None:
        self.sync.destroy(sid)

    async def all(self) -> dict[str, Session]:
        return self.sync.all()

    async def ids(self) -> list[str]:
        return self.sync.ids()

    async def length(self) -> int:
        return self.sync.length()

    async def clear(self) -> None:
        self.sync.clear()

    async def close(self) -> None:
        self.sync.close()

    async def __aenter__(self) -> AsyncMemoryStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class MemoryRecords:
    """Record access to a :class:`MemoryStore` (see :mod:`.records`), in id order."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def page(self, cursor: str | None, limit: int) -> Page:
        check_limit(limit)
        store = self.store
        now = store._clock()
        with store._lock:
            live = sorted(
                (sid, text, at)
                for sid, (text, at) in store._entries.items()
                if (at == NEVER or at > now) and (cursor is None or sid > cursor)
            )
        records = [
            StoredSession(sid, text, None if at == NEVER else at) for sid, text, at in live[:limit]
        ]
        return Page(records, records[-1].sid if len(live) > limit else None)

    def read(self, sid: str) -> StoredSession | None:
        entry = self.store.raw(sid)
        return None if entry is None else StoredSession(sid, entry[0], entry[1])

    def raw(self, sid: str) -> RawRecord | None:
        entry = self.store.raw(sid)
        if entry is None:
            return None
        return RawRecord(entry[0], {"sid": sid, "text": entry[0], "expires_ms": entry[1]})

    def write(self, records: Sequence[StoredSession]) -> WriteResult:
        store = self.store
        now = store._clock()

        def entry(record: StoredSession) -> tuple[str, int] | None:
            if record.expires_ms is not None and record.expires_ms <= now:
                return None
            check_sid(record.sid)
            return record.text, NEVER if record.expires_ms is None else record.expires_ms

        result, planned = plan_writes(records, entry)
        with store._lock:
            store._entries.update(planned)
        result.written = [sid for sid, _ in planned]
        return result

    def delete(self, sid: str) -> bool:
        sid = check_sid(sid)
        with self.store._lock:
            return self.store._entries.pop(sid, None) is not None

    def purge_expired(self) -> int:
        return self.store.purge_expired()

    def doctor(self) -> list[Finding]:
        return [
            Finding(
                "info",
                "memory store",
                "sessions live in this process only; no other process sees them",
            )
        ]


def memory_url_options(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    if parts.scheme != "memory":
        raise InvalidArgumentError(f"not a memory:// URL: {url!r}")
    options: dict[str, Any] = {}
    for name, value in parse_qsl(parts.query, strict_parsing=False):
        if name not in ("expires", "checkperiod"):
            raise InvalidArgumentError(f"unknown memory store option {name!r} in URL")
        try:
            options[name] = float(value)
        except ValueError:
            raise InvalidArgumentError(f"{name} must be a number of seconds") from None
    return options
