"""What the two Node stores keep in PostgreSQL, with no I/O: tables, SQL, expiry values
(connect-pg-simple's here; connect-session-knex's in :mod:`.knex`).

Every statement is written with ``?`` placeholders, numbered ``$1``, ``$2``... in order
(:func:`numbered`); values travel as text and the SQL casts them where the type matters,
so any driver sends them alike.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from ...compat.cookie import expires_ms
from ...errors import InvalidArgumentError
from ..base import check_sid, decode_session
from .onestep import LAST_MS, get_and_touch_sql

__all__ = [
    "FORMATS",
    "KNEX",
    "MAX_TIME_MS",
    "ONE_DAY_S",
    "PG_SIMPLE",
    "ConnectPgSimple",
    "Statement",
    "StoreFormat",
    "numbered",
    "quote",
    "valid_ms",
]

PG_SIMPLE = "connect-pg-simple"
KNEX = "connect-session-knex"
FORMATS = (PG_SIMPLE, KNEX)
ONE_DAY_S = 86_400
MAX_TIME_MS = 8.64e15  # the largest |time value| of a JS Date
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")
_PLACEHOLDER = re.compile(r"\?")


class Statement(NamedTuple):
    """One SQL statement: ``$n`` placeholders, text values (None: NULL) in ``params``.

    ``fetch``: the flow is sent the rows (tuples of text); otherwise the affected row count.
    ``prepare``: run as a prepared statement, made once per connection (the hot ones).
    """

    sql: str
    params: tuple[str | None, ...]
    fetch: bool
    prepare: bool = False


def numbered(sql: str) -> str:
    """``?`` placeholders as ``$1``, ``$2``... in the order they appear."""
    counter = iter(range(1, 100_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


def check_identifier(kind: str, name: object) -> str:
    """A plain identifier (letters, digits, ``_``, ``$``; 1-63 characters), else
    InvalidArgumentError: names are quoted, never escaped, so anything else is refused."""
    if not isinstance(name, str) or _IDENTIFIER.fullmatch(name) is None:
        raise InvalidArgumentError(
            f"{kind} {name!r} is not a plain identifier: use 1-63 letters, digits, '_' or "
            "'$', not starting with a digit"
        )
    return name


def quote(name: str) -> str:
    return f'"{name}"'


def valid_ms(ms: float | None, what: str) -> int:
    """``new Date(ms)``'s time value; InvalidArgumentError where it is an Invalid Date
    (Node sends NaN or throws a RangeError there)."""
    if ms is None or not math.isfinite(ms) or abs(ms) > MAX_TIME_MS:
        raise InvalidArgumentError(f"{what} is not a date")
    return math.trunc(ms)


class StoreFormat:
    """The table and statements one Node store uses; subclasses give its expiry rules.

    ``zone`` is the TimeZone a ``timestamp`` column's wall-clock time is in (only
    connect-pg-simple's table has one); the store sets it before the first statement.
    """

    name = ""
    default_table = ""
    expire_column = ""
    # SQL fragments, with ? for the values *_params give
    live = ""  # the row has not expired at "now"
    dead = ""
    value = ""  # an expiry to write
    epoch_ms = ""  # the stored expiry as epoch milliseconds, text
    sid_limit = 0
    # get+touch in one statement (sql_get_and_touch): which found rows it touches, to what
    # (found.ms: now + a whole originalMaxAge), and which need no touch at all
    touch_when = ""
    touch_value = ""
    touch_skip = "false"
    column_type = ""  # the expiry column's type, for restore

    def __init__(self, table_name: str | None, schema_name: str | None, sid_column: str) -> None:
        self.table_name = check_identifier(
            "table_name", self.default_table if table_name is None else table_name
        )
        self.schema_name = (
            None if schema_name is None else check_identifier("schema_name", schema_name)
        )
        self.sid_column = check_identifier("sid_field_name", sid_column)
        self.zone = "UTC"
        self.table = (
            f"{quote(self.schema_name)}.{quote(self.table_name)}"
            if self.schema_name
            else quote(self.table_name)
        )
        self.display = f"{self.schema_name}.{self.table_name}" if schema_name else self.table_name
        t, sid, exp = self.table, quote(self.sid_column), quote(self.expire_column)
        live, dead = self.live.format(e=exp), self.dead.format(e=exp)
        ms = self.epoch_ms.format(e=exp)
        self.sql_exists = numbered("SELECT to_regclass(?)::text")
        self.sql_get = numbered(f"SELECT sess::text FROM {t} WHERE {sid} = ? AND {live}")
        self.sql_set = numbered(
            f"INSERT INTO {t} ({sid}, sess, {exp}) VALUES (?, ?::json, {self.value})"
            f" ON CONFLICT ({sid}) DO UPDATE SET sess = excluded.sess, {exp} = excluded.{exp}"
        )
        self.sql_destroy = numbered(f"DELETE FROM {t} WHERE {sid} = ?")
        self.sql_length = numbered(f"SELECT count(*)::text FROM {t} WHERE {live}")
        self.sql_all = numbered(f"SELECT {sid}, sess::text FROM {t} WHERE {live}")
        self.sql_ids = numbered(f"SELECT {sid} FROM {t} WHERE {live}")
        self.sql_clear = f"DELETE FROM {t}"
        self.sql_prune = numbered(f"DELETE FROM {t} WHERE {dead}")
        self.sql_count_dead = numbered(f"SELECT count(*)::text FROM {t} WHERE {dead}")
        self.sql_page = numbered(
            f"SELECT {sid}, sess::text, {ms} FROM {t} WHERE {live} AND {sid} > ?"
            f" ORDER BY {sid} LIMIT ?::int"
        )
        self.sql_raw = numbered(
            f"SELECT {sid}, sess::text, {exp}::text, {ms} FROM {t} WHERE {sid} = ?"
        )
        self.sql_get_and_touch = numbered(
            get_and_touch_sql(t, sid, exp, live, self.touch_value, self.touch_when, self.touch_skip)
        )
        self.sql_restore = numbered(f"UPDATE {t} SET {exp} = ?::{self.column_type} WHERE {sid} = ?")
        self._put_head = f"INSERT INTO {t} ({sid}, sess, {exp}) VALUES "
        self._put_tail = (
            f" ON CONFLICT ({sid}) DO UPDATE SET sess = excluded.sess, {exp} = excluded.{exp}"
        )

    # values

    def check_sid(self, sid: object) -> str:
        """A session id the column holds, else InvalidArgumentError (before any I/O)."""
        sid = check_sid(sid)
        if "\x00" in sid:
            raise InvalidArgumentError("session id holds a NUL character")
        if self.sid_limit and len(sid) > self.sid_limit:
            raise InvalidArgumentError(
                f"session id is longer than the {self.sid_limit} characters the column holds"
            )
        return sid

    @staticmethod
    def decode(sid: str, text: str | None) -> dict[str, Any] | None:
        """A stored ``sess`` as a session: JSON null reads as no session, as both Node
        stores return it; anything else not an object is a SessionDecodeError, the row left
        alone (connect-pg-simple 10.0.0 deletes it; both parse a JSON string a second time)."""
        if text is None or text == "null":
            return None
        return decode_session(sid, text)

    def now_params(self, now: int) -> tuple[str, ...]:
        raise NotImplementedError

    def epoch_params(self) -> tuple[str, ...]:
        """The values of :attr:`epoch_ms`'s placeholders."""
        return ()

    def expiry_params(self, at_ms: int) -> tuple[str, ...]:
        raise NotImplementedError

    def set_expiry(self, session: Mapping[str, Any], now: int) -> int:
        """The expiry ``set`` writes for ``session``, epoch milliseconds as stored."""
        raise NotImplementedError

    def touch_expiry(self, session: Mapping[str, Any], now: int) -> int | None:
        """The expiry ``touch`` writes, or None where the Node store sends nothing."""
        raise NotImplementedError

    def record_expiry(self, at_ms: float) -> int:
        """An absolute expiry (``migrate``) as this column keeps it."""
        raise NotImplementedError

    # statements

    def get(self, sid: str, now: int) -> Statement:
        return Statement(self.sql_get, (sid, *self.now_params(now)), True, True)

    def get_and_touch(self, sid: str, now: int) -> Statement:
        """get, and the expiry touch sets for the session restarted at ``now`` (express-
        session's ``resetMaxAge``) where that is plain SQL; rows of (sess, touched, no
        touch needed, the expiry before as text)."""
        params = (sid, *self.now_params(now), str(now), *self.restart_params(now))
        return Statement(self.sql_get_and_touch, params, True, True)

    def restart_params(self, now: int) -> tuple[str, ...]:
        return ()

    def restore(self, sid: str, old: str) -> Statement:
        """The expiry ``old`` (as get_and_touch read it) back."""
        return Statement(self.sql_restore, (old, sid), False)

    def set(self, sid: str, text: str, at_ms: int) -> Statement:
        return Statement(self.sql_set, (sid, text, *self.expiry_params(at_ms)), False, True)

    def touch(self, sid: str, at_ms: int, now: int) -> Statement:
        raise NotImplementedError

    def put(self, rows: list[tuple[str, str, int]]) -> Statement:
        """One multi-row upsert of ``(sid, text, expiry ms)``."""
        one = f"(?, ?::json, {self.value})"
        params: list[str] = []
        for sid, text, at_ms in rows:
            params += (sid, text, *self.expiry_params(at_ms))
        sql = numbered(self._put_head + ", ".join([one] * len(rows)) + self._put_tail)
        return Statement(sql, tuple(params), False)

    def create(self) -> list[str]:
        """The DDL that makes the table, each statement safe to run again."""
        raise NotImplementedError

    def columns(self) -> dict[str, tuple[frozenset[str], str]]:
        """Each column as the Node store creates it: (the types ``format_type`` may show,
        the definition that restores it)."""
        raise NotImplementedError

    def is_live(self, at_ms: int, now: int) -> bool:
        """Whether ``get`` sees a row that expires at ``at_ms``."""
        raise NotImplementedError


