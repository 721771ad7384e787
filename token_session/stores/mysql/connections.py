"""How an operation's statements run on connections, with no I/O: :func:`on_connections`.

It takes a connection from a source, runs the statements of a flow on it, runs a statement
once more on a new connection when the one it had was dropped while idle, says which errors
leave a connection broken, translates driver errors and gives the connection back. It yields
:data:`Request` tuples, ``(method name, *arguments)`` of the source (``acquire``,
``execute``, ``release``, ``discard_idle``), and is sent each answer, or a :class:`Failure`
holding what the call raised: the blocking and asyncio stores only carry requests out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Generator
from typing import Any, NamedTuple, TypeVar

from ...errors import BackendUnavailableError, InvalidArgumentError
from .schema import Flow

__all__ = ["Driver", "Failure", "Request", "on_connections"]

logger = logging.getLogger(__package__)
T = TypeVar("T")
Request = tuple[Any, ...]

# Driver errors. Client-side codes (CR_*, 2000-2999) and these server codes mean the
# connection is gone or the server cannot take it; 0 is PyMySQL / asyncmy's "not connected".
_CONNECTION_LOST = frozenset({0, 1040, 1053, 1077, 1078, 1079, 1080, 1152, 1927, 3169, 4031})
# values the column refuses under strict SQL mode (Node gets the same error)
_VALUE_REFUSED = frozenset({1264, 1366, 1406})

_ACQUIRE: Request = ("acquire",)
_DISCARD_IDLE: Request = ("discard_idle",)


class Driver(NamedTuple):
    """A driver's errors: ``error``, its base class; ``interface_error``, its "not
    connected"; ``translated``, what :func:`on_connections` turns into our errors."""

    error: type[BaseException]
    interface_error: type[BaseException]
    translated: tuple[type[BaseException], ...]


class Failure(NamedTuple):
    """What a request raised, sent back in place of its answer."""

    error: BaseException


def _errno(exc: BaseException) -> int:
    code = exc.args[0] if exc.args else None
    return code if isinstance(code, int) else -1


def connection_lost(exc: BaseException, interface_error: type[BaseException]) -> bool:
    if isinstance(exc, (OSError, asyncio.TimeoutError, interface_error)):
        return True
    code = _errno(exc)
    return code in _CONNECTION_LOST or 2000 <= code < 3000


def leaves_connection_usable(exc: BaseException) -> bool:
    """Whether the server reported the error and the connection can go on; after anything
    else (a client-side error, a protocol mix-up) it is closed rather than reused."""
    code = _errno(exc)
    return code >= 1000 and not 2000 <= code < 3000 and code not in _CONNECTION_LOST


def translate(exc: BaseException, interface_error: type[BaseException]) -> BaseException:
    """The error to raise for a driver error (the driver's own if nothing better fits)."""
    if connection_lost(exc, interface_error):
        return BackendUnavailableError(f"MySQL server unavailable: {exc}")
    if _errno(exc) in _VALUE_REFUSED:
        return InvalidArgumentError(f"MySQL refused the value: {exc}")
    return exc


def _answer(answer: Any) -> Any:
    if type(answer) is Failure:
        raise answer.error
    return answer


def on_connections(flow: Flow[T], driver: Driver) -> Generator[Request, Any, T]:
    """Run ``flow`` on a connection of a source; what it returns, or our error for it.

    A source's ``acquire`` answers ``(connection, reused)``: a connection used before may
    have been dropped since, a new one may not.
    """
    try:
        statement = next(flow)  # checks the arguments: nothing is sent if they are bad
    except StopIteration as done:
        result: T = done.value
        return result
    connection: Any = None
    broken = False
    try:
        connection, reused = _answer((yield _ACQUIRE))
        while True:
            value = yield ("execute", connection, statement)
            if type(value) is Failure:
                exc = value.error
                if not isinstance(exc, driver.error):
                    broken = True  # cancelled or failed mid-statement: the connection is unusable
                    raise exc
                if not (reused and connection_lost(exc, driver.interface_error)):
                    raise exc
                # an idle connection the server dropped (restart, KILL, wait_timeout),
                # and likely the other idle ones with it: each statement here is
                # idempotent, so it runs again on a new connection
                logger.info("MySQL connection lost while idle (%s); reconnecting", exc)
                _answer((yield ("release", connection, True)))
                connection = None
                _answer((yield _DISCARD_IDLE))
                connection, reused = _answer((yield _ACQUIRE))
                value = yield ("execute", connection, statement)
                if type(value) is Failure:
                    broken = not isinstance(value.error, driver.error)
                    raise value.error
            reused = False
            statement = flow.send(value)
    except StopIteration as done:
        result = done.value
        return result
    except driver.translated as exc:
        broken = broken or not leaves_connection_usable(exc)
        raise translate(exc, driver.interface_error) from exc
    finally:
        if connection is not None:
            _answer((yield ("release", connection, broken)))
