"""``ExpressSessionMiddleware``: Django's ``SessionMiddleware`` replaced by express-session's
request handling, over a blocking store under WSGI and an asyncio store under ASGI."""

from __future__ import annotations

from collections.abc import Callable
from http.cookies import Morsel
from typing import Any, TypeVar

from asgiref.sync import (
    iscoroutinefunction,
    markcoroutinefunction,
    sync_to_async,
)
from django.utils.cache import patch_vary_headers  # type: ignore[import-untyped]

from ...flows import Flow, arun, run
from ..core import commit_flow, load_flow
from ..request import Request
from .conf import Config, config
from .session import DjangoExpressSession

__all__ = ["ExpressSessionMiddleware", "RawMorsel", "django_request"]

T = TypeVar("T")


def django_request(request: Any) -> Request:
    """The core's view of a Django ``HttpRequest``: its path, headers and scheme
    (``is_secure()`` honours ``SECURE_PROXY_SSL_HEADER``)."""
    headers = {name.lower(): value for name, value in request.headers.items()}
    return Request(request.path or "/", headers, request.is_secure())


class RawMorsel(Morsel[str]):
    """A ``Set-Cookie`` value written by the core, byte for byte as express-session writes
    it (``Priority`` and ``Partitioned`` included, which ``http.cookies`` lacks), placed in
    ``response.cookies`` where Django's handlers and test client look for cookies."""

    def __init__(self, header: str) -> None:
        super().__init__()
        pair = header.split(";", 1)[0]
        name, _, coded = pair.partition("=")
        self.set(name, coded, coded)
        self.header = header

    def output(self, attrs: Any = None, header: str = "Set-Cookie:") -> str:
        return f"{header} {self.header}"

    def OutputString(self, attrs: Any = None) -> str:  # noqa: N802 (http.cookies' name)
        return self.header


def _add_headers(response: Any, headers: list[tuple[str, str]], vary: bool) -> None:
    for name, value in headers:
        if name.lower() == "set-cookie":
            morsel = RawMorsel(value)
            response.cookies[morsel.key] = morsel
        else:
            response.headers[name] = value
    if vary or headers:
        patch_vary_headers(response, ("Cookie",))


class ExpressSessionMiddleware:
    """In ``MIDDLEWARE`` where ``django.contrib.sessions.middleware.SessionMiddleware`` was.

    The session is loaded before the view (``request.session`` never does I/O) and saved,
    touched or destroyed when the view has returned, as express-session does when the
    response ends; a 5xx response leaves the store alone, as Django's middleware does.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self.is_async:
            return self.__acall__(request)
        conf = config()
        session = run(conf.store, self._load(conf, request))
        response = self.get_response(request)
        if session is not None and response.status_code < 500:
            accessed = session.accessed  # before the commit hashes the session
            headers = run(conf.store, commit_flow(conf.options, session))
            _add_headers(response, headers, accessed)
        return response

    async def __acall__(self, request: Any) -> Any:
        conf = config()
        session = await _arun(conf, self._load(conf, request))
        response = await self.get_response(request)
        if session is not None and response.status_code < 500:
            accessed = session.accessed
            headers = await _arun(conf, commit_flow(conf.options, session))
            _add_headers(response, headers, accessed)
        return response

    @staticmethod
    def _load(conf: Config, request: Any) -> Flow[DjangoExpressSession | None]:
        session = yield from load_flow(conf.options, django_request(request), DjangoExpressSession)
        if session is None:  # outside the cookie's path: no session, as in express-session
            return None
        assert isinstance(session, DjangoExpressSession)
        request.session = session
        return session


async def _arun(conf: Config, flow: Flow[T]) -> T:
    store = conf.async_store()
    if store is None:  # a blocking store only: run it off the event loop
        result: T = await sync_to_async(run, thread_sensitive=False)(conf.store, flow)
        return result
    return await arun(store, flow)