class ConnectPgSimple(StoreFormat):
    """connect-pg-simple 10.0.0: ``expire timestamp(6)`` in the server's TimeZone, whole
    seconds (``Math.ceil``), ``get`` live while ``expire >= to_timestamp(ceil(now))``."""

    name = PG_SIMPLE
    default_table = "session"
    expire_column = "expire"
    live = "{e} >= (to_timestamp(?::float8) AT TIME ZONE ?)"
    dead = "{e} < (to_timestamp(?::float8) AT TIME ZONE ?)"
    value = "(to_timestamp(?::float8) AT TIME ZONE ?)"
    epoch_ms = "round(extract(epoch from {e} AT TIME ZONE ?) * 1000)::bigint::text"
    # #getExpireTime of the restarted cookie.expires, or of none: the default lifetime
    touch_when = f"found.ms BETWEEN 0 AND {LAST_MS} OR (NOT found.timed AND found.plain)"
    touch_value = (
        "(to_timestamp(CASE WHEN found.timed THEN ceil(found.ms / 1000.0)"
        " ELSE ?::numeric END::float8) AT TIME ZONE ?)"
    )
    column_type = "timestamp"

    def __init__(
        self, table_name: str | None, schema_name: str | None, ttl: float | None = None
    ) -> None:
        super().__init__(table_name, schema_name, "sid")
        self.ttl = ttl
        t, sid = self.table, quote(self.sid_column)
        self.sql_touch = numbered(f"UPDATE {t} SET expire = {self.value} WHERE {sid} = ?")

    def now_params(self, now: int) -> tuple[str, ...]:
        return (str(math.ceil(now / 1000)), self.zone)  # currentTimestamp()

    def epoch_params(self) -> tuple[str, ...]:
        return (self.zone,)

    def restart_params(self, now: int) -> tuple[str, ...]:
        return (str(self.set_expiry({}, now) // 1000), self.zone)

    def expiry_params(self, at_ms: int) -> tuple[str, ...]:
        return (str(at_ms // 1000), self.zone)

    def set_expiry(self, session: Mapping[str, Any], now: int) -> int:
        # #getExpireTime: cookie.expires when truthy, else now + (ttl || 86400), rounded up
        at = expires_ms(session)
        if at is not None:
            return math.ceil(valid_ms(at, "cookie.expires") / 1000) * 1000
        return math.ceil(now / 1000 + (self.ttl or ONE_DAY_S)) * 1000

    def touch_expiry(self, session: Mapping[str, Any], now: int) -> int | None:
        return self.set_expiry(session, now)

    def record_expiry(self, at_ms: float) -> int:
        return math.ceil(valid_ms(at_ms, "expiry") / 1000) * 1000

    def touch(self, sid: str, at_ms: int, now: int) -> Statement:
        return Statement(self.sql_touch, (*self.expiry_params(at_ms), sid), False, True)

    def create(self) -> list[str]:
        # table.sql, with the constraint and index named after the table: 10.0.0 keeps
        # "session_pkey" and "IDX_session_expire", so a second table in a schema fails
        t, name = self.table, self.table_name
        return [
            f'CREATE TABLE IF NOT EXISTS {t} ("sid" varchar NOT NULL COLLATE "default",'
            f' "sess" json NOT NULL, "expire" timestamp(6) NOT NULL,'
            f' CONSTRAINT {quote(name + "_pkey")} PRIMARY KEY ("sid")'
            " NOT DEFERRABLE INITIALLY IMMEDIATE)",
            f'CREATE INDEX IF NOT EXISTS {quote("IDX_" + name + "_expire")} ON {t} ("expire")',
        ]

    def columns(self) -> dict[str, tuple[frozenset[str], str]]:
        return {
            "sid": (frozenset({"character varying"}), "varchar NOT NULL"),
            "sess": (frozenset({"json"}), "json NOT NULL"),
            "expire": (
                frozenset({"timestamp(6) without time zone", "timestamp without time zone"}),
                "timestamp(6) NOT NULL",
            ),
        }

    def is_live(self, at_ms: int, now: int) -> bool:
        return at_ms >= math.ceil(now / 1000) * 1000
