"""``request.session`` for Django: express-session's session with Django's session API.

The object is an :class:`~token_session.web.session.ExpressSession`: its keys are the
stored session's top-level keys, and its ``cookie`` is the one express-session writes.
Django's methods map onto it; nothing here does I/O (the middleware loads the session before
the view and writes it after), so the ``a``-prefixed methods only exist to be awaited.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings  # type: ignore[import-untyped]
from django.contrib.sessions.backends.base import SessionBase  # type: ignore[import-untyped]
from django.utils import timezone  # type: ignore[import-untyped]

from ..session import ExpressSession
from .conf import config

__all__ = ["DjangoExpressSession"]

_NOT_GIVEN: Any = object()


def _configured_max_age(session: ExpressSession) -> float | None:
    """``cookie.max_age`` of the settings; read back from a new cookie only when the
    settings give an ``expires`` instead (express-session's getter: a millisecond short
    when the clock ticks while the cookie is made)."""
    cookie_options = config().options.cookie
    if "max_age" in cookie_options and "expires" not in cookie_options:
        configured: float | None = cookie_options["max_age"]
        return configured
    return session._new_cookie().original_max_age


class _DjangoSessionAPI(ExpressSession):
    """Django's ``SessionBase`` API over the express session (the blocking methods)."""

    TEST_COOKIE_NAME = "testcookie"
    TEST_COOKIE_VALUE = "worked"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.accessed = False
        self._forced = False

    def generate(self) -> None:
        super().generate()
        self.accessed = False

    def inflate(self, *args: Any, **kwargs: Any) -> None:
        super().inflate(*args, **kwargs)
        self.accessed = False

    # -- reads mark the session accessed (the response then varies on Cookie) -------------

    def __getitem__(self, key: str) -> Any:
        self.accessed = True
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.accessed = True
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.accessed = True
        return super().__contains__(key)

    def keys(self) -> Any:
        self.accessed = True
        return super().keys()

    def values(self) -> Any:
        self.accessed = True
        return super().values()

    def items(self) -> Any:
        self.accessed = True
        return super().items()

    def has_key(self, key: str) -> bool:
        return key in self

    # -- Django's bookkeeping -------------------------------------------------------------

    @property
    def session_key(self) -> str | None:
        """express-session's ``req.sessionID`` (None once destroyed)."""
        return None if self.destroyed else self.id

    @property
    def modified(self) -> bool:
        accessed = self.accessed  # hashing the session reads it: not the view's access
        result = self._forced or self.is_modified()
        self.accessed = accessed
        return result

    @modified.setter
    def modified(self, value: bool) -> None:
        # express-session sees changes by hashing the session, nested ones included; a
        # forced `modified = True` saves it even unchanged (as `req.session.save()` does)
        self._forced = bool(value)
        if value:
            self.saved_hash = None

    def is_empty(self) -> bool:
        """No stored session and no data (what Django calls no key and no data)."""
        return self.is_new and not dict.__len__(self)

    def pop(self, key: str, default: Any = _NOT_GIVEN) -> Any:
        self.accessed = True
        return super().pop(key) if default is _NOT_GIVEN else super().pop(key, default)

    def setdefault(self, key: str, value: Any = None) -> Any:
        self.accessed = True
        return super().setdefault(key, value)

    def set_test_cookie(self) -> None:
        self[self.TEST_COOKIE_NAME] = self.TEST_COOKIE_VALUE

    def test_cookie_worked(self) -> bool:
        return bool(self.get(self.TEST_COOKIE_NAME) == self.TEST_COOKIE_VALUE)

    def delete_test_cookie(self) -> None:
        del self[self.TEST_COOKIE_NAME]

    # -- expiry: the cookie's originalMaxAge / expires ------------------------------------

    def get_session_cookie_age(self) -> int:
        return int(settings.SESSION_COOKIE_AGE)

    def set_expiry(self, value: int | float | datetime | timedelta | None) -> None:
        """0: a browser-session cookie (``maxAge`` null); seconds, a ``timedelta`` or a
        ``datetime``: ``cookie.maxAge`` that long from now (express-session then moves it
        on as it does any ``originalMaxAge``); None: the configured ``cookie.max_age``."""
        lifetime: float | None
        if value is None:
            lifetime = _configured_max_age(self)
        elif isinstance(value, (datetime, timedelta)):
            left = value - timezone.now() if isinstance(value, datetime) else value
            lifetime = left // timedelta(milliseconds=1)
        else:
            lifetime = value * 1000 if value else None
        self.cookie.max_age = lifetime
        if lifetime is not None:
            # the lifetime asked for: express-session's setter reads it back through its
            # maxAge getter, a millisecond short when the clock ticks in between
            self.cookie.original_max_age = lifetime

    def get_expiry_age(self, **kwargs: Any) -> int:
        """Seconds the session lives from now (its ``originalMaxAge``; a browser-session
        cookie answers ``SESSION_COOKIE_AGE`` as Django does)."""
        lifetime = self.cookie.original_max_age
        if lifetime is None:
            return self.get_session_cookie_age()
        # whole seconds, rounded up: a new cookie's originalMaxAge is read back through
        # express-session's maxAge getter, 59999 for a maxAge of 60000 when the clock ticks
        return int(-(-lifetime // 1000))

    def get_expiry_date(self, **kwargs: Any) -> datetime:
        modification = kwargs.get("modification") or timezone.now()
        result: datetime = modification + timedelta(seconds=self.get_expiry_age())
        return result

    def get_expire_at_browser_close(self) -> bool:
        return self.cookie.original_max_age is None

    # -- keys: regenerate and destroy -----------------------------------------------------

    def cycle_key(self) -> None:
        """A new id, the data and the cookie's lifetime kept (express-session's
        ``regenerate`` with the data copied over); the old id is destroyed."""
        data, cookie = list(dict.items(self)), self.cookie
        self.regenerate()
        self.cookie = cookie
        for key, value in data:
            self[key] = value

    def flush(self) -> None:
        """The stored session destroyed and a new, empty one in its place (express-session's
        ``regenerate``, which is also what passport's ``logOut`` ends with)."""
        self.regenerate()

    def clear(self) -> None:
        self.accessed = True
        super().clear()

    def save(self, must_create: bool = False) -> None:
        """Written when the response goes out, changed or not."""
        self.modified = True

    def create(self) -> None:
        self.cycle_key()
        self.modified = True

    def delete(self, session_key: str | None = None) -> None:
        if session_key is None or session_key == self.id:
            self.flush()
        else:
            self._to_destroy.append(session_key)

    def load(self) -> dict[str, Any]:
        return dict(dict.items(self))

    @classmethod
    def clear_expired(cls) -> None:
        """Nothing to do: the stores expire sessions as the Node stores do (TTLs, expiry
        columns and the stores' own sweeps)."""


class _AsyncSessionAPI(_DjangoSessionAPI):
    """The ``a``-prefixed methods Django 5.0 added; the session is in memory, so they
    return at once."""

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self[key] = value

    async def apop(self, key: str, default: Any = _NOT_GIVEN) -> Any:
        return self.pop(key, default)

    async def asetdefault(self, key: str, value: Any) -> Any:
        return self.setdefault(key, value)

    async def aupdate(self, dict_: Any) -> None:
        self.update(dict_)

    async def ahas_key(self, key: str) -> bool:
        return key in self

    async def akeys(self) -> Any:
        return self.keys()

    async def avalues(self) -> Any:
        return self.values()

    async def aitems(self) -> Any:
        return self.items()

    async def aset_test_cookie(self) -> None:
        self.set_test_cookie()

    async def atest_cookie_worked(self) -> bool:
        return self.test_cookie_worked()

    async def adelete_test_cookie(self) -> None:
        self.delete_test_cookie()

    async def aset_expiry(self, value: Any) -> None:
        self.set_expiry(value)

    async def aget_expiry_age(self, **kwargs: Any) -> int:
        return self.get_expiry_age(**kwargs)

    async def aget_expiry_date(self, **kwargs: Any) -> datetime:
        return self.get_expiry_date(**kwargs)

    async def aget_expire_at_browser_close(self) -> bool:
        return self.get_expire_at_browser_close()

    async def acycle_key(self) -> None:
        self.cycle_key()

    async def aflush(self) -> None:
        self.flush()

    async def asave(self, must_create: bool = False) -> None:
        self.save(must_create)

    async def acreate(self) -> None:
        self.create()

    async def adelete(self, session_key: str | None = None) -> None:
        self.delete(session_key)

    async def aload(self) -> dict[str, Any]:
        return self.load()

    @classmethod
    async def aclear_expired(cls) -> None:
        cls.clear_expired()


_BASE: type[_DjangoSessionAPI] = (
    _AsyncSessionAPI if hasattr(SessionBase, "aget") else _DjangoSessionAPI
)


class DjangoExpressSession(_BASE):  # type: ignore[valid-type,misc]
    """``request.session``: the express session with Django's session API (and, on
    Django 5.0 and later, its async methods)."""
