"""Flask's ``SessionInterface`` over express-session's cookie and a blocking store."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.sessions import SessionInterface, SessionMixin
from flask.wrappers import Request as FlaskRequest
from flask.wrappers import Response

from ..flows import run
from ..stores import Store, from_url
from .core import SessionOptions, commit_flow, load_flow
from .request import Request
from .session import ExpressSession

__all__ = ["ExpressSessionInterface", "FlaskExpressSession"]


class FlaskExpressSession(ExpressSession, SessionMixin):
    """:class:`ExpressSession` as Flask's ``session``."""

    @property
    def new(self) -> bool:  # type: ignore[override]
        return self.is_new


class ExpressSessionInterface(SessionInterface):
    """``app.session_interface = ExpressSessionInterface(store, secret=...)``.

    ``store`` is a :class:`~token_session.stores.Store` or a store URL; the other keywords
    are :class:`~token_session.web.core.SessionOptions` (``secret`` defaults to nothing:
    Flask's ``SECRET_KEY`` is not the Express secret).
    """

    def __init__(self, store: Store | str, **options: Any) -> None:
        self.store = from_url(store) if isinstance(store, str) else store
        self.options = SessionOptions(**options)

    def open_session(self, app: Flask, request: FlaskRequest) -> FlaskExpressSession | None:
        core_request = Request(
            request.script_root + request.path,
            {name.lower(): value for name, value in request.headers.items()},
            request.is_secure,
        )
        session = run(self.store, load_flow(self.options, core_request, FlaskExpressSession))
        assert session is None or isinstance(session, FlaskExpressSession)
        return session  # None: Flask's null session (outside the cookie's path)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, FlaskExpressSession):
            return
        for name, value in run(self.store, commit_flow(self.options, session)):
            response.headers.add(name, value)
