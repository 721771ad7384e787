"""express-session 1.19.0's request handling with no framework and no I/O.

:func:`load_flow` reads the session id a request carries and loads its session;
:func:`commit_flow` decides, as express-session's ``index.js`` does, whether the session is
saved, touched or destroyed and which headers the response gets. Both are flows (see
:mod:`token_session.flows`): the adapters run them against a blocking or an asyncio store.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..compat.cookie import Cookie, now_ms
from ..compat.jsjson import js_truthy
from ..compat.sid import generate_sid
from ..compat.signature import Secret, sign, unsign
from ..errors import InvalidArgumentError
from ..flows import Flow
from ..stores.base import MAX_SID_LENGTH, Session
from .cookies import parse_cookies, serialize
from .request import Request
from .session import ExpressSession

__all__ = ["Request", "SessionOptions", "commit_flow", "load_flow", "request_sid"]

logger = logging.getLogger("token_session.web")

_COOKIE_OPTIONS = {
    "max_age",
    "expires",
    "http_only",
    "secure",
    "same_site",
    "domain",
    "path",
    "partitioned",
    "priority",
}


class SessionOptions:
    """express-session's options, in snake_case.

    ``secret``: a str (or bytes), or a list whose first item signs and all of which verify.
    ``cookie``: express-session's cookie options in snake_case (``max_age`` in milliseconds
    as in Express, ``expires`` an aware datetime, ``secure`` and ``same_site`` may be
    ``"auto"``). ``resave`` and ``save_uninitialized`` default to True as in express-session.
    ``proxy``: None trusts the scheme the server reports, True reads ``X-Forwarded-Proto``,
    False only a TLS connection. ``token_header`` switches to token mode: the id comes from
    that header (``authorization`` reads ``Bearer <token>``) and a new id is sent back in
    ``token_response_header`` instead of a cookie.
    """

    def __init__(
        self,
        *,
        secret: Secret | Iterable[Secret] | None = None,
        name: str = "connect.sid",
        resave: bool = True,
        save_uninitialized: bool = True,
        rolling: bool = False,
        cookie: Mapping[str, Any] | None = None,
        proxy: bool | None = None,
        genid: Callable[[], str] = generate_sid,
        token_header: str | None = None,
        token_response_header: str = "X-Session-Token",
        clock: Callable[[], int] = now_ms,
    ) -> None:
        secrets = [secret] if isinstance(secret, (str, bytes)) else list(secret or [])
        if token_header is None and not secrets:
            raise InvalidArgumentError("secret option required for sessions")
        if not all(isinstance(item, (str, bytes)) and item for item in secrets):
            raise InvalidArgumentError("secret option must be non-empty strings")
        if not callable(genid):
            raise InvalidArgumentError("genid option must be a function")
        cookie = dict(cookie or {})
        unknown = set(cookie) - _COOKIE_OPTIONS
        if unknown:
            raise InvalidArgumentError(f"unknown cookie option(s): {', '.join(sorted(unknown))}")
        self.secrets = secrets
        self.name = name
        self.resave = resave
        self.save_uninitialized = save_uninitialized
        self.rolling = rolling
        self.cookie = cookie
        self.proxy = proxy
        self.genid = genid
        self.token_header = token_header.lower() if token_header else None
        self.token_response_header = token_response_header
        self.clock = clock
        try:
            for secure in (False, True):  # what serialize would refuse fails here, not later
                serialize(name, "", self.new_cookie(secure).to_json())
        except TypeError as exc:
            raise InvalidArgumentError(f"bad cookie option: {exc}") from None

    def new_cookie(self, secure: bool) -> Cookie:
        """``store.generate``'s cookie: the options, with ``"auto"`` resolved."""
        cookie = Cookie(clock=self.clock, **self.cookie)
        if self.cookie.get("secure") == "auto":
            cookie.secure = secure
        if self.cookie.get("same_site") == "auto":
            cookie.same_site = "none" if secure else "lax"
        return cookie

    def is_secure(self, request: Request) -> bool:
        """express-session's ``issecure`` (with no Express ``req.secure`` to ask, ``proxy``
        None trusts ``encrypted``: what the server reports after its own proxy handling)."""
        if request.encrypted or self.proxy is not True:
            return request.encrypted
        proto = request.headers.get("x-forwarded-proto", "").split(",", 1)[0]
        return proto.strip().lower() == "https"


