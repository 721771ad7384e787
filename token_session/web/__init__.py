"""express-session compatible sessions for Python web stacks.

One framework-free core (:mod:`.core`) decides what express-session 1.19.0 decides; thin
adapters run it: :class:`~token_session.web.asgi.SessionMiddleware` (ASGI: Starlette,
FastAPI), :class:`~token_session.web.wsgi.SessionMiddleware` (any WSGI app) and
:class:`~token_session.web.flask.ExpressSessionInterface` (Flask). The framework modules are
only imported by those who use them.
"""

from .cookies import parse_cookies, serialize
from .core import SessionOptions, commit_flow, load_flow
from .request import Request
from .session import ExpressSession, session_hash

__all__ = [
    "ExpressSession",
    "Request",
    "SessionOptions",
    "commit_flow",
    "load_flow",
    "parse_cookies",
    "serialize",
    "session_hash",
]
