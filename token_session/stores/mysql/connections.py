"""How an operation's statements run on connections, with no I/O: :func:`on_connections`.

It takes a connection from a source, runs the statements of a flow on it, runs a statement
once more on a new connection when the one it had was dropped while idle, says which errors
leave a connection broken, translates driver errors and gives the connection back. It yields
:data:`Request` tuples, ``(method name, *arguments)`` of the source (``acquire``,
``execute``, ``release``, ``discard_idle``), and is sent each answer, or a :class:`Failure`
holding what the call raised: the blocking and asyncio stores only carry requests out, each
within what is left of the operation's :class:`Deadline`, and say whether a failure came
from the deadline (then nothing is tried again: the time is spent).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Generator
from typing import Any, NamedTuple, TypeVar

from ...errors import BackendUnavailableError, InvalidArgumentError
from .schema import Flow, Statement

__all__ = [
    "DEFAULT_TIMEOUT",
    "Deadline",
    "Driver",
    "Failure",
    "Request",
    "StaleConnectionError",
    "failure_error",
    "on_connections",
]

logger = logging.getLogger(__package__)
T = TypeVar("T")
Request = tuple[Any, ...]

# Driver errors. Client-side codes (CR_*, 2000-2999) and these server codes mean the
# connection is gone or the server cannot take it; 0 is PyMySQL / asyncmy's "not connected".
_CONNECTION_LOST = frozenset({0, 1040, 1053, 1077, 1078, 1079, 1080, 1152, 1927, 3169, 4031})
# values the column refuses under strict SQL mode (Node gets the same error)
_VALUE_REFUSED = frozenset({1264, 1366, 1406})
_PACKET_TOO_LARGE = 1153
_LOGIN_REFUSED = frozenset({1044, 1045, 1698})
_UNKNOWN_DATABASE = 1049
_NO_TABLE = 1146
_NO_COLUMN = 1054

DEFAULT_TIMEOUT = 5.0

_ACQUIRE: Request = ("acquire",)
_DISCARD_IDLE: Request = ("discard_idle",)


class Driver(NamedTuple):
    """A driver's errors: ``error``, its base class; ``interface_error``, its "not
    connected"; ``translated``, what :func:`on_connections` turns into our errors."""

    error: type[BaseException]
    interface_error: type[BaseException]
    translated: tuple[type[BaseException], ...]


class StaleConnectionError(BackendUnavailableError):
    """What a source's ``execute`` raises, having sent nothing, when the server closed the
    connection while it sat idle (a restart, ``KILL``, ``wait_timeout``)."""


class Failure(NamedTuple):
    """What a request raised, sent back in place of its answer; ``timed_out``: it failed
    because the operation's deadline came."""

    error: BaseException
    timed_out: bool = False


def check_timeout(timeout: object, name: str = "timeout") -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise InvalidArgumentError(f"{name} must be a number of seconds, not {timeout!r}")
    if not math.isfinite(timeout) or not 0 < timeout <= 31_536_000:
        raise InvalidArgumentError(f"{name} must be a number of seconds > 0, not {timeout!r}")
    return float(timeout)


class Deadline:
    """When an operation must be over: a source's waits last at most :meth:`left`; ``busy``,
    the connection running a statement, if any (for the blocking store's watchdog to stop)."""

    __slots__ = ("at", "busy")

    def __init__(self, timeout: float) -> None:
        self.at = time.monotonic() + timeout
        self.busy: Any = None

    def left(self) -> float:
        """Seconds left; :class:`TimeoutError` if none."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimeoutError("the operation's timeout has passed")
        return left

    def failure(self, exc: BaseException) -> Failure:
        """``exc``, raised by a request, as the answer to send back."""
        # a driver's error for a socket timeout (set from the deadline) holds it
        timed_out = isinstance(exc, (TimeoutError, asyncio.TimeoutError)) or isinstance(
            exc.__context__, TimeoutError
        )
        return Failure(exc, timed_out or time.monotonic() >= self.at)


def _said(exc: BaseException) -> str:
    """A driver error's message without its code."""
    if len(exc.args) == 2 and isinstance(exc.args[0], int):
        return f"{exc.args[1]} ({exc.args[0]})"
    return str(exc) or type(exc).__name__


def _errno(exc: BaseException) -> int:
    code = exc.args[0] if exc.args else None
    return code if isinstance(code, int) else -1


def connection_lost(exc: BaseException, interface_error: type[BaseException]) -> bool:
    if isinstance(exc, BackendUnavailableError):
        return False  # ours already
    if isinstance(exc, (OSError, asyncio.TimeoutError, interface_error)):
        return True
    code = _errno(exc)
    return code in _CONNECTION_LOST or 2000 <= code < 3000


def leaves_connection_usable(exc: BaseException) -> bool:
    """Whether the server reported the error and the connection can go on; after anything
    else (a client-side error, a protocol mix-up) it is closed rather than reused."""
    code = _errno(exc)
    if code == _PACKET_TOO_LARGE:
        return False  # the server closes the connection after it
    return code >= 1000 and not 2000 <= code < 3000 and code not in _CONNECTION_LOST


