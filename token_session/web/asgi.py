"""ASGI middleware (Starlette, FastAPI, any ASGI app): ``scope["session"]``, which
Starlette's ``request.session`` reads, is the request's :class:`ExpressSession`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ..errors import TokenSessionError
from ..flows import arun
from ..stores import AsyncStore, async_from_url
from .core import SessionOptions, commit_flow, load_flow
from .request import Request
from .session import ExpressSession

__all__ = ["SessionMiddleware", "asgi_request", "session_of"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def asgi_request(scope: Scope) -> Request:
    """The core's view of an ASGI request: the path as sent, the headers, the scheme."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name == "cookie" and name in headers:
            headers[name] += "; " + value  # HTTP/2 may split the Cookie header
        else:
            headers.setdefault(name, value)
    raw_path = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else scope.get("path", "/")
    return Request(path, headers, scope.get("scheme") in ("https", "wss"))


def session_of(request: Any) -> ExpressSession:
    """The :class:`ExpressSession` of a Starlette/FastAPI ``request`` (or an ASGI scope),
    typed as such: ``session_of(request).regenerate()``."""
    scope = getattr(request, "scope", request)
    session = scope.get("session")
    if not isinstance(session, ExpressSession):
        raise TokenSessionError(
            "no express-session here: SessionMiddleware is not installed, or the path is "
            "outside the cookie's path"
        )
    return session


class SessionMiddleware:
    """express-session for ASGI apps, over an asyncio store.

    ``store`` is an :class:`~token_session.stores.AsyncStore` or a store URL; the other
    keywords are :class:`~token_session.web.core.SessionOptions`. The session is saved,
    touched or destroyed when the app starts its response, before the headers go out (a
    streamed response's later changes to the session are not saved). WebSocket connections
    get the session to read; nothing is written for them.
    """

    def __init__(self, app: ASGIApp, *, store: AsyncStore | str, **options: Any) -> None:
        self.app = app
        self.store = async_from_url(store) if isinstance(store, str) else store
        self.options = SessionOptions(**options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # express-session leaves a request that already has a session alone
        if scope["type"] not in ("http", "websocket") or "session" in scope:
            await self.app(scope, receive, send)
            return
        session = await arun(self.store, load_flow(self.options, asgi_request(scope)))
        if session is None:
            await self.app(scope, receive, send)
            return
        scope["session"] = session
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        committed = False

        async def send_with_session(message: Message) -> None:
            nonlocal committed
            if message["type"] == "http.response.start" and not committed:
                committed = True
                added = await arun(self.store, commit_flow(self.options, session))
                message = dict(message)
                message["headers"] = [
                    *message.get("headers", ()),
                    *((name.lower().encode("latin-1"), v.encode("latin-1")) for name, v in added),
                ]
            await send(message)

        await self.app(scope, receive, send_with_session)
