"""MySQL / MariaDB store: the rows express-mysql-session 3.0.3 (and 2.1.8) reads and writes.

One table, as the Node store's ``schema.sql`` creates it::

    session_id varchar(128) COLLATE utf8mb4_bin NOT NULL   -- primary key
    expires    int(11) unsigned NOT NULL                   -- epoch seconds
    data       mediumtext COLLATE utf8mb4_bin              -- JSON.stringify(session)

``expires`` is ``Math.round(ms / 1000)`` of ``cookie.expires`` (else ``cookie._expires``), else
of now + ``expiration`` ms. ``get`` reads a row whose ``expires`` is before now (rounded the
same way) as missing but leaves it; ``touch`` rewrites ``expires`` only; ``length`` and ``all``
count rows with ``expires >= now``; the periodic clean-up deletes rows with ``expires < now``.
Both Node versions run the same SQL and compute the same values; 2.1.8 has no
``disableTouch``.

:class:`MySQLStoreCore` holds all of it without I/O: each operation is a generator that
yields the :class:`Statement` objects it needs and is sent back their results.
:class:`MySQLStore` (PyMySQL, a clean-up thread) and :class:`AsyncMySQLStore` (asyncmy, a
clean-up task) only run those statements, on a connection the user gave, a pool the user
gave, or a pool of their own (at most ``connection_limit`` connections, 10 as in mysql2).
A server that cannot be reached raises :class:`BackendUnavailableError`; the next operation
connects again. A pooled connection that the server dropped while it sat idle (a restart,
``KILL``, ``wait_timeout``) costs no error: the idle connections are discarded and the
statement, idempotent like all of them, runs again on a new one.

Where the Node store is wrong we do better, on purpose:

- ``all()`` reads the configured columns; Node reads ``row.session_id`` and ``row.data``
  whatever the schema says, so with custom column names it finds no session at all.
- Table and column names must be plain identifiers (letters, digits, ``_``, ``$``; a table
  may be ``database.table``); Node accepts any text and escapes it.
- An id that is not a ``str``, is empty, longer than the 128-character column, or not
  encodable as UTF-8, and an unknown ``schema`` key, raise :class:`InvalidArgumentError`
  before any I/O; a ``cookie.expires`` that ``new Date()`` reads as Invalid Date, for which
  Node sends ``NaN`` and gets a SQL error, does too.
- The table is created on the first operation, so a server that is down when the store is
  made is no error; Node creates it once, when constructed.
- A failing clean-up is logged; Node's rejection is unhandled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import threading
import weakref
from collections.abc import Callable, Generator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, Protocol, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import pymysql
from pymysql.connections import Connection

from ...compat.cookie import expires_ms, now_ms
from ...compat.jsjson import js_truthy
from ...errors import BackendUnavailableError, InvalidArgumentError
from ..base import Session, check_sid, decode_session, encode_session
from ..records import (
    Finding,
    Page,
    RawRecord,
    StoredSession,
    WriteResult,
    check_limit,
    plan_writes,
)

if TYPE_CHECKING:
    import asyncmy

__all__ = [
    "DEFAULT_CHECK_EXPIRATION_INTERVAL",
    "DEFAULT_CONNECTION_LIMIT",
    "DEFAULT_EXPIRATION",
    "SID_COLUMN_LENGTH",
    "AsyncMySQLPool",
    "AsyncMySQLStore",
    "MySQLPool",
    "MySQLRecords",
    "MySQLSchema",
    "MySQLStore",
    "MySQLStoreCore",
    "Statement",
]

logger = logging.getLogger(__name__)

# express-mysql-session's defaults (milliseconds), and mysql2's pool size.
DEFAULT_EXPIRATION = 86_400_000
DEFAULT_CHECK_EXPIRATION_INTERVAL = 900_000
DEFAULT_CONNECTION_LIMIT = 10
SID_COLUMN_LENGTH = 128

# schema.sql of 3.0.3 and 2.1.8 (identical), its names replaced by the quoted schema names.
_CREATE_TABLE = """CREATE TABLE IF NOT EXISTS {table} (
  {session_id} varchar(128) COLLATE utf8mb4_bin NOT NULL,
  {expires} int(11) unsigned NOT NULL,
  {data} mediumtext COLLATE utf8mb4_bin,
  PRIMARY KEY ({session_id})
) ENGINE=InnoDB"""

# each column as schema.sql makes it: (what information_schema.COLUMNS should show, the
# definition that restores it); MySQL 8 shows `int unsigned` where MariaDB shows `int(11)`
_COLUMNS = {
    "session_id": (
        ({"varchar(128)"}, "utf8mb4_bin", "NO"),
        "varchar(128) COLLATE utf8mb4_bin NOT NULL",
    ),
    "expires": (({"int(11) unsigned", "int unsigned"}, None, "NO"), "int(11) unsigned NOT NULL"),
    "data": (({"mediumtext"}, "utf8mb4_bin", "YES"), "mediumtext COLLATE utf8mb4_bin"),
}

_IDENTIFIER = re.compile(r"[A-Za-z0-9_$]{1,64}")
_MAX_TIME_MS = 8.64e15  # the largest |time value| of a JS Date
T = TypeVar("T")


class Statement(NamedTuple):
    """One SQL statement of an operation: ``%s`` placeholders, values in ``params``.

    ``fetch``: the flow is sent the rows; otherwise the number of affected rows.
    """

    sql: str
    params: tuple[Any, ...]
    fetch: bool


Flow = Generator[Statement, Any, T]
Rows = Sequence[Sequence[Any]]


def js_round(value: float) -> int:
    """``Math.round``: the nearest integer, halves toward +infinity."""
    floor = math.floor(value)
    return floor + 1 if value - floor >= 0.5 else floor


def expires_seconds(ms: float) -> int:
    """``Math.round(new Date(ms).getTime() / 1000)``, as express-mysql-session stores it.

    :class:`InvalidArgumentError` where ``new Date`` gives an Invalid Date: Node writes NaN
    into the SQL text there and the server refuses the statement.
    """
    if not math.isfinite(ms) or abs(ms) > _MAX_TIME_MS:
        raise InvalidArgumentError(
            "cookie.expires is not a date (express-mysql-session would send NaN and fail)"
        )
    return js_round(math.trunc(ms) / 1000)


class MySQLSchema(NamedTuple):
    """Table and column names, validated; :meth:`quoted` gives them ready for SQL."""

    table_name: str = "sessions"
    session_id: str = "session_id"
    expires: str = "expires"
    data: str = "data"

    @classmethod
    def parse(cls, schema: Mapping[str, Any] | None) -> MySQLSchema:
        """The ``schema`` option: ``{"table_name": ..., "column_names": {...}}``.

        Column keys are express-mysql-session's: ``session_id``, ``expires``, ``data``; any
        other raises, as Node's ``validateOptions`` does.
        """
        if schema is None:
            return cls()
        if not isinstance(schema, Mapping):
            raise InvalidArgumentError(f"schema must be a dict, not {type(schema).__name__}")
        unknown = set(schema) - {"table_name", "column_names"}
        if unknown:
            raise InvalidArgumentError(
                f"unknown schema key(s) {sorted(map(str, unknown))}: only 'table_name' and "
                "'column_names' are configurable"
            )
        columns = schema.get("column_names") or {}
        if not isinstance(columns, Mapping):
            raise InvalidArgumentError("schema column_names must be a dict")
        for key in columns:
            if key not in cls._fields[1:]:
                raise InvalidArgumentError(
                    f'Unknown column specified ("{key}"). Only the following columns are '
                    'configurable: "session_id", "expires", "data".'
                )
        parsed = cls(
            schema.get("table_name", "sessions"),
            columns.get("session_id", "session_id"),
            columns.get("expires", "expires"),
            columns.get("data", "data"),
        )
        table_parts = parsed.table_name.split(".") if isinstance(parsed.table_name, str) else []
        if not 1 <= len(table_parts) <= 2 or not all(map(_is_identifier, table_parts)):
            raise InvalidArgumentError(
                f"schema table_name {parsed.table_name!r} is not a table name: use 1-64 "
                "letters, digits, '_' or '$', optionally prefixed by 'database.'"
            )
        for name in parsed[1:]:
            if not _is_identifier(name):
                raise InvalidArgumentError(
                    f"schema column name {name!r} is not a column name: use 1-64 letters, "
                    "digits, '_' or '$'"
                )
        return parsed

    def quoted(self) -> MySQLSchema:
        return MySQLSchema(*(".".join(f"`{part}`" for part in name.split(".")) for name in self))


def _is_identifier(name: object) -> bool:
    return isinstance(name, str) and _IDENTIFIER.fullmatch(name) is not None


def _number(name: str, value: object, *, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgumentError(f"{name} must be a number of milliseconds")
    if not math.isfinite(value) or value < minimum:
        raise InvalidArgumentError(f"{name} must be a finite number >= {minimum}")
    return value


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgumentError(f"{name} must be True or False")
    return value


class MySQLStoreCore:
    """express-mysql-session's behaviour with no I/O: options, SQL, values and row decoding.

    Each operation is a generator (a *flow*) that yields :class:`Statement` objects and
    returns the operation's result; the stores run flows on a connection. Arguments are
    checked when the flow is first advanced, before any statement is yielded.
    """

    def __init__(
        self,
        *,
        expiration: float = DEFAULT_EXPIRATION,
        clear_expired: bool = True,
        check_expiration_interval: float = DEFAULT_CHECK_EXPIRATION_INTERVAL,
        create_database_table: bool = True,
        disable_touch: bool = False,
        schema: Mapping[str, Any] | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.expiration = _number("expiration", expiration, minimum=-math.inf)
        self.clear_expired = _flag("clear_expired", clear_expired)
        self.check_expiration_interval = _number(
            "check_expiration_interval", check_expiration_interval, minimum=1
        )
        self.create_database_table = _flag("create_database_table", create_database_table)
        self.disable_touch = _flag("disable_touch", disable_touch)
        if not callable(clock):
            raise InvalidArgumentError("clock must be a function returning epoch milliseconds")
        self.clock = clock
        self.schema = MySQLSchema.parse(schema)
        self.table_ready = not create_database_table

        table, sid, expires, data = self.schema.quoted()
        self.create_sql = _CREATE_TABLE.format(
            table=table, session_id=sid, expires=expires, data=data
        )
        database, _, name = self.schema.table_name.rpartition(".")
        self._exists = Statement(
            "SELECT 1 FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA = COALESCE(%s, DATABASE()) AND TABLE_NAME = %s",
            (database or None, name),
            True,
        )
        self._get = f"SELECT {data}, {expires} FROM {table} WHERE {sid} = %s"
        # the upsert and update of 3.0.3 and 2.1.8, VALUES() and all
        self._set = (
            f"INSERT INTO {table} ({sid}, {expires}, {data}) VALUES (%s, %s, %s)"
            f" ON DUPLICATE KEY UPDATE {expires} = VALUES({expires}), {data} = VALUES({data})"
        )
        self._touch = f"UPDATE {table} SET {expires} = %s WHERE {sid} = %s"
        self._destroy = f"DELETE FROM {table} WHERE {sid} = %s"
        self._length = f"SELECT COUNT(*) FROM {table} WHERE {expires} >= %s"
        self._all = f"SELECT {sid}, {data} FROM {table} WHERE {expires} >= %s"
        self._ids = f"SELECT {sid} FROM {table} WHERE {expires} >= %s"
        self._clear = Statement(f"DELETE FROM {table}", (), False)
        self._clear_expired = f"DELETE FROM {table} WHERE {expires} < %s"

    # values

    def now(self) -> int:
        """``Math.round(Date.now() / 1000)``: the store's "now" in whole seconds."""
        return js_round(self.clock() / 1000)

    def expires_of(self, session: Mapping[str, Any]) -> int:
        """The ``expires`` column for ``session``, as 3.0.3 / 2.1.8 ``set`` and ``touch``."""
        at: float | None = None
        cookie = session.get("cookie")
        if isinstance(cookie, Mapping):
            # `data.cookie.expires`, else `data.cookie._expires`, whichever is truthy first
            for key in ("expires", "_expires"):
                value = cookie.get(key)
                if js_truthy(value):
                    at = expires_ms({"cookie": {"expires": value}})
                    break
        if at is None:
            at = self.clock() + self.expiration
        return expires_seconds(at)

    @staticmethod
    def check_sid(sid: object) -> str:
        """A session id the ``varchar(128) utf8mb4`` column can hold, else InvalidArgumentError."""
        sid = check_sid(sid)
        if len(sid) > SID_COLUMN_LENGTH:
            raise InvalidArgumentError(
                f"session id is longer than the {SID_COLUMN_LENGTH} characters the column holds"
            )
        return sid

    # flows

    def prepare(self) -> Flow[None]:
        """Create the table unless it exists (``createDatabaseTable``)."""
        if self.table_ready:
            return
        # looked up first: CREATE ... IF NOT EXISTS on an existing table leaves a note that
        # asyncmy logs as a warning
        if not (yield self._exists):
            logger.debug("creating table %s", self.schema.table_name)
            yield Statement(self.create_sql, (), False)
        self.table_ready = True

    def get(self, sid: object) -> Flow[Session | None]:
        sid = self.check_sid(sid)
        if not self.table_ready:
            yield from self.prepare()
        rows: Rows = yield Statement(self._get, (sid,), True)
        if not rows:
            return None
        data, expires = rows[0]
        if expires < self.now():
            return None  # expired: reads as missing, the row stays (3.0.3, 2.1.8)
        if data is None:
            return None  # Node hands express-session the NULL: no session
        return decode_session(sid, data)

    def set(self, sid: object, session: Mapping[str, Any]) -> Flow[None]:
        sid = self.check_sid(sid)
        text = encode_session(session)
        expires = self.expires_of(session)
        if not self.table_ready:
            yield from self.prepare()
        yield Statement(self._set, (sid, expires, text), False)

    def touch(self, sid: object, session: Mapping[str, Any]) -> Flow[None]:
        sid = self.check_sid(sid)
        if not isinstance(session, Mapping):
            raise InvalidArgumentError(f"session must be a dict, not {type(session).__name__}")
        if self.disable_touch:
            return
        expires = self.expires_of(session)
        if not self.table_ready:
            yield from self.prepare()
        yield Statement(self._touch, (expires, sid), False)

    def destroy(self, sid: object) -> Flow[None]:
        sid = self.check_sid(sid)
        if not self.table_ready:
            yield from self.prepare()
        yield Statement(self._destroy, (sid,), False)

    def length(self) -> Flow[int]:
        if not self.table_ready:
            yield from self.prepare()
        rows: Rows = yield Statement(self._length, (self.now(),), True)
        return int(rows[0][0]) if rows else 0

    def all(self) -> Flow[dict[str, Session]]:
        """Live sessions by id; a row whose data is not a JSON object is skipped and logged,
        as Node skips one it cannot parse."""
        if not self.table_ready:
            yield from self.prepare()
        rows: Rows = yield Statement(self._all, (self.now(),), True)
        sessions: dict[str, Session] = {}
        for sid, data in rows:
            if data is None:
                continue
            try:
                sessions[sid] = decode_session(sid, data)
            except ValueError as exc:
                logger.warning("all(): %s", exc)
        return sessions

    def ids(self) -> Flow[list[str]]:
        if not self.table_ready:
            yield from self.prepare()
        rows: Rows = yield Statement(self._ids, (self.now(),), True)
        return [row[0] for row in rows]

    def clear(self) -> Flow[None]:
        if not self.table_ready:
            yield from self.prepare()
        yield self._clear

    def clear_expired_sessions(self) -> Flow[int]:
        """Delete the rows that have expired; returns how many."""
        if not self.table_ready:
            yield from self.prepare()
        deleted: int = yield Statement(self._clear_expired, (self.now(),), False)
        return deleted

    # records: the stored text and expiry as they are (the token-session command)

    def page(self, after: str | None, limit: int) -> Flow[Page]:
        """Live rows in id order after ``after``; a row whose data is NULL holds no session."""
        check_limit(limit)
        if not self.table_ready:
            yield from self.prepare()
        table, sid, expires, data = self.schema.quoted()
        rows: Rows = yield Statement(
            f"SELECT {sid}, {data}, {expires} FROM {table}"
            f" WHERE {expires} >= %s AND {sid} > %s ORDER BY {sid} LIMIT %s",
            (self.now(), after or "", limit),
            True,
        )
        records = [
            StoredSession(row[0], row[1], row[2] * 1000) for row in rows if row[1] is not None
        ]
        return Page(records, rows[-1][0] if len(rows) == limit else None)

    def record(self, sid: object) -> Flow[StoredSession | None]:
        row = yield from self.raw_row(sid)
        if row is None or row[2] is None or row[1] < self.now():
            return None
        return StoredSession(row[0], row[2], row[1] * 1000)

    def raw_row(self, sid: object) -> Flow[tuple[str, int, str | None] | None]:
        """``(session_id, expires, data)`` as stored, expired or not."""
        sid = self.check_sid(sid)
        if not self.table_ready:
            yield from self.prepare()
        table, sid_column, expires, data = self.schema.quoted()
        rows: Rows = yield Statement(
            f"SELECT {sid_column}, {expires}, {data} FROM {table} WHERE {sid_column} = %s",
            (sid,),
            True,
        )
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else None

    def _record_expires(self, record: StoredSession) -> int:
        if record.expires_ms is not None:
            return expires_seconds(record.expires_ms)
        try:  # stored without expiry: what the Node store's set gives this session
            return self.expires_of(decode_session(record.sid, record.text))
        except ValueError:
            return expires_seconds(self.clock() + self.expiration)

    def put(self, records: Sequence[StoredSession]) -> Flow[WriteResult]:
        """One multi-row upsert of the texts as they are, with their expiry in seconds as
        the Node store rounds it; records expired already are left out."""
        now = self.clock()

        def row(record: StoredSession) -> tuple[str, int, str] | None:
            if record.expires_ms is not None and record.expires_ms <= now:
                return None
            return (self.check_sid(record.sid), self._record_expires(record), record.text)

        result, planned = plan_writes(records, row)
        if not planned:
            return result
        values = [value for _, row_values in planned for value in row_values]
        result.written = [sid for sid, _ in planned]
        if not self.table_ready:
            yield from self.prepare()
        head, _, tail = self._set.partition("VALUES (%s, %s, %s)")
        rows = ", ".join(["(%s, %s, %s)"] * (len(values) // 3))
        yield Statement(f"{head}VALUES {rows}{tail}", tuple(values), False)
        return result

    def delete(self, sid: object) -> Flow[bool]:
        """``destroy``, saying whether there was a row."""
        sid = self.check_sid(sid)
        if not self.table_ready:
            yield from self.prepare()
        deleted: int = yield Statement(self._destroy, (sid,), False)
        return deleted > 0

    def doctor(self) -> Flow[list[Finding]]:
        """The table and its columns against schema.sql; never creates anything."""
        database, _, name = self.schema.table_name.rpartition(".")
        where = "WHERE TABLE_SCHEMA = COALESCE(%s, DATABASE()) AND TABLE_NAME = %s"
        tables: Rows = yield Statement(
            f"SELECT ENGINE FROM information_schema.TABLES {where}", (database or None, name), True
        )
        if not tables:
            return [
                Finding(
                    "error",
                    "table",
                    f"table {self.schema.table_name} does not exist (express-mysql-session "
                    "creates it when createDatabaseTable is on)",
                    self.create_sql,
                )
            ]
        columns: Rows = yield Statement(
            "SELECT COLUMN_NAME, COLUMN_TYPE, COLLATION_NAME, IS_NULLABLE, COLUMN_KEY"
            f" FROM information_schema.COLUMNS {where}",
            (database or None, name),
            True,
        )
        findings = [self._engine_finding(tables[0][0])]
        findings += self.column_findings(columns)
        expired: Rows = yield Statement(
            self._clear_expired.replace("DELETE", "SELECT COUNT(*)", 1), (self.now(),), True
        )
        count = int(expired[0][0])
        findings.append(
            Finding("ok", "expired rows", "none waiting to be removed")
            if not count
            else Finding(
                "info",
                "expired rows",
                f"{count} expired rows not removed yet (the Node store's clearExpired does it "
                "every checkExpirationInterval)",
                "token-session purge-expired",
            )
        )
        return findings

    def _engine_finding(self, engine: str | None) -> Finding:
        if engine == "InnoDB":
            return Finding("ok", "table", f"{self.schema.table_name} exists (InnoDB)")
        return Finding(
            "warning",
            "table",
            f"{self.schema.table_name} uses {engine}, not InnoDB as schema.sql",
            f"ALTER TABLE {self.schema.quoted().table_name} ENGINE=InnoDB",
        )

    def column_findings(self, columns: Rows) -> list[Finding]:
        """information_schema.COLUMNS rows ``(name, type, collation, nullable, key)`` against
        the columns schema.sql creates."""
        found = {str(row[0]): row for row in columns}
        quoted = self.schema.quoted()
        findings = []
        for role, ((types, collation, nullable), definition) in _COLUMNS.items():
            name = getattr(self.schema, role)
            alter = f"ALTER TABLE {quoted.table_name} MODIFY `{name}` {definition}"
            row = found.get(name)
            if row is None:
                findings.append(
                    Finding("error", f"column {name}", "missing", alter.replace("MODIFY", "ADD"))
                )
                continue
            wrong = []
            if str(row[1]).lower() not in types:
                wrong.append(f"type {row[1]}, not {min(types)}")
            if collation is not None and row[2] != collation:
                wrong.append(f"collation {row[2]}, not {collation}")
            if row[3] != nullable:
                wrong.append("nullable" if row[3] == "YES" else "NOT NULL")
            if role == "session_id" and row[4] != "PRI":
                wrong.append("not the primary key")
                alter += f", ADD PRIMARY KEY (`{name}`)"
            if wrong:
                findings.append(Finding("error", f"column {name}", "; ".join(wrong), alter))
            else:
                findings.append(Finding("ok", f"column {name}", definition))
        return findings


# Driver errors. Client-side codes (CR_*, 2000-2999) and these server codes mean the
# connection is gone or the server cannot take it; 0 is PyMySQL / asyncmy's "not connected".
_CONNECTION_LOST = frozenset({0, 1040, 1053, 1077, 1078, 1079, 1080, 1152, 1927, 3169, 4031})
# values the column refuses under strict SQL mode (Node gets the same error)
_VALUE_REFUSED = frozenset({1264, 1366, 1406})


def _errno(exc: BaseException) -> int:
    code = exc.args[0] if exc.args else None
    return code if isinstance(code, int) else -1


def _connection_lost(exc: BaseException, interface_error: type[BaseException]) -> bool:
    if isinstance(exc, (OSError, asyncio.TimeoutError, interface_error)):
        return True
    code = _errno(exc)
    return code in _CONNECTION_LOST or 2000 <= code < 3000


def _leaves_connection_usable(exc: BaseException) -> bool:
    """Whether the server reported the error and the connection can go on; after anything
    else (a client-side error, a protocol mix-up) it is closed rather than reused."""
    code = _errno(exc)
    return code >= 1000 and not 2000 <= code < 3000 and code not in _CONNECTION_LOST


def _translate(exc: BaseException, interface_error: type[BaseException]) -> BaseException:
    """The error to raise for a driver error (the driver's own if nothing better fits)."""
    if _connection_lost(exc, interface_error):
        return BackendUnavailableError(f"MySQL server unavailable: {exc}")
    if _errno(exc) in _VALUE_REFUSED:
        return InvalidArgumentError(f"MySQL refused the value: {exc}")
    return exc


def _url_options(url: str) -> dict[str, Any]:
    """Store keywords from ``mysql://user:password@host:port/database?option=value``."""
    if not isinstance(url, str):
        raise InvalidArgumentError(f"store URL must be a str, not {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme != "mysql":
        raise InvalidArgumentError(f"not a mysql:// URL: {url!r}")
    try:
        port = parts.port
    except ValueError:
        raise InvalidArgumentError(f"bad port in {url!r}") from None
    options: dict[str, Any] = {
        "host": parts.hostname or "localhost",
        "port": port or 3306,
        "user": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password or ""),
        "database": unquote(parts.path.lstrip("/")) or None,
    }
    numbers = {"expiration", "check_expiration_interval", "connection_limit", "connect_timeout"}
    flags = {"clear_expired", "create_database_table", "disable_touch", "end_connection_on_close"}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in numbers:
            try:
                options[name] = float(value) if name == "connect_timeout" else int(value)
            except ValueError:
                raise InvalidArgumentError(f"{name} must be a number, not {value!r}") from None
        elif name in flags:
            if value.lower() not in ("true", "false", "1", "0"):
                raise InvalidArgumentError(f"{name} must be true or false, not {value!r}")
            options[name] = value.lower() in ("true", "1")
        elif name == "table_name":
            options["schema"] = {"table_name": value}
        else:
            raise InvalidArgumentError(f"unknown mysql store option {name!r} in URL")
    if "connect_timeout" in options:
        options["connect_args"] = {"connect_timeout": options.pop("connect_timeout")}
    return options


def _connect_args(
    host: str,
    port: int,
    user: str | None,
    password: str,
    database: str | None,
    extra: Mapping[str, Any] | None,
) -> dict[str, Any]:
    return {
        "host": host,
        "port": port,
        "user": user,
        "password": password,
        "database": database,
        "charset": "utf8mb4",
        # each statement commits at once, as on mysql2's connections (server default)
        "autocommit": True,
        **(extra or {}),
    }


def _limit(connection_limit: object) -> int:
    if isinstance(connection_limit, bool) or not isinstance(connection_limit, int):
        raise InvalidArgumentError("connection_limit must be an int")
    if connection_limit < 1:
        raise InvalidArgumentError("connection_limit must be at least 1")
    return connection_limit


C = TypeVar("C")


class _StoreBase(Generic[C]):
    """The options both stores take, checked once, and the core they share."""

    def __init__(
        self,
        connection: C | None = None,
        *,
        host: str = "localhost",
        port: int = 3306,
        user: str | None = None,
        password: str = "",
        database: str | None = None,
        connection_limit: int = DEFAULT_CONNECTION_LIMIT,
        connect_args: Mapping[str, Any] | None = None,
        expiration: float = DEFAULT_EXPIRATION,
        clear_expired: bool = True,
        check_expiration_interval: float = DEFAULT_CHECK_EXPIRATION_INTERVAL,
        create_database_table: bool = True,
        end_connection_on_close: bool | None = None,
        disable_touch: bool = False,
        schema: Mapping[str, Any] | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.core = MySQLStoreCore(
            expiration=expiration,
            clear_expired=clear_expired,
            check_expiration_interval=check_expiration_interval,
            create_database_table=create_database_table,
            disable_touch=disable_touch,
            schema=schema,
            clock=clock,
        )
        # as in Node: by default a store ends only the connections it made itself
        if end_connection_on_close is None:
            end_connection_on_close = connection is None
        self.end_connection_on_close = _flag("end_connection_on_close", end_connection_on_close)
        self._closed = False
        self._setup(
            connection,
            _limit(connection_limit),
            _connect_args(host, port, user, password, database, connect_args),
        )

    def _setup(self, connection: C | None, limit: int, connect_args: dict[str, Any]) -> None:
        raise NotImplementedError

    @property
    def schema(self) -> MySQLSchema:
        return self.core.schema


# --- blocking: PyMySQL ---------------------------------------------------------------


class _Source(Protocol):
    def acquire(self) -> tuple[Connection[Any], bool]: ...

    def release(self, connection: Connection[Any], *, broken: bool) -> None: ...

    def discard_idle(self) -> None: ...

    def close(self) -> None: ...


def _close_quietly(connection: Connection[Any]) -> None:
    # already closed, or its socket is dead: either way it is gone
    with contextlib.suppress(Exception):
        connection.close()


class MySQLPool:
    """A thread-safe pool of PyMySQL connections, as mysql2's ``createPool`` is to the Node
    store: connections are opened on demand, at most ``connection_limit`` at once, and a
    caller waits while all are busy. ``connect_args`` go to ``pymysql.connect``.
    """

    def __init__(
        self, *, connection_limit: int = DEFAULT_CONNECTION_LIMIT, **connect_args: Any
    ) -> None:
        self.connection_limit = _limit(connection_limit)
        self.connect_args = {"charset": "utf8mb4", "autocommit": True, **connect_args}
        self._changed = threading.Condition(threading.Lock())
        self._idle: list[Connection[Any]] = []
        self._open = 0
        self._waiting = 0
        self._closed = False

    def acquire(self) -> tuple[Connection[Any], bool]:
        """A connection, and whether it was used before (it may have been dropped since)."""
        with self._changed:
            while True:
                if self._closed:
                    raise BackendUnavailableError("the MySQL pool is closed")
                if self._idle:
                    return self._idle.pop(), True
                if self._open < self.connection_limit:
                    self._open += 1
                    break
                self._waiting += 1
                try:
                    self._changed.wait()
                finally:
                    self._waiting -= 1
        try:
            return pymysql.connect(**self.connect_args), False
        except BaseException:
            self._forget()
            raise

    def _forget(self) -> None:
        with self._changed:
            self._open -= 1
            if self._waiting:
                self._changed.notify()

    def release(self, connection: Connection[Any], *, broken: bool = False) -> None:
        if broken or self._closed:
            _close_quietly(connection)
            self._forget()
            return
        with self._changed:
            self._idle.append(connection)
            if self._waiting:
                self._changed.notify()

    def discard_idle(self) -> None:
        """Close the idle connections (after one was found dropped, the others likely were)."""
        with self._changed:
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            if self._waiting:
                self._changed.notify(len(idle))
        for connection in idle:
            _close_quietly(connection)

    def close(self) -> None:
        """Close the idle connections; busy ones are closed when released."""
        with self._changed:
            self._closed = True
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._changed.notify_all()
        for connection in idle:
            _close_quietly(connection)


class _SharedConnection:
    """One connection the user made, used by one operation at a time."""

    def __init__(self, connection: Connection[Any]) -> None:
        self.connection = connection
        self._lock = threading.Lock()

    def acquire(self) -> tuple[Connection[Any], bool]:
        self._lock.acquire()
        try:
            if not self.connection.open:
                self.connection.connect()  # the same object, connected again
                return self.connection, False
            return self.connection, True
        except BaseException:
            self._lock.release()
            raise

    def release(self, connection: Connection[Any], *, broken: bool = False) -> None:
        if broken:
            _close_quietly(connection)  # reopened by the next acquire
        self._lock.release()

    def discard_idle(self) -> None:
        pass

    def close(self) -> None:
        if self.connection.open:
            _close_quietly(self.connection)


def _execute(connection: Connection[Any], statement: Statement) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(statement.sql, statement.params)
        result = cursor.fetchall() if statement.fetch else cursor.rowcount
    if not connection.get_autocommit():
        connection.commit()
    return result


def _clean_periodically(
    store_ref: weakref.ref[MySQLStore], stop: threading.Event, interval: float
) -> None:
    while not stop.wait(interval):
        store = store_ref()
        if store is None:
            return
        try:
            deleted = store.clear_expired_sessions()
            logger.debug("cleared %d expired sessions", deleted)
        except Exception as exc:
            logger.warning("clearing expired sessions failed: %s", exc)
        del store


class MySQLStore(_StoreBase["Connection[Any] | MySQLPool"]):
    """A blocking store on PyMySQL, row for row what express-mysql-session writes.

    ``connection`` is a PyMySQL ``Connection`` (shared, one operation at a time) or a
    :class:`MySQLPool`; without one the store makes a pool from ``host``, ``port``, ``user``,
    ``password``, ``database``, ``connection_limit`` and ``connect_args`` (more
    ``pymysql.connect`` keywords). The other options are express-mysql-session's, in
    snake_case, with its defaults; times are in milliseconds. With ``clear_expired`` a daemon
    thread deletes expired rows every ``check_expiration_interval`` ms until :meth:`close`.
    """

    def _setup(
        self,
        connection: Connection[Any] | MySQLPool | None,
        limit: int,
        connect_args: dict[str, Any],
    ) -> None:
        self._source: _Source
        if connection is None:
            self._source = MySQLPool(connection_limit=limit, **connect_args)
        elif isinstance(connection, MySQLPool):
            self._source = connection
        elif isinstance(connection, Connection):
            self._source = _SharedConnection(connection)
        else:
            raise InvalidArgumentError(
                "connection must be a pymysql Connection or a MySQLPool, "
                f"not {type(connection).__name__}"
            )
        self._stop = threading.Event()
        self._cleaner: threading.Thread | None = None
        if self.core.clear_expired:
            self._cleaner = threading.Thread(
                target=_clean_periodically,
                args=(weakref.ref(self), self._stop, self.core.check_expiration_interval / 1000),
                name="token-session-mysql-cleaner",
                daemon=True,
            )
            weakref.finalize(self, self._stop.set)
            self._cleaner.start()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> MySQLStore:
        """``mysql://user:password@host:port/database``, with store options as query
        parameters (``?expiration=MS&table_name=NAME&connection_limit=N``...) or keywords."""
        return cls(**{**_url_options(url), **options})

    def _run(self, flow: Flow[T]) -> T:
        try:
            statement = next(flow)  # checks the arguments: nothing is sent if they are bad
        except StopIteration as done:
            result: T = done.value
            return result
        source = self._source
        connection: Connection[Any] | None = None
        broken = False
        try:
            connection, reused = source.acquire()
            while True:
                try:
                    value = _execute(connection, statement)
                except pymysql.MySQLError as exc:
                    if not (reused and _connection_lost(exc, pymysql.InterfaceError)):
                        raise
                    # an idle connection the server dropped (restart, KILL, wait_timeout),
                    # and likely the other idle ones with it: each statement here is
                    # idempotent, so it runs again on a new connection
                    logger.info("MySQL connection lost while idle (%s); reconnecting", exc)
                    source.release(connection, broken=True)
                    connection = None
                    source.discard_idle()
                    connection, reused = source.acquire()
                    value = _execute(connection, statement)
                except BaseException:
                    broken = True  # interrupted mid-statement: the connection is unusable
                    raise
                reused = False
                statement = flow.send(value)
        except StopIteration as done:
            result = done.value
            return result
        except pymysql.MySQLError as exc:
            broken = not _leaves_connection_usable(exc)
            raise _translate(exc, pymysql.InterfaceError) from exc
        finally:
            if connection is not None:
                source.release(connection, broken=broken)

    def get(self, sid: str) -> Session | None:
        return self._run(self.core.get(sid))

    def set(self, sid: str, session: Mapping[str, Any]) -> None:
        self._run(self.core.set(sid, session))

    def touch(self, sid: str, session: Mapping[str, Any]) -> None:
        """Rewrite ``expires`` only (nothing with ``disable_touch``)."""
        self._run(self.core.touch(sid, session))

    def destroy(self, sid: str) -> None:
        self._run(self.core.destroy(sid))

    def all(self) -> dict[str, Session]:
        return self._run(self.core.all())

    def ids(self) -> list[str]:
        return self._run(self.core.ids())

    def length(self) -> int:
        return self._run(self.core.length())

    def clear(self) -> None:
        self._run(self.core.clear())

    def clear_expired_sessions(self) -> int:
        """Delete expired rows now (what the clean-up thread runs); returns how many."""
        return self._run(self.core.clear_expired_sessions())

    def close(self) -> None:
        """Stop the clean-up thread; end the connection(s) if ``end_connection_on_close``."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._cleaner is not None and self._cleaner is not threading.current_thread():
            self._cleaner.join()
        if self.end_connection_on_close:
            self._source.close()

    def __enter__(self) -> MySQLStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --- asyncio: asyncmy ------------------------------------------------------------------


class _AsyncSource(Protocol):
    async def acquire(self) -> tuple[asyncmy.Connection, bool]: ...

    def release(self, connection: asyncmy.Connection, *, broken: bool) -> None: ...

    async def discard_idle(self) -> None: ...

    async def close(self) -> None: ...


async def _aclose_quietly(connection: asyncmy.Connection) -> None:
    try:
        await connection.ensure_closed()
    except Exception:
        connection.close()


class AsyncMySQLPool:
    """:class:`MySQLPool` for asyncio, of asyncmy connections (``connect_args`` go to
    ``asyncmy.connect``). It belongs to the event loop that first uses it."""

    def __init__(
        self, *, connection_limit: int = DEFAULT_CONNECTION_LIMIT, **connect_args: Any
    ) -> None:
        import asyncmy

        self._connect = asyncmy.connect
        self.connection_limit = _limit(connection_limit)
        self.connect_args = {"charset": "utf8mb4", "autocommit": True, **connect_args}
        self._slots = asyncio.Semaphore(self.connection_limit)
        self._idle: list[asyncmy.Connection] = []
        self._closed = False

    async def acquire(self) -> tuple[asyncmy.Connection, bool]:
        if self._closed:
            raise BackendUnavailableError("the MySQL pool is closed")
        await self._slots.acquire()
        try:
            if self._idle:
                return self._idle.pop(), True
            connection: asyncmy.Connection = await self._connect(**self.connect_args)
            return connection, False
        except BaseException:
            self._slots.release()
            raise

    def release(self, connection: asyncmy.Connection, *, broken: bool = False) -> None:
        if broken or self._closed:
            connection.close()
        else:
            self._idle.append(connection)
        self._slots.release()

    async def discard_idle(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            await _aclose_quietly(connection)


class _AsyncSharedConnection:
    def __init__(self, connection: asyncmy.Connection) -> None:
        self.connection = connection
        self._lock = asyncio.Lock()

    async def acquire(self) -> tuple[asyncmy.Connection, bool]:
        await self._lock.acquire()
        try:
            if not self.connection.connected:
                await self.connection.connect()  # the same object, connected again
                return self.connection, False
            return self.connection, True
        except BaseException:
            self._lock.release()
            raise

    def release(self, connection: asyncmy.Connection, *, broken: bool = False) -> None:
        if broken:
            connection.close()
        self._lock.release()

    async def discard_idle(self) -> None:
        pass

    async def close(self) -> None:
        if self.connection.connected:
            await _aclose_quietly(self.connection)


class _AsyncmyPool:
    """A pool the user made with ``asyncmy.create_pool``."""

    def __init__(self, pool: asyncmy.Pool) -> None:
        self.pool = pool

    async def acquire(self) -> tuple[asyncmy.Connection, bool]:
        connection: asyncmy.Connection = await self.pool.acquire()
        return connection, True

    def release(self, connection: asyncmy.Connection, *, broken: bool = False) -> None:
        if broken:
            connection.close()  # the pool drops a closed connection
        self.pool.release(connection)

    async def discard_idle(self) -> None:
        await self.pool.clear()

    async def close(self) -> None:
        self.pool.close()
        await self.pool.wait_closed()


async def _aexecute(connection: asyncmy.Connection, statement: Statement) -> Any:
    async with connection.cursor() as cursor:
        await cursor.execute(statement.sql, statement.params)
        result = await cursor.fetchall() if statement.fetch else cursor.rowcount
    if not connection.get_autocommit():
        await connection.commit()
    return result


async def _aclean_periodically(store_ref: weakref.ref[AsyncMySQLStore], interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        store = store_ref()
        if store is None:
            return
        try:
            deleted = await store.clear_expired_sessions()
            logger.debug("cleared %d expired sessions", deleted)
        except Exception as exc:
            logger.warning("clearing expired sessions failed: %s", exc)
        del store


class AsyncMySQLStore(_StoreBase["asyncmy.Connection | asyncmy.Pool | AsyncMySQLPool"]):
    """:class:`MySQLStore` for asyncio, on asyncmy, with the same options.

    ``connection`` is an asyncmy ``Connection`` (one operation at a time), an asyncmy
    ``Pool`` or an :class:`AsyncMySQLPool`; without one the store makes its own pool. The
    clean-up task starts with the first operation (or ``async with``) and ends on
    :meth:`close`. A store belongs to one event loop.
    """

    def _setup(
        self,
        connection: asyncmy.Connection | asyncmy.Pool | AsyncMySQLPool | None,
        limit: int,
        connect_args: dict[str, Any],
    ) -> None:
        import asyncmy

        self._driver_error: type[BaseException] = asyncmy.MySQLError
        self._interface_error: type[BaseException] = asyncmy.InterfaceError
        self._source: _AsyncSource
        if connection is None:
            self._source = AsyncMySQLPool(connection_limit=limit, **connect_args)
        elif isinstance(connection, AsyncMySQLPool):
            self._source = connection
        elif isinstance(connection, asyncmy.Pool):
            self._source = _AsyncmyPool(connection)
        elif isinstance(connection, asyncmy.Connection):
            self._source = _AsyncSharedConnection(connection)
        else:
            raise InvalidArgumentError(
                "connection must be an asyncmy Connection or Pool, or an AsyncMySQLPool, "
                f"not {type(connection).__name__}"
            )
        self._cleaner: asyncio.Task[None] | None = None

    @classmethod
    def from_url(cls, url: str, **options: Any) -> AsyncMySQLStore:
        """As :meth:`MySQLStore.from_url`."""
        return cls(**{**_url_options(url), **options})

    def _start_cleaner(self) -> None:
        if self._cleaner is None and self.core.clear_expired and not self._closed:
            self._cleaner = asyncio.get_running_loop().create_task(
                _aclean_periodically(weakref.ref(self), self.core.check_expiration_interval / 1000),
                name="token-session-mysql-cleaner",
            )

    async def _run(self, flow: Flow[T]) -> T:
        if self._cleaner is None:
            self._start_cleaner()
        try:
            statement = next(flow)  # checks the arguments: nothing is sent if they are bad
        except StopIteration as done:
            result: T = done.value
            return result
        source = self._source
        driver_error, interface_error = self._driver_error, self._interface_error
        connection: asyncmy.Connection | None = None
        broken = False
        try:
            connection, reused = await source.acquire()
            while True:
                try:
                    value = await _aexecute(connection, statement)
                except driver_error as exc:
                    if not (reused and _connection_lost(exc, interface_error)):
                        raise
                    logger.info("MySQL connection lost while idle (%s); reconnecting", exc)
                    source.release(connection, broken=True)
                    connection = None
                    await source.discard_idle()
                    connection, reused = await source.acquire()
                    value = await _aexecute(connection, statement)
                except BaseException:
                    broken = True  # cancelled or failed mid-statement: the connection is unusable
                    raise
                reused = False
                statement = flow.send(value)
        except StopIteration as done:
            result = done.value
            return result
        except (driver_error, OSError, asyncio.TimeoutError) as exc:
            broken = broken or not _leaves_connection_usable(exc)
            raise _translate(exc, interface_error) from exc
        finally:
            if connection is not None:
                source.release(connection, broken=broken)

    async def get(self, sid: str) -> Session | None:
        return await self._run(self.core.get(sid))

    async def set(self, sid: str, session: Mapping[str, Any]) -> None:
        await self._run(self.core.set(sid, session))

    async def touch(self, sid: str, session: Mapping[str, Any]) -> None:
        """Rewrite ``expires`` only (nothing with ``disable_touch``)."""
        await self._run(self.core.touch(sid, session))

    async def destroy(self, sid: str) -> None:
        await self._run(self.core.destroy(sid))

    async def all(self) -> dict[str, Session]:
        return await self._run(self.core.all())

    async def ids(self) -> list[str]:
        return await self._run(self.core.ids())

    async def length(self) -> int:
        return await self._run(self.core.length())

    async def clear(self) -> None:
        await self._run(self.core.clear())

    async def clear_expired_sessions(self) -> int:
        """Delete expired rows now (what the clean-up task runs); returns how many."""
        return await self._run(self.core.clear_expired_sessions())

    async def close(self) -> None:
        """Cancel the clean-up task; end the connection(s) if ``end_connection_on_close``."""
        if self._closed:
            return
        self._closed = True
        cleaner, self._cleaner = self._cleaner, None
        if cleaner is not None and cleaner is not asyncio.current_task():
            cleaner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await cleaner
        if self.end_connection_on_close:
            await self._source.close()

    async def __aenter__(self) -> AsyncMySQLStore:
        self._start_cleaner()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class MySQLRecords:
    """Record access to a :class:`MySQLStore` (see :mod:`.records`), in id order."""

    def __init__(self, store: MySQLStore) -> None:
        self.store = store
        self.core = store.core

    def page(self, cursor: str | None, limit: int) -> Page:
        return self.store._run(self.core.page(cursor, limit))

    def read(self, sid: str) -> StoredSession | None:
        return self.store._run(self.core.record(sid))

    def raw(self, sid: str) -> RawRecord | None:
        row = self.store._run(self.core.raw_row(sid))
        if row is None:
            return None
        fields = dict(zip(self.core.schema[1:], row, strict=True))
        return RawRecord(json.dumps(fields, ensure_ascii=False), {"row": fields})

    def write(self, records: Sequence[StoredSession]) -> WriteResult:
        return self.store._run(self.core.put(records))

    def delete(self, sid: str) -> bool:
        return self.store._run(self.core.delete(sid))

    def purge_expired(self) -> int:
        return self.store.clear_expired_sessions()

    def doctor(self) -> list[Finding]:
        return self.store._run(self.core.doctor())