def translate(exc: BaseException, interface_error: type[BaseException]) -> BaseException:
    """Our error for a driver error, with what to do about it."""
    code = _errno(exc)
    if code == _PACKET_TOO_LARGE:
        return InvalidArgumentError(
            f"the session is larger than the MySQL server's max_allowed_packet ({_said(exc)}): "
            "store less in it, or raise max_allowed_packet on the server"
        )
    if connection_lost(exc, interface_error):
        return BackendUnavailableError(f"MySQL server unavailable: {_said(exc)}")
    if code in _VALUE_REFUSED:
        return InvalidArgumentError(f"MySQL refused the value: {_said(exc)}")
    if code in _LOGIN_REFUSED:
        return BackendUnavailableError(
            f"MySQL refused the login ({_said(exc)}): check the user, password and database in the "
            "URL, and the user's grants"
        )
    if code == _UNKNOWN_DATABASE:
        return BackendUnavailableError(
            f"MySQL has no such database ({_said(exc)}): create it, or fix the database in the URL"
        )
    if code == _NO_TABLE:
        return BackendUnavailableError(
            f"the sessions table does not exist ({_said(exc)}): create it (`token-session doctor` "
            "prints its CREATE TABLE), or let the store create it (create_database_table=True)"
        )
    if code == _NO_COLUMN:
        return InvalidArgumentError(
            f"the table does not have the configured columns ({_said(exc)}): check the schema "
            "option against the table (`token-session doctor`)"
        )
    return BackendUnavailableError(f"MySQL server error: {_said(exc)}")


def _timed_out(failure: Failure, timeout: float) -> BackendUnavailableError:
    return BackendUnavailableError(
        f"MySQL server did not answer within the store's timeout ({timeout:g} s): "
        f"{_said(failure.error)}; check the server and the network"
    )


def failure_error(failure: Failure, timeout: float) -> BaseException:
    """What to raise for a failed request."""
    if not failure.timed_out:
        return failure.error
    error = _timed_out(failure, timeout)
    error.__cause__ = failure.error
    return error


def _answer(answer: Any, timeout: float) -> Any:
    if type(answer) is Failure:
        raise failure_error(answer, timeout)
    return answer


def _may_run_again(exc: BaseException, statement: Statement, reused: bool, driver: Driver) -> bool:
    """Whether a statement that failed on a lost connection runs again on a new one: if it
    was never sent, or if it only reads and the connection had been idle. A write that may
    have reached the server is not sent again: between the two, another process (Node
    included) may have written the same row, and the second send would undo that."""
    if isinstance(exc, StaleConnectionError):
        return True
    reads_only = statement.fetch and not statement.writes
    return reused and reads_only and connection_lost(exc, driver.interface_error)


def on_connections(
    flow: Flow[T], driver: Driver, timeout: float = DEFAULT_TIMEOUT
) -> Generator[Request, Any, T]:
    """Run ``flow`` on a connection of a source; what it returns, or our error for it.

    A source's ``acquire`` answers ``(connection, reused)``: a connection used before may
    have been dropped since, a new one may not. ``timeout`` is the operation's, for the
    message of a failure that came from its deadline.
    """
    try:
        statement = next(flow)  # checks the arguments: nothing is sent if they are bad
    except StopIteration as done:
        result: T = done.value
        return result
    connection: Any = None
    broken = False
    try:
        connection, reused = _answer((yield _ACQUIRE), timeout)
        while True:
            value = yield ("execute", connection, statement)
            if type(value) is Failure:
                exc = value.error
                if value.timed_out or not isinstance(exc, (driver.error, StaleConnectionError)):
                    # timed out, cancelled or failed mid-statement: the connection is
                    # unusable, and a timed-out statement is never sent again
                    broken = True
                    raise failure_error(value, timeout)
                if not _may_run_again(exc, statement, reused, driver):
                    raise exc
                # a connection the server dropped while idle, and likely the other idle
                # ones with it: the statement runs on a new one, within what is left of the
                # deadline
                logger.info("MySQL connection lost while idle (%s); reconnecting", exc)
                _answer((yield ("release", connection, True)), timeout)
                connection = None
                _answer((yield _DISCARD_IDLE), timeout)
                connection, reused = _answer((yield _ACQUIRE), timeout)
                value = yield ("execute", connection, statement)
                if type(value) is Failure:
                    broken = value.timed_out or not isinstance(value.error, driver.error)
                    raise failure_error(value, timeout)
            reused = False
            statement = flow.send(value)
    except StopIteration as done:
        result = done.value
        return result
    except driver.translated as exc:
        if isinstance(exc, BackendUnavailableError):
            raise  # ours already (a timeout, a closed pool)
        broken = broken or not leaves_connection_usable(exc)
        raise translate(exc, driver.interface_error) from exc
    finally:
        if connection is not None:
            _answer((yield ("release", connection, broken)), timeout)
