"""Logins shared with an Express app that logs in with passport (0.7).

passport keeps the login in ``req.session.passport.user`` (``lib/sessionmanager.js``:
``req.session[key].user = serializeUser(user)``, after a ``regenerate``; ``logOut`` deletes
it and regenerates). :class:`PassportAuthenticationMiddleware` makes that the only source
of ``request.user``; Django's ``login()`` / ``alogin()`` write it, so the Express app's
``deserializeUser`` reads the same user.

``TOKEN_SESSION["passport"]`` (every key optional)::

    {"key": "passport",   # passport's SessionManager `key` option
     "user_key": "user",
     "field": "pk",       # the user model's field passport.user holds (serializeUser's id)
     "loader": None,      # or a dotted callable: passport.user -> user or None
     "serializer": None}  # or a dotted callable: user -> what passport.user gets (JSON)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model  # type: ignore[import-untyped]
from django.contrib.auth.signals import user_logged_in  # type: ignore[import-untyped]
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]
from django.utils.deprecation import MiddlewareMixin  # type: ignore[import-untyped]
from django.utils.functional import SimpleLazyObject  # type: ignore[import-untyped]
from django.utils.module_loading import import_string  # type: ignore[import-untyped]

from .conf import config
from .session import DjangoExpressSession

__all__ = ["Passport", "PassportAuthenticationMiddleware", "passport"]


class Passport:
    """Where passport keeps the login, and how a user goes in and out of it."""

    def __init__(self, raw: Mapping[str, Any] | None) -> None:
        raw = dict(raw or {})
        unknown = set(raw) - {"key", "user_key", "field", "loader", "serializer"}
        if unknown:
            raise ImproperlyConfigured(f"unknown passport option(s): {', '.join(sorted(unknown))}")
        self.key: str = raw.get("key", "passport")
        self.user_key: str = raw.get("user_key", "user")
        self.field: str = raw.get("field", "pk")
        loader, serializer = raw.get("loader"), raw.get("serializer")
        self.loader: Callable[[Any], Any] = (
            import_string(loader) if isinstance(loader, str) else loader or self._by_field
        )
        self.serializer: Callable[[Any], Any] = (
            import_string(serializer)
            if isinstance(serializer, str)
            else serializer or (lambda user: getattr(user, self.field))
        )

    def _by_field(self, value: Any) -> Any:
        model = get_user_model()
        return model._default_manager.filter(**{self.field: value}).first()

    def user_id(self, session: Mapping[str, Any]) -> Any:
        """``passport.user`` (None when passport has no login there)."""
        holder = session.get(self.key)
        return holder.get(self.user_key) if isinstance(holder, Mapping) else None

    def get_user(self, request: Any) -> Any:
        """The logged-in user, or ``AnonymousUser`` (also for an inactive or unknown one,
        as passport does when ``deserializeUser`` gives no user)."""
        from django.contrib.auth.models import AnonymousUser  # type: ignore[import-untyped]

        session = getattr(request, "session", None)
        value = None if session is None else self.user_id(session)
        if value is None:
            return AnonymousUser()
        user = self.loader(value)
        if user is None or not getattr(user, "is_active", True):
            return AnonymousUser()
        return user

    def write(self, session: DjangoExpressSession, user: Any) -> None:
        """What passport's ``logIn`` leaves: ``session[key][user_key]``, other keys kept."""
        holder = session.get(self.key)
        holder = dict(holder) if isinstance(holder, Mapping) else {}
        holder[self.user_key] = self.serializer(user)
        session[self.key] = holder


def passport() -> Passport:
    conf = config()
    cached = getattr(conf, "_passport", None)
    if cached is None:
        cached = Passport(conf.passport)
        conf._passport = cached  # type: ignore[attr-defined]
    return cached


_MIDDLEWARE = "token_session.web.django.PassportAuthenticationMiddleware"


def _enabled() -> bool:
    from django.conf import settings  # type: ignore[import-untyped]

    middleware = getattr(settings, "MIDDLEWARE", None) or ()
    paths = {_MIDDLEWARE, "token_session.web.django.passport.PassportAuthenticationMiddleware"}
    return config().passport is not None or any(path in paths for path in middleware)


def _on_login(sender: Any, request: Any, user: Any, **_: Any) -> None:
    # Django's login() has cycled the key and written _auth_user_*; passport.user is what
    # the Express app reads
    session = getattr(request, "session", None)
    if isinstance(session, DjangoExpressSession) and not session.destroyed and _enabled():
        passport().write(session, user)


user_logged_in.connect(_on_login, dispatch_uid="token_session.web.django.passport")


def _get_user(request: Any) -> Any:
    if not hasattr(request, "_cached_user"):
        request._cached_user = passport().get_user(request)
    return request._cached_user


async def _auser(request: Any) -> Any:
    if not hasattr(request, "_acached_user"):
        request._acached_user = await sync_to_async(passport().get_user)(request)
    return request._acached_user


class PassportAuthenticationMiddleware(MiddlewareMixin):  # type: ignore[misc]
    """In ``MIDDLEWARE`` where ``django.contrib.auth.middleware.AuthenticationMiddleware``
    was, after :class:`~token_session.web.django.ExpressSessionMiddleware`:
    ``request.user`` (and ``await request.auser()``) is passport's user; Django's
    ``_auth_user_id`` is not read (a login the Express app ended is ended here too)."""

    def process_request(self, request: Any) -> None:
        if not isinstance(getattr(request, "session", None), DjangoExpressSession):
            raise ImproperlyConfigured(
                "PassportAuthenticationMiddleware needs ExpressSessionMiddleware before it"
            )
        request.user = SimpleLazyObject(lambda: _get_user(request))
        request.auser = partial(_auser, request)
