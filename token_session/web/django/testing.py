"""For a project's tests: Django's ``Client.login()`` / ``force_login()`` write an unsigned
session id into the cookie, which express-session refuses; :func:`force_login` logs a user
in on the configured store and gives the client the signed cookie."""

from __future__ import annotations

from typing import Any

from django.conf import settings  # type: ignore[import-untyped]
from django.contrib import auth  # type: ignore[import-untyped]
from django.http import HttpRequest  # type: ignore[import-untyped]

from ...flows import run
from ..core import commit_flow, load_flow
from ..request import Request
from .conf import config
from .middleware import RawMorsel
from .session import DjangoExpressSession

__all__ = ["force_login"]


def force_login(client: Any, user: Any, backend: str | None = None) -> str:
    """Log ``user`` in as Django's ``login()`` does (``passport.user`` included), save the
    session in the blocking store and put its signed cookie in ``client.cookies`` (a
    ``django.test.Client``, ``AsyncClient`` or anything with such a jar). Returns the
    session id."""
    conf = config()
    request = HttpRequest()
    session = run(conf.store, load_flow(conf.options, Request("/", {}), DjangoExpressSession))
    assert isinstance(session, DjangoExpressSession)
    request.session = session
    auth.login(request, user, backend or settings.AUTHENTICATION_BACKENDS[0])
    for name, value in run(conf.store, commit_flow(conf.options, session)):
        if name.lower() == "set-cookie":
            morsel = RawMorsel(value)
            client.cookies[morsel.key] = morsel.coded_value
    sid: str = session.id
    return sid
