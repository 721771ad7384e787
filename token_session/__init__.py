"""Share express-session stores between Python and Node: the token-session API and store
adapters that read and write exactly what the Node stores do."""

from .errors import (
    BackendUnavailableError,
    InvalidArgumentError,
    SessionDecodeError,
    SessionNotFoundError,
    TokenSessionError,
)
from .session import AsyncTokenSession, NewSession, TokenSession
from .stores import AsyncMemoryStore, MemoryStore, async_from_url, from_url

__version__ = "0.1.0"

__all__ = [
    "AsyncMemoryStore",
    "AsyncTokenSession",
    "BackendUnavailableError",
    "InvalidArgumentError",
    "MemoryStore",
    "NewSession",
    "SessionDecodeError",
    "SessionNotFoundError",
    "TokenSession",
    "TokenSessionError",
    "async_from_url",
    "from_url",
]
