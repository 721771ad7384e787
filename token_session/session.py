"""The token-session 1.0.0 API: cookie-less sessions whose id is a bearer token.

Each operation is written once, as a generator that yields the store calls it needs and
returns its result (sans-I/O). :class:`TokenSession` runs them against a blocking store and
:class:`AsyncTokenSession` against an asyncio one; neither holds any logic of its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Generic, NamedTuple, TypeVar

from .compat.cookie import Cookie, now_ms
from .compat.jsdate import js_iso_ms
from .compat.jsjson import js_truthy
from .compat.sid import generate_sid
from .errors import InvalidArgumentError, SessionNotFoundError
from .flows import Flow, MissingStoreMethodError, arun, run
from .stores.base import AsyncStore, Session, Store, check_sid, refreshed
from .stores.memory import AsyncMemoryStore, MemoryStore

__all__ = [
    "DEFAULT_CHECKPERIOD",
    "DEFAULT_EXPIRES",
    "AsyncTokenSession",
    "NewSession",
    "TokenSession",
    "refreshed",
]

T = TypeVar("T")
S = TypeVar("S", Store, AsyncStore)

# What token-session 1.0.0 gives its default session-memory-store.
DEFAULT_EXPIRES = 1800
DEFAULT_CHECKPERIOD = 60


class NewSession(NamedTuple):
    """A session just created: its id (the token) and the data stored under it."""

    sid: str
    data: Session

    @property
    def session_id(self) -> str:
        """The id under token-session's name for it (``result.sessionId``)."""
        return self.sid


def data_to_store(data: object) -> Session:
    """A copy of ``data`` as token-session's ``set`` stores it.

    token-session 1.0.0 adds ``cookie: {maxAge: 0}`` when ``data.cookie`` is falsy ("Redis
    connect compatibility"); the stores then fall back to their default TTL.
    """
    if type(data) is not dict and not isinstance(data, Mapping):
        raise InvalidArgumentError(f"session data must be a dict, not {type(data).__name__}")
    session = dict(data)
    if not js_truthy(session.get("cookie")):
        session["cookie"] = {"maxAge": 0}
    return session


def data_with_ttl(data: object, ttl: float, now: int) -> Session:
    """A copy of ``data`` whose cookie expires ``ttl`` seconds after ``now`` (epoch ms).

    token-session 1.0.0 swaps the shared store's default TTL around the call instead, which
    races with other calls and only ever worked on connect-redis. Every Node store reads
    ``cookie.expires``, so writing the TTL there works on all of them, and ``originalMaxAge``
    lets a touch extend the session by its own TTL again.

    ``expires`` is written as ``Date#toJSON`` writes it over a JS Date's whole range (a TTL of
    1e12 seconds gives ``"+033715-..."`` now). A TTL that puts the expiry past that range (after
    +275760-09-13) raises :class:`InvalidArgumentError`: Node's ``new Date`` would be an
    Invalid Date there, written as ``expires: null``, which the stores read as "no expiry of
    its own" and give their default TTL, the opposite of a long life.
    """
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise InvalidArgumentError("ttl must be a number of seconds")
    if isinstance(ttl, float) and not math.isfinite(ttl):  # an int may be past any float
        raise InvalidArgumentError("ttl must be a number of seconds")
    if ttl <= 0:
        raise InvalidArgumentError("ttl must be greater than 0")
    if type(data) is not dict and not isinstance(data, Mapping):
        raise InvalidArgumentError(f"session data must be a dict, not {type(data).__name__}")
    lifetime = ttl * 1000
    if js_iso_ms(now + lifetime) is None:
        raise InvalidArgumentError("ttl puts the expiry past the last date JS holds (+275760)")
    session = dict(data)
    cookie = session.get("cookie")
    if (type(cookie) is dict or isinstance(cookie, Mapping)) and cookie:
        fields = dict(cookie)
        fields["originalMaxAge"] = math.trunc(lifetime)
        fields["expires"] = js_iso_ms(now + fields["originalMaxAge"])
    else:
        new_cookie = Cookie(max_age=lifetime, clock=lambda: now)
        fields = new_cookie.to_json()
        expires_ms = new_cookie.expires_ms
        fields["expires"] = None if expires_ms is None else js_iso_ms(expires_ms)
    session["cookie"] = fields
    return session


