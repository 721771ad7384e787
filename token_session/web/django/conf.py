"""``settings.TOKEN_SESSION``: the express-session options and the stores, read once per
settings (``override_settings`` starts again).

Django's own ``SESSION_*`` settings fill in what ``TOKEN_SESSION`` leaves out, but only those
the project set itself (``settings.is_overridden``): Django's defaults (a ``sessionid`` cookie
kept two weeks) are not express-session's (``connect.sid``, a browser-session cookie), and the
Express app sharing the session is the one to agree with.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Mapping
from typing import Any

from django.conf import settings  # type: ignore[import-untyped]
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]
from django.core.signals import setting_changed  # type: ignore[import-untyped]
from django.utils.module_loading import import_string  # type: ignore[import-untyped]

from ...stores import AsyncMemoryStore, AsyncStore, MemoryStore, Store, async_from_url, from_url
from ..core import SessionOptions

__all__ = ["Config", "config", "reset"]

# TOKEN_SESSION keys that are not SessionOptions keywords
_OWN_KEYS = {"store", "store_options", "async_store", "passport"}


def _django_defaults() -> dict[str, Any]:
    """SessionOptions keywords from the ``SESSION_*`` settings the project set."""
    options: dict[str, Any] = {}
    cookie: dict[str, Any] = {}

    def given(name: str) -> bool:
        return bool(settings.is_overridden(name))

    if given("SESSION_COOKIE_NAME"):
        options["name"] = settings.SESSION_COOKIE_NAME
    if given("SESSION_COOKIE_AGE"):
        cookie["max_age"] = settings.SESSION_COOKIE_AGE * 1000  # Express counts milliseconds
    if given("SESSION_EXPIRE_AT_BROWSER_CLOSE") and settings.SESSION_EXPIRE_AT_BROWSER_CLOSE:
        cookie["max_age"] = None
    # Django's None / False mean "no such attribute": express-session's option left out
    # (an option given as null would be stored as null in the session's cookie)
    if given("SESSION_COOKIE_DOMAIN") and settings.SESSION_COOKIE_DOMAIN:
        cookie["domain"] = settings.SESSION_COOKIE_DOMAIN
    if given("SESSION_COOKIE_PATH"):
        cookie["path"] = settings.SESSION_COOKIE_PATH
    if given("SESSION_COOKIE_SECURE"):
        cookie["secure"] = bool(settings.SESSION_COOKIE_SECURE)
    if given("SESSION_COOKIE_HTTPONLY"):
        cookie["http_only"] = bool(settings.SESSION_COOKIE_HTTPONLY)
    if given("SESSION_COOKIE_SAMESITE") and isinstance(settings.SESSION_COOKIE_SAMESITE, str):
        cookie["same_site"] = settings.SESSION_COOKIE_SAMESITE.lower()
    if given("SESSION_SAVE_EVERY_REQUEST") and settings.SESSION_SAVE_EVERY_REQUEST:
        options["rolling"] = True  # the cookie is sent again on every response
    if cookie:
        options["cookie"] = cookie
    return options


def _resolve(value: Any) -> Any:
    """A dotted path names a store, or a function that opens one."""
    if isinstance(value, str) and "://" not in value:
        return import_string(value)
    return value


def _opened(setting: Any) -> Any:
    # a store has a get(); anything else callable opens one
    return setting() if callable(setting) and not hasattr(setting, "get") else setting


class Config:
    """What the middleware needs: the options, the blocking store, an asyncio store per
    event loop (an asyncio store's connections belong to the loop that opened them)."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        if "store" not in raw:
            raise ImproperlyConfigured('TOKEN_SESSION needs a "store": a URL or a store')
        keywords = {key: value for key, value in raw.items() if key not in _OWN_KEYS}
        defaults = _django_defaults()
        cookie = {**defaults.pop("cookie", {}), **dict(keywords.pop("cookie", None) or {})}
        self.options = SessionOptions(**{**defaults, **keywords, "cookie": cookie})
        self.passport: Mapping[str, Any] | None = raw.get("passport")
        self.store_options: dict[str, Any] = dict(raw.get("store_options") or {})
        self._store_setting = _resolve(raw["store"])
        self._async_setting = _resolve(raw.get("async_store"))
        self._store: Store | None = None
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncStore] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def store(self) -> Store:
        if self._store is None:
            with _lock:
                if self._store is None:
                    setting = self._store_setting
                    if isinstance(setting, str):
                        self._store = from_url(setting, **self.store_options)
                    else:
                        self._store = _opened(setting)
        return self._store

    def async_store(self) -> AsyncStore | None:
        """The running loop's asyncio store; None when there is only a blocking store (the
        middleware then runs it in a thread)."""
        setting = self._async_setting
        if setting is not None and not isinstance(setting, str) and hasattr(setting, "get"):
            return setting  # type: ignore[no-any-return]
        loop = asyncio.get_running_loop()
        opened = self._async.get(loop)
        if opened is None:
            if setting is not None:
                opened = (
                    async_from_url(setting, **self.store_options)
                    if isinstance(setting, str)
                    else setting()  # a function opening one per event loop
                )
            elif isinstance(self.store, MemoryStore):
                opened = AsyncMemoryStore()
                opened.sync = self.store  # one memory, both faces
            elif isinstance(self._store_setting, str):
                opened = async_from_url(self._store_setting, **self.store_options)
            else:
                return None
            self._async[loop] = opened
        return opened

    def close(self) -> None:
        """Close the blocking store this configuration opened from a URL."""
        if self._store is not None and self._store is not self._store_setting:
            self._store.close()
        self._store = None

    async def aclose(self) -> None:
        """Close the running loop's asyncio store, if this configuration opened it."""
        opened = self._async.pop(asyncio.get_running_loop(), None)
        if opened is not None:
            await opened.close()


_config: Config | None = None
_lock = threading.Lock()


def config() -> Config:
    global _config
    if _config is None:
        with _lock:  # one set of stores, however many threads serve the first requests
            if _config is None:
                raw = getattr(settings, "TOKEN_SESSION", None)
                if not isinstance(raw, Mapping):
                    raise ImproperlyConfigured("settings.TOKEN_SESSION must be a dict")
                _config = Config(raw)
    return _config


def reset(**_: Any) -> None:
    """Forget the configuration (its stores stay open for whoever holds them)."""
    global _config
    _config = None


def _on_setting_changed(*, setting: str, **_: Any) -> None:
    if setting == "TOKEN_SESSION" or setting.startswith("SESSION_"):
        reset()


setting_changed.connect(_on_setting_changed, dispatch_uid="token_session.web.django.conf")
