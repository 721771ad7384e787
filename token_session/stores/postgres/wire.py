"""Statements on a libpq connection (psycopg's ``pgconn``): what is sent, how a result is
read back, which errors mean the server is out of reach, and the blocking round trip.

Values go as text with no type (the server infers it, as for node-postgres) and results
come back as text, so the JSON in ``sess`` arrives exactly as stored.
"""

from __future__ import annotations

import functools
import hashlib
import select
import time
import weakref
from typing import Any

import psycopg
from psycopg import pq

from ...errors import BackendUnavailableError, InvalidArgumentError
from ..spin import ReplySpin
from .format import Statement

__all__ = [
    "StalledError",
    "encode",
    "execute",
    "forget",
    "read_result",
    "send",
    "server_error",
    "unavailable",
]

_TUPLES_OK = pq.ExecStatus.TUPLES_OK
_COMMAND_OK = pq.ExecStatus.COMMAND_OK
_SQLSTATE = pq.DiagnosticField.SQLSTATE
# the server is going away or cannot take the connection: like a connection that failed
_GONE = ("57P01", "57P02", "57P03", "53300", "25P03")


class StalledError(BackendUnavailableError):
    """The server did not answer within the operation's timeout."""


def encode(statement: Statement) -> tuple[bytes, list[bytes | None]]:
    return statement.sql.encode(), [None if p is None else p.encode() for p in statement.params]


# the prepared statements each connection holds (by libpq connection)
_PREPARED: weakref.WeakKeyDictionary[Any, set[bytes]] = weakref.WeakKeyDictionary()


def prepared_on(pgconn: pq.abc.PGconn) -> set[bytes]:
    """The names of the statements prepared on ``pgconn``."""
    names = _PREPARED.get(pgconn)
    if names is None:
        names = _PREPARED[pgconn] = set()
    return names


@functools.lru_cache(maxsize=512)
def statement_name(sql: str) -> bytes:
    """A name for a prepared statement, the same for the same SQL on every connection."""
    return b"token_session_" + hashlib.blake2b(sql.encode(), digest_size=8).hexdigest().encode()


def send(pgconn: pq.abc.PGconn, statement: Statement, prepare_first: bool) -> bytes | None:
    """Queue the statement (``prepare_first``: its Parse first, in pipeline mode); the
    name of the prepared statement it runs, if it is one."""
    sql, params = encode(statement)
    if not statement.prepare:
        pgconn.send_query_params(sql, params)
        return None
    name = statement_name(statement.sql)
    names = prepared_on(pgconn)
    if name not in names:
        if prepare_first:
            pgconn.send_prepare(name, sql)
        names.add(name)
    pgconn.send_query_prepared(name, params)
    return name


def forget(pgconn: pq.abc.PGconn, name: bytes | None) -> None:
    """The statement is not (or no longer) prepared on the server."""
    if name is not None:
        prepared_on(pgconn).discard(name)


def server_error(result: pq.abc.PGresult) -> Exception:
    """The error to raise for a failed statement: psycopg's class for its SQLSTATE (what
    psycopg itself raises), or BackendUnavailableError when the server is going away."""
    sqlstate = (result.error_field(_SQLSTATE) or b"").decode()
    message = (result.error_message or b"").decode(errors="replace").strip()
    if sqlstate.startswith("08") or sqlstate in _GONE:
        return BackendUnavailableError(f"PostgreSQL server unavailable: {message}")
    if sqlstate.startswith("22"):  # a value the column refuses (Node gets the same error)
        return InvalidArgumentError(f"PostgreSQL refused the value: {message}")
    error_class: type[psycopg.Error] = (
        psycopg.errors.lookup(sqlstate) if sqlstate else psycopg.Error
    )
    return error_class(message)


def read_result(result: pq.abc.PGresult, fetch: bool) -> Any:
    """Rows as tuples of text (``fetch``), or the number of rows the statement touched."""
    status = result.status
    if status == _TUPLES_OK and fetch:
        width = range(result.nfields)
        return [
            tuple(
                None if (v := result.get_value(row, col)) is None else v.decode() for col in width
            )
            for row in range(result.ntuples)
        ]
    if status in (_TUPLES_OK, _COMMAND_OK):
        return result.command_tuples or 0
    raise server_error(result)


def unavailable(exc: BaseException) -> BackendUnavailableError:
    """A failure of the connection itself (libpq or the socket) as BackendUnavailableError."""
    if isinstance(exc, BackendUnavailableError):
        return exc
    return BackendUnavailableError(f"PostgreSQL server unavailable: {exc}")


def _wait(fileno: int, events: int, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining > 0:
        poller = select.poll()
        poller.register(fileno, events)
        if poller.poll(remaining * 1000):
            return
    raise StalledError("PostgreSQL server did not answer in time")


def _read(
    pgconn: pq.abc.PGconn, fetch: bool, deadline: float, spin: ReplySpin | None = None
) -> Any:
    fileno = pgconn.socket
    while pgconn.flush():
        _wait(fileno, select.POLLOUT, deadline)
    if spin is not None:
        spin.wait(fileno)
    value: Any = None
    error: Exception | None = None
    while True:
        while pgconn.is_busy():
            _wait(fileno, select.POLLIN, deadline)
            pgconn.consume_input()
        result = pgconn.get_result()
        if result is None:
            break
        try:
            value = read_result(result, fetch)
        except Exception as exc:
            error = error or exc
    if error is not None:
        raise error
    return value


def execute(
    pgconn: pq.abc.PGconn, statement: Statement, deadline: float, spin: ReplySpin | None = None
) -> Any:
    """Send one statement on a connection in non-blocking mode and wait for its result,
    no later than ``deadline`` (``time.monotonic()``), polling for it first as ``spin``
    says. An error the server reports raises psycopg's error class for it, the connection
    ready for more; BackendUnavailableError means the connection is unusable."""
    try:
        if statement.prepare and statement_name(statement.sql) not in prepared_on(pgconn):
            new = statement_name(statement.sql)
            pgconn.send_prepare(new, statement.sql.encode())
            _read(pgconn, False, deadline)
            prepared_on(pgconn).add(new)
        name = send(pgconn, statement, False)
        try:
            return _read(pgconn, statement.fetch, deadline, spin)
        except psycopg.errors.InvalidSqlStatementName:
            forget(pgconn, name)  # deallocated meanwhile (DISCARD ALL): made again
            return execute(pgconn, statement, deadline, spin)
    except psycopg.OperationalError as exc:  # from libpq: the connection failed
        raise unavailable(exc) from exc