def new_flow(sid: str, session: Session) -> Flow[NewSession]:
    yield ("set", check_sid(sid), session)
    return NewSession(sid, session)


def get_flow(sid: str, touch: bool, clock: Callable[[], int]) -> Flow[Session | None]:
    """The session (restarted, if ``touch``), or None.

    A store with ``get_and_touch`` reads and touches in one step, at its own clock's time: so
    only when this clock is the default one too; otherwise, and for a store without it,
    ``get`` then ``touch``.
    """
    found: Session | None
    if touch and clock is now_ms:
        try:
            found = yield ("get_and_touch", check_sid(sid))
        except MissingStoreMethodError:
            pass
        else:
            return None if found is None else refreshed(found, clock())
    found = yield ("get", check_sid(sid))
    if found is None or not touch:
        return found
    session = refreshed(found, clock())
    try:
        yield ("touch", sid, session)
    except SessionNotFoundError:  # destroyed since the read (connect-mongo's touch says so)
        return None
    return session


def set_flow(sid: str, session: Session) -> Flow[None]:
    yield ("set", check_sid(sid), session)


def touch_flow(sid: str, data: Mapping[str, Any] | None, clock: Callable[[], int]) -> Flow[bool]:
    check_sid(sid)
    if data is None:
        data = yield ("get", sid)
        if data is None:
            return False
    elif type(data) is not dict and not isinstance(data, Mapping):
        raise InvalidArgumentError(f"session data must be a dict, not {type(data).__name__}")
    try:
        yield ("touch", sid, refreshed(dict(data), clock()))
    except SessionNotFoundError:
        return False
    return True


def destroy_flow(sid: str) -> Flow[None]:
    yield ("destroy", check_sid(sid))


def regenerate_flow(
    old_sid: str, new_sid: str, data: Mapping[str, Any] | None, clock: Callable[[], int]
) -> Flow[str]:
    check_sid(old_sid)
    check_sid(new_sid)
    if data is None:
        data = yield ("get", old_sid)
        if data is None:
            raise SessionNotFoundError(old_sid)
    session = refreshed(data_to_store(data), clock())
    # token-session 1.0.0 destroys first (and then crashes); writing first loses nothing
    # if the write fails.
    yield ("set", new_sid, session)
    yield ("destroy", old_sid)
    return new_sid