def _sane(sid: str | None) -> str | None:
    # express-session treats an empty id as none; longer ids than any store takes are forged
    return sid if sid and len(sid) <= MAX_SID_LENGTH else None


def request_sid(options: SessionOptions, request: Request) -> str | None:
    """The session id the request carries: a verified cookie, or the token in token mode."""
    if options.token_header is not None:
        value = request.headers.get(options.token_header, "").strip()
        if options.token_header == "authorization":
            scheme, _, value = value.partition(" ")
            if scheme.lower() != "bearer":
                return None
        return _sane(value.strip())
    header = request.headers.get("cookie")
    if not header:
        return None
    raw = parse_cookies(header).get(options.name)
    if not raw:
        return None
    if not raw.startswith("s:"):
        logger.debug("cookie unsigned")
        return None
    sid = unsign(raw[2:], options.secrets)
    if sid is None:
        logger.debug("cookie signature invalid")
    return _sane(sid)


def _path_matches(options: SessionOptions, request: Request) -> bool:
    return request.path.startswith(options.cookie.get("path") or "/")


def load_flow(
    options: SessionOptions, request: Request, session_class: type[ExpressSession] = ExpressSession
) -> Flow[ExpressSession | None]:
    """The request's session (loaded or new); None where express-session gives no session
    (the path is outside the cookie's ``path``)."""
    if not _path_matches(options, request):
        logger.debug("pathname mismatch")
        return None
    cookie_id = request_sid(options, request)
    secure = options.is_secure(request)
    session = session_class(request, cookie_id, lambda: options.new_cookie(secure), options.genid)
    if cookie_id is None:
        logger.debug("no SID sent, generating session")
        session.generate()
        return session
    stored: Session | None = yield ("get", cookie_id)
    if stored is None:
        logger.debug("no session found")
        session.generate()
    else:
        session.inflate(cookie_id, stored, options.clock, keep_hash=not options.resave)
    return session


def _should_save(options: SessionOptions, session: ExpressSession) -> bool:
    if (
        not options.save_uninitialized
        and session.saved_hash is None
        and session.cookie_id != session.id
    ):
        return session.is_modified()
    return not session.is_saved()


def _should_set_cookie(options: SessionOptions, session: ExpressSession) -> bool:
    if session.cookie_id != session.id:
        return options.save_uninitialized or session.is_modified()
    # `cookie.expires != null`: an Invalid Date is a Date, and counts
    return options.rolling or (session.cookie.expires_ms is not None and session.is_modified())


def commit_flow(
    options: SessionOptions, session: ExpressSession | None
) -> Flow[list[tuple[str, str]]]:
    """Destroy, save or touch the session as express-session does when the response ends;
    returns the headers to add to the response (``Set-Cookie``, or the token header)."""
    if session is None:
        return []
    for sid in session.take_destroyed():
        yield ("destroy", sid)
    if session.destroyed:
        return []
    # express-session touches (maxAge = originalMaxAge) before it decides on the cookie:
    # res.end runs before the headers go out
    session.cookie.touch()
    send_cookie = _should_set_cookie(options, session)
    headers: list[tuple[str, str]] = []
    if send_cookie:
        if options.token_header is not None:
            headers.append((options.token_response_header, session.id))
        elif js_truthy(session.cookie.secure) and not options.is_secure(session.request):
            logger.debug("not secured")
        elif math.isnan(session.cookie.expires_ms or 0):
            # an expiry past JS's last date is an Invalid Date, which cookie.serialize refuses;
            # express-session 1.19.0 catches that, hands it to next(err) and the response
            # goes out without the cookie (the session is still saved or touched)
            logger.error("session %s: option expires is invalid, no Set-Cookie", session.id)
        else:
            value = "s:" + sign(session.id, options.secrets[0])
            headers.append(("Set-Cookie", serialize(options.name, value, session.cookie.to_json())))
    if _should_save(options, session):
        payload = session.to_store()
        session.mark_saved()
        logger.debug("saving %s", session.id)
        yield ("set", session.id, payload)
    elif session.cookie_id == session.id:
        logger.debug("touching %s", session.id)
        yield ("touch", session.id, session.to_store())
    return headers
