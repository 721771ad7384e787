"""Every error this package raises on purpose derives from :class:`TokenSessionError`."""

from __future__ import annotations

__all__ = [
    "BackendUnavailableError",
    "InvalidArgumentError",
    "SessionDecodeError",
    "SessionNotFoundError",
    "TokenSessionError",
]


class TokenSessionError(Exception):
    """Base class of the errors raised by token_session."""


class InvalidArgumentError(TokenSessionError, ValueError, TypeError):
    """A bad argument (a sid that is not a sane ``str``, data that is not a JSON-able dict).

    Raised before anything is written. It is also a ``ValueError`` and a ``TypeError`` so
    that code catching either keeps working.
    """


class BackendUnavailableError(TokenSessionError, ConnectionError):
    """The session backend could not be reached, or did not answer in time."""


class SessionDecodeError(TokenSessionError, ValueError):
    """A stored session could not be decoded. The stored record is left as it was."""

    def __init__(self, sid: str, reason: str) -> None:
        super().__init__(f"stored session {sid!r} cannot be decoded: {reason}")
        self.sid = sid
        self.reason = reason


class SessionNotFoundError(TokenSessionError, LookupError):
    """The session does not exist (or has expired)."""

    def __init__(self, sid: str) -> None:
        super().__init__(f"no session {sid!r}")
        self.sid = sid