class _TokenSessionBase(Generic[S]):
    _default_store: Callable[[], S]

    def __init__(
        self,
        store: S | None = None,
        *,
        genid: Callable[[], str] | None = None,
        auto_touch: bool = True,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        if genid is not None and not callable(genid):
            raise InvalidArgumentError("genid option must be a function")
        self.genid = genid or generate_sid
        self.auto_touch = auto_touch
        self.clock = clock
        self._owns_store = store is None
        self.store: S = store if store is not None else type(self)._default_store()

    def _new_sid(self) -> str:
        return check_sid(self.genid())


class TokenSession(_TokenSessionBase[Store]):
    """Cookie-less sessions over a blocking :class:`~token_session.stores.Store`.

    ``store`` defaults to a :class:`~token_session.stores.MemoryStore` set up as
    token-session's default (sessions live 30 minutes). With ``auto_touch`` (the default)
    :meth:`get` also touches the session. ``genid`` makes the ids (default: uid-safe's
    ``uid(24)``); ``clock`` gives the time in epoch milliseconds.
    """

    @staticmethod
    def _default_store() -> Store:
        return MemoryStore(expires=DEFAULT_EXPIRES, checkperiod=DEFAULT_CHECKPERIOD)

    def _run(self, flow: Flow[T]) -> T:
        return run(self.store, flow)

    def new(self, data: Mapping[str, Any]) -> NewSession:
        """Store ``data`` under a new id with the store's default TTL; returns (sid, data)."""
        return self._run(new_flow(self._new_sid(), data_to_store(data)))

    def new_with_ttl(self, data: Mapping[str, Any], ttl: float) -> NewSession:
        """Like :meth:`new`, but the session lives ``ttl`` seconds (renewed by each touch)."""
        return self._run(new_flow(self._new_sid(), data_with_ttl(data, ttl, self.clock())))

    def get(self, sid: str) -> Session | None:
        """The session's data, or None; touches it too when ``auto_touch`` is on."""
        return self._run(get_flow(sid, self.auto_touch, self.clock))

    def get_and_touch(self, sid: str) -> Session | None:
        """The session's data (or None), touching it whatever ``auto_touch`` says."""
        return self._run(get_flow(sid, True, self.clock))

    def set(self, sid: str, data: Mapping[str, Any]) -> None:
        """Replace the session's data, with the store's default TTL unless its cookie says."""
        self._run(set_flow(sid, data_to_store(data)))

    def set_with_ttl(self, sid: str, data: Mapping[str, Any], ttl: float) -> None:
        """Replace the session's data and make it live ``ttl`` seconds from now."""
        self._run(set_flow(sid, data_with_ttl(data, ttl, self.clock())))

    def touch(self, sid: str, data: Mapping[str, Any] | None = None) -> bool:
        """Restart the session's expiry; False if ``data`` is not given and there is no session."""
        return self._run(touch_flow(sid, data, self.clock))

    def destroy(self, sid: str) -> None:
        """Delete the session (no error if there is none)."""
        self._run(destroy_flow(sid))

    def regenerate(self, sid: str, data: Mapping[str, Any] | None = None) -> str:
        """Move the session (or ``data``) to a new id, delete the old one; returns the new id."""
        return self._run(regenerate_flow(sid, self._new_sid(), data, self.clock))

    # token-session's own names
    getNtouch = get_and_touch
    newWttl = new_with_ttl
    setWttl = set_with_ttl

    def close(self) -> None:
        """Close the store if this object made it (the default memory store)."""
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> TokenSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncTokenSession(_TokenSessionBase[AsyncStore]):
    """:class:`TokenSession` for asyncio, over an :class:`~token_session.stores.AsyncStore`."""

    @staticmethod
    def _default_store() -> AsyncStore:
        return AsyncMemoryStore(expires=DEFAULT_EXPIRES, checkperiod=DEFAULT_CHECKPERIOD)

    async def _run(self, flow: Flow[T]) -> T:
        return await arun(self.store, flow)

    async def new(self, data: Mapping[str, Any]) -> NewSession:
        return await self._run(new_flow(self._new_sid(), data_to_store(data)))

    async def new_with_ttl(self, data: Mapping[str, Any], ttl: float) -> NewSession:
        return await self._run(new_flow(self._new_sid(), data_with_ttl(data, ttl, self.clock())))

    async def get(self, sid: str) -> Session | None:
        return await self._run(get_flow(sid, self.auto_touch, self.clock))

    async def get_and_touch(self, sid: str) -> Session | None:
        return await self._run(get_flow(sid, True, self.clock))

    async def set(self, sid: str, data: Mapping[str, Any]) -> None:
        await self._run(set_flow(sid, data_to_store(data)))

    async def set_with_ttl(self, sid: str, data: Mapping[str, Any], ttl: float) -> None:
        await self._run(set_flow(sid, data_with_ttl(data, ttl, self.clock())))

    async def touch(self, sid: str, data: Mapping[str, Any] | None = None) -> bool:
        return await self._run(touch_flow(sid, data, self.clock))

    async def destroy(self, sid: str) -> None:
        await self._run(destroy_flow(sid))

    async def regenerate(self, sid: str, data: Mapping[str, Any] | None = None) -> str:
        return await self._run(regenerate_flow(sid, self._new_sid(), data, self.clock))

    getNtouch = get_and_touch
    newWttl = new_with_ttl
    setWttl = set_with_ttl

    async def close(self) -> None:
        if self._owns_store:
            await self.store.close()

    async def __aenter__(self) -> AsyncTokenSession:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
