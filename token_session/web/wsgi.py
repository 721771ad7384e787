"""WSGI middleware: the request's :class:`ExpressSession` in ``environ["token_session"]``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..flows import run
from ..stores import Store, from_url
from .core import SessionOptions, commit_flow, load_flow
from .request import Request

__all__ = ["ENVIRON_KEY", "SessionMiddleware", "wsgi_request"]

ENVIRON_KEY = "token_session"

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


def wsgi_request(environ: Environ) -> Request:
    """The core's view of a WSGI request: the path, the ``HTTP_*`` headers, the scheme."""
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_") and isinstance(value, str)
    }
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    return Request(path or "/", headers, environ.get("wsgi.url_scheme") == "https")


class SessionMiddleware:
    """express-session for WSGI apps, over a blocking store.

    ``store`` is a :class:`~token_session.stores.Store` or a store URL; ``environ_key`` names
    where the app finds the session; the other keywords are
    :class:`~token_session.web.core.SessionOptions`. The session is committed when the app
    calls ``start_response``.
    """

    def __init__(
        self, app: WSGIApp, *, store: Store | str, environ_key: str = ENVIRON_KEY, **options: Any
    ) -> None:
        self.app = app
        self.store = from_url(store) if isinstance(store, str) else store
        self.environ_key = environ_key
        self.options = SessionOptions(**options)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if self.environ_key in environ:  # an outer middleware gave it a session already
            return self.app(environ, start_response)
        session = run(self.store, load_flow(self.options, wsgi_request(environ)))
        if session is None:
            return self.app(environ, start_response)
        environ[self.environ_key] = session
        committed = False

        def start_with_session(status: str, headers: list[Any], exc_info: Any = None) -> Any:
            nonlocal committed
            if not committed:
                committed = True
                headers = [*headers, *run(self.store, commit_flow(self.options, session))]
            return start_response(status, headers, exc_info)

        return self.app(environ, start_with_session)
