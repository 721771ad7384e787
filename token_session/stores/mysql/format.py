"""The rows express-mysql-session 3.0.3 (and 2.1.8) reads and writes, and the SQL of each
operation, with no I/O: :class:`MySQLStoreCore`.

``expires`` is ``Math.round(ms / 1000)`` of ``cookie.expires`` (else ``cookie._expires``), else
of now + ``expiration`` ms. ``get`` reads a row whose ``expires`` is before now (rounded the
same way) as missing but leaves it; ``touch`` rewrites ``expires`` only; ``length`` and ``all``
count rows with ``expires >= now``; the periodic clean-up deletes rows with ``expires < now``.
Both Node versions run the same SQL and compute the same values; 2.1.8 has no
``disableTouch``.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from ...compat.cookie import expires_ms, now_ms
from ...compat.jsjson import js_truthy
from ...errors import InvalidArgumentError
from ..base import Session, check_sid, decode_session, encode_session, refreshed
from ..records import StoredSession
from .records import RecordFlows
from .schema import SID_COLUMN_LENGTH, Flow, MySQLSchema, Rows, Statement

__all__ = [
    "DEFAULT_CHECK_EXPIRATION_INTERVAL",
    "DEFAULT_CONNECTION_LIMIT",
    "DEFAULT_EXPIRATION",
    "MySQLStoreCore",
    "expires_seconds",
    "js_round",
]

logger = logging.getLogger(__package__)

# express-mysql-session's defaults (milliseconds), and mysql2's pool size.
DEFAULT_EXPIRATION = 86_400_000
DEFAULT_CHECK_EXPIRATION_INTERVAL = 900_000
DEFAULT_CONNECTION_LIMIT = 10

_MAX_TIME_MS = 8.64e15  # the largest |time value| of a JS Date
# get_and_touch's one step sends two statements in one text: only for ids no escaping
# changes (express-session's are base64url), so that nothing sent there is quoted data
_PLAIN_ID = re.compile(r"[A-Za-z0-9_\-.~+/=:]+")
# lifetimes get_and_touch's one step expects again: an expires the column holds (2106 at most)
_LIKELY_LIFETIME_MS = 50 * 365 * 86_400_000
_COLUMN_MAX = 2**32 - 1  # int(11) unsigned


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


def _number(name: str, value: object, *, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgumentError(f"{name} must be a number of milliseconds")
    if not math.isfinite(value) or value < minimum:
        raise InvalidArgumentError(f"{name} must be a finite number >= {minimum}")
    return value


def check_flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgumentError(f"{name} must be True or False")
    return value


def check_connection_limit(connection_limit: object) -> int:
    if isinstance(connection_limit, bool) or not isinstance(connection_limit, int):
        raise InvalidArgumentError("connection_limit must be an int")
    if connection_limit < 1:
        raise InvalidArgumentError("connection_limit must be at least 1")
    return connection_limit


class MySQLStoreCore(RecordFlows):
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
        self.clear_expired = check_flag("clear_expired", clear_expired)
        self.check_expiration_interval = _number(
            "check_expiration_interval", check_expiration_interval, minimum=1
        )
        self.create_database_table = check_flag("create_database_table", create_database_table)
        self.disable_touch = check_flag("disable_touch", disable_touch)
        if not callable(clock):
            raise InvalidArgumentError("clock must be a function returning epoch milliseconds")
        self.clock = clock
        self.schema = MySQLSchema.parse(schema)
        self.table_ready = not create_database_table

        table, sid, expires, data = self.schema.quoted()
        self.create_sql = self.schema.create_sql()
        self._exists = self.schema.table_lookup("1")
        # the collation ignores trailing spaces ('a ' = 'a'), CAST AS BINARY does not; the
        # first comparison keeps the primary key lookup
        exact = f"{sid} = %s AND {sid} = CAST(%s AS BINARY)"
        self.exact_sid = exact
        # a read compares the id it gets back instead: the key has at most one row the
        # collation matches, and the statement is lighter for the server
        self._get = f"SELECT {data}, {expires}, {sid} FROM {table} WHERE {sid} = %s"
        # the upsert and update of 3.0.3 and 2.1.8, VALUES() and all
        self._set = (
            f"INSERT INTO {table} ({sid}, {expires}, {data}) VALUES (%s, %s, %s)"
            f" ON DUPLICATE KEY UPDATE {expires} = VALUES({expires}), {data} = VALUES({data})"
        )
        self._touch = f"UPDATE {table} SET {expires} = %s WHERE {exact}"
        # get, and touch to an expires the session likely gets, where get finds a session
        self._get_and_touch = (
            f"{self._get}; {self._touch} AND {expires} >= %s AND {data} IS NOT NULL"
        )
        self._untouch = f"{self._touch} AND {expires} = %s"
        self._lifetime = self.expiration if 0 <= self.expiration <= _LIKELY_LIFETIME_MS else 0
        self._destroy = f"DELETE FROM {table} WHERE {exact}"
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
        return expires_seconds(self.expiry_ms(session))

    def expiry_ms(self, session: Mapping[str, Any], now: int | None = None) -> float:
        """:meth:`expires_of` before it is rounded to seconds; ``now``: the clock's."""
        at: float | None = None
        cookie = session.get("cookie")
        if type(cookie) is dict or isinstance(cookie, Mapping):  # dict: no ABC check
            # `data.cookie.expires`, else `data.cookie._expires`, whichever is truthy first
            for key in ("expires", "_expires"):
                value = cookie.get(key)
                if js_truthy(value):
                    at = expires_ms({"cookie": {"expires": value}})
                    break
        if at is None:
            at = (self.clock() if now is None else now) + self.expiration
        return at

    def record_expires(self, record: StoredSession) -> int:
        """The ``expires`` column for a record written as it is (the token-session command)."""
        if record.expires_ms is not None:
            return expires_seconds(record.expires_ms)
        try:  # stored without expiry: what the Node store's set gives this session
            return self.expires_of(decode_session(record.sid, record.text))
        except ValueError:
            return expires_seconds(self.clock() + self.expiration)

    @staticmethod
    def check_sid(sid: object) -> str:
        """A session id the ``varchar(128) utf8mb4`` column can hold, else InvalidArgumentError."""
        sid = check_sid(sid)
        if len(sid) > SID_COLUMN_LENGTH:
            raise InvalidArgumentError(
                f"session id is longer than the {SID_COLUMN_LENGTH} characters the column holds"
            )
        return sid

    @classmethod
    def check_new_sid(cls, sid: object) -> str:
        """:meth:`check_sid` for a write that may add a row: the primary key's collation
        takes ``"a "`` for ``"a"``, so an upsert of ``"a "`` would overwrite ``"a"``'s row."""
        sid = cls.check_sid(sid)
        if sid.endswith(" "):
            raise InvalidArgumentError(
                "session id ends with a space, which the table's collation ignores (it would "
                "name another session's row): express-session's ids never do"
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
        data, expires, found = rows[0]
        if found != sid:
            return None  # the row of an id the collation takes for this one ('a ' for 'a')
        if expires < self.now():
            return None  # expired: reads as missing, the row stays (3.0.3, 2.1.8)
        if data is None:
            return None  # Node hands express-session the NULL: no session
        return decode_session(sid, data)

    def set(self, sid: object, session: Mapping[str, Any]) -> Flow[None]:
        sid = self.check_new_sid(sid)
        text = encode_session(session)
        expires = self.expires_of(session)
        if not self.table_ready:
            yield from self.prepare()
        yield Statement(self._set, (sid, expires, text), False)

    def touch(self, sid: object, session: Mapping[str, Any]) -> Flow[None]:
        sid = self.check_sid(sid)
        if type(session) is not dict and not isinstance(session, Mapping):
            raise InvalidArgumentError(f"session must be a dict, not {type(session).__name__}")
        if self.disable_touch:
            return
        expires = self.expires_of(session)
        if not self.table_ready:
            yield from self.prepare()
        yield Statement(self._touch, (expires, sid, sid), False)

    def get_and_touch(self, sid: object, one_step: bool = True) -> Flow[Session | None]:
        """What get returns, a session found getting the expires touch(sid, refreshed(session,
        now)) writes.

        With ``one_step`` (the source's ``one_text``: its connections take several statements
        in one text and prepare none), the read and a touch to the expires of the lifetime
        seen last go in one round trip; a session that lives otherwise gets its own touch
        after, one that fails to decode its expires back. Else get, then touch, on one
        connection.
        """
        sid = self.check_sid(sid)
        if self.disable_touch:
            return (yield from self.get(sid))
        if not self.table_ready:
            yield from self.prepare()
        now_ms = self.clock()
        if not (one_step and _PLAIN_ID.fullmatch(sid)):
            found = yield from self.get(sid)
            if found is not None:
                yield from self.touch(sid, refreshed(found, now_ms))
            return found
        now = js_round(now_ms / 1000)
        likely = expires_seconds(now_ms + self._lifetime)
        rows: Rows = yield Statement(self._get_and_touch, (sid, likely, sid, sid, now), True, True)
        if not rows:
            return None
        data, expires, found_sid = rows[0]
        if found_sid != sid or expires < now or data is None:
            return None  # what get reads as missing; the touch's conditions left it alone
        try:
            session = decode_session(sid, data)
            at = self.expiry_ms(refreshed(session, now_ms), now_ms)
            exact = expires_seconds(at)
        except Exception:  # get or touch raises: the expires goes back to what it was
            yield Statement(self._untouch, (expires, sid, sid, likely), False)
            raise
        if 0 <= at - now_ms <= _LIKELY_LIFETIME_MS:
            self._lifetime = at - now_ms
        if not 0 <= exact <= _COLUMN_MAX:
            # the touch the column refuses (or, outside strict mode, clamps): the row as it
            # was first, then the server does to it what it does to get then touch's
            yield Statement(self._untouch, (expires, sid, sid, likely), False)
        if exact != likely:
            yield Statement(self._touch, (exact, sid, sid), False)
        return session

    def destroy(self, sid: object) -> Flow[None]:
        sid = self.check_sid(sid)
        if not self.table_ready:
            yield from self.prepare()
        yield Statement(self._destroy, (sid, sid), False)

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
