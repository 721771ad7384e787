"""The store interface every backend implements, and the checks and codec they share."""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

from ..compat.jsdate import js_iso_ms
from ..compat.jsjson import dumps, loads
from ..errors import InvalidArgumentError, SessionDecodeError

__all__ = [
    "MAX_SID_LENGTH",
    "AsyncGetAndTouchStore",
    "AsyncStore",
    "GetAndTouchStore",
    "Session",
    "Store",
    "check_sid",
    "decode_session",
    "encode_session",
    "refreshed",
]

Session = dict[str, Any]

MAX_SID_LENGTH = 256


def check_sid(sid: object) -> str:
    """``sid`` if it is a non-empty ``str`` of sane length, else :class:`InvalidArgumentError`.

    Checked before any I/O, so that a dict, list or bytes can never reach a query.
    """
    if not isinstance(sid, str):
        raise InvalidArgumentError(f"session id must be a str, not {type(sid).__name__}")
    if not sid:
        raise InvalidArgumentError("session id must not be empty")
    if len(sid) > MAX_SID_LENGTH:
        raise InvalidArgumentError(f"session id is longer than {MAX_SID_LENGTH} characters")
    if not sid.isascii():
        try:
            sid.encode("utf-8")
        except UnicodeEncodeError:
            # Node would write U+FFFD in its place: the two sides would name different records
            raise InvalidArgumentError("session id holds a lone surrogate") from None
    return sid


def encode_session(session: object) -> str:
    """The session's JSON text exactly as ``JSON.stringify`` writes it (what Node stores keep).

    :class:`InvalidArgumentError` for what JSON cannot carry, and for nesting deeper than
    Python writes (and reads back) JSON: about 990 levels, where Node 20's ``JSON.stringify``
    throws its RangeError past about 4,000.
    """
    if type(session) is not dict and not isinstance(session, Mapping):
        raise InvalidArgumentError(f"session must be a dict, not {type(session).__name__}")
    try:
        return dumps(session if type(session) is dict else dict(session))
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"session cannot be stored: {exc}") from None


def decode_session(sid: str, text: str | bytes) -> Session:
    """Stored JSON text back to a session dict; :class:`SessionDecodeError` if it is not one."""
    try:
        value = loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SessionDecodeError(sid, f"not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise SessionDecodeError(sid, f"JSON {type(value).__name__}, not an object")
    return value


def refreshed(session: Session, now: int) -> Session:
    """The session with its cookie's expiry restarted, as express-session's ``touch`` does.

    Only a cookie with a numeric ``originalMaxAge`` carries its own lifetime
    (``expires = new Date(now + originalMaxAge)``, written as ``Date#toJSON`` writes it over
    JS's whole date range); any other session is left as it is and the store applies its
    default TTL. Past that range the Date is invalid and JSON.stringify writes
    ``expires: null``, as here.
    """
    cookie = session.get("cookie")
    if type(cookie) is not dict and not isinstance(cookie, Mapping):
        return session
    lifetime = cookie.get("originalMaxAge")
    if isinstance(lifetime, bool) or not isinstance(lifetime, (int, float)):
        return session
    if isinstance(lifetime, float) and not math.isfinite(lifetime):
        return session
    # an int past any float (JSON's 1e400 as digits) is Infinity to JS: an Invalid Date
    fields = dict(cookie)
    fields["expires"] = js_iso_ms(now + lifetime)
    return {**session, "cookie": fields}


@runtime_checkable
class Store(Protocol):
    """A blocking session store with express-session's store methods, in Python form.

    Subclasses get the context manager for free: leaving the ``with`` block closes the store.
    A store may also offer get+touch in one step (:class:`GetAndTouchStore`); without it,
    callers get then touch.
    """

    def get(self, sid: str) -> Session | None:
        """The live session stored under ``sid``, or None."""
        ...

    def set(self, sid: str, session: Mapping[str, Any]) -> None:
        """Insert or replace the session, expiring as the Node store would."""
        ...

    def touch(self, sid: str, session: Mapping[str, Any]) -> None:
        """Restart the session's expiry as the Node store's ``touch`` does."""
        ...

    def destroy(self, sid: str) -> None:
        """Delete the session (no error if there is none)."""
        ...

    def all(self) -> dict[str, Session]:
        """Every live session, by id."""
        ...

    def ids(self) -> list[str]:
        """The ids of every live session."""
        ...

    def length(self) -> int:
        """How many live sessions the store holds."""
        ...

    def clear(self) -> None:
        """Delete every session of this store."""
        ...

    def close(self) -> None:
        """Release what the store holds (connections, threads)."""
        ...

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@runtime_checkable
class GetAndTouchStore(Store, Protocol):
    """A :class:`Store` that reads a session and restarts its expiry in one step."""

    def get_and_touch(self, sid: str) -> Session | None:
        """What :meth:`get` returns; a session found has its expiry restarted as
        ``touch(sid, refreshed(session, now))`` would, ``now`` by the store's clock, its
        stored data untouched."""
        ...


@runtime_checkable
class AsyncStore(Protocol):
    """The asyncio twin of :class:`Store`: the same methods, awaited."""

    async def get(self, sid: str) -> Session | None: ...

    async def set(self, sid: str, session: Mapping[str, Any]) -> None: ...

    async def touch(self, sid: str, session: Mapping[str, Any]) -> None: ...

    async def destroy(self, sid: str) -> None: ...

    async def all(self) -> dict[str, Session]: ...

    async def ids(self) -> list[str]: ...

    async def length(self) -> int: ...

    async def clear(self) -> None: ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> AsyncStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


@runtime_checkable
class AsyncGetAndTouchStore(AsyncStore, Protocol):
    """The asyncio twin of :class:`GetAndTouchStore`."""

    async def get_and_touch(self, sid: str) -> Session | None: ...
