"""The store operations as flows: generators that yield :class:`.Statement` objects, are
sent each one's result, and return the operation's result. No I/O: the blocking and the
asyncio store run the same flows."""

from __future__ import annotations

import logging
import os
from collections.abc import Generator, Mapping, Sequence
from typing import Any, TypeVar

from ...errors import InvalidArgumentError
from ..base import Session, encode_session, refreshed
from .format import ConnectPgSimple, Statement, numbered
from .options import StoreOptions

__all__ = ["Flow", "PostgresCore", "Rows"]

log = logging.getLogger(__package__)
T = TypeVar("T")
Flow = Generator[Statement, Any, T]
Rows = Sequence[Sequence[Any]]

# The session's TimeZone, where it came from, and whether the table is there.
_STARTING = numbered(
    "SELECT current_setting('TimeZone'),"
    " (SELECT source FROM pg_settings WHERE name = 'TimeZone'), to_regclass(?)::text"
)
# The TimeZone a connection gets when its client sets none (node-postgres sets none): a
# setting for this database and role, for the role, or for the database, in the order the
# server applies them...
_DEFAULT_ZONE = numbered(
    "SELECT substr(c, 10) FROM pg_db_role_setting s, unnest(s.setconfig) c"
    " WHERE lower(c) LIKE 'timezone=%'"
    " AND s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))"
    " AND s.setrole IN (0, (SELECT oid FROM pg_roles WHERE rolname = session_user))"
    " ORDER BY s.setrole <> 0 AND s.setdatabase <> 0 DESC, s.setrole <> 0 DESC LIMIT 1"
)
# ... else the configuration file's (readable by superusers and pg_read_all_settings)
_FILE_ZONE = (
    "SELECT setting FROM pg_file_settings WHERE lower(name) = 'timezone' AND applied"
    " UNION ALL SELECT boot_val FROM pg_settings WHERE name = 'TimeZone' LIMIT 1"
)


class PostgresCore:
    """The Node store's behaviour, as flows. Arguments are checked when a flow is first
    advanced, before any statement is yielded."""

    def __init__(self, options: StoreOptions) -> None:
        self.options = options
        self.format = options.format
        self.clock = options.clock
        self.ready = False
        # what the session TimeZone was on the first connection, and where it came from
        self.connection_zone: tuple[str, str] | None = None
        if options.time_zone is not None:
            self.format.zone = options.time_zone

    # starting

    def prepare(self) -> Flow[None]:
        """Learn the TimeZone connect-pg-simple's wall-clock times are in, and create the
        table if it is missing and the options ask for it."""
        fmt = self.format
        rows: Rows = yield Statement(_STARTING, (fmt.table,), True)
        zone, source, exists = rows[0]
        self.connection_zone = (zone, source)
        if isinstance(fmt, ConnectPgSimple) and self.options.time_zone is None:
            if source == "client":  # PGTZ, PGOPTIONS or `options`: not what Node gets
                zone = yield from self.server_zone(zone)
            fmt.zone = zone
        if exists is None and self.options.create_table:
            log.debug("creating table %s", fmt.display)
            try:
                for sql in fmt.create():
                    yield Statement(sql, (), False)
            except Exception:
                # IF NOT EXISTS still fails when another process creates it at that moment
                again: Rows = yield Statement(_STARTING, (fmt.table,), True)
                if again[0][2] is None:
                    raise
        self.ready = True

    def server_zone(self, fallback: str) -> Flow[str]:
        """The TimeZone of a connection whose client sets none."""
        rows: Rows = yield Statement(_DEFAULT_ZONE, (), True)
        if rows:
            return str(rows[0][0])
        try:
            rows = yield Statement(_FILE_ZONE, (), True)
        except Exception as exc:  # not allowed to read pg_file_settings
            log.warning(
                "cannot tell the server's default TimeZone (%s); using this connection's, %s, "
                "set by PGTZ or PGOPTIONS=%r: pass time_zone= to say which Node uses",
                exc,
                fallback,
                os.environ.get("PGOPTIONS", ""),
            )
            return fallback
        return str(rows[0][0])

    def decode(self, sid: str, text: str | None) -> Session | None:
        return self.format.decode(sid, text)

    # operations

    def get(self, sid: object) -> Flow[Session | None]:
        sid = self.format.check_sid(sid)
        if not self.ready:
            yield from self.prepare()
        rows: Rows = yield self.format.get(sid, self.clock())
        return self.decode(sid, rows[0][0]) if rows else None

    def get_and_touch(self, sid: object) -> Flow[Session | None]:
        """What get returns, the row's expiry left where touch(sid, refreshed(session, now))
        after it leaves it: in the get's statement where that is SQL (a whole
        originalMaxAge, or no cookie.expires), else by the touch statement after it."""
        if self.options.disable_touch:
            return (yield from self.get(sid))
        sid = self.format.check_sid(sid)
        if not self.ready:
            yield from self.prepare()
        now = self.clock()
        rows: Rows = yield self.format.get_and_touch(sid, now)
        if not rows:
            return None
        text, touched, skip, old = rows[0]
        try:
            session = self.decode(sid, text)
        except ValueError:
            if touched == "t":  # get raises: touch would not have run
                yield self.format.restore(sid, old)
            raise
        if session is None or touched == "t" or skip == "t":
            return session
        at = self.format.touch_expiry(refreshed(session, now), now)
        if at is not None:
            yield self.format.touch(sid, at, now)
        return session

    def set(self, sid: object, session: Mapping[str, Any]) -> Flow[None]:
        sid = self.format.check_sid(sid)
        text = encode_session(session)
        at = self.format.set_expiry(session, self.clock())
        if not self.ready:
            yield from self.prepare()
        yield self.format.set(sid, text, at)

    def touch(self, sid: object, session: Mapping[str, Any]) -> Flow[None]:
        sid = self.format.check_sid(sid)
        if type(session) is not dict and not isinstance(session, Mapping):
            raise InvalidArgumentError(f"session must be a dict, not {type(session).__name__}")
        if self.options.disable_touch:
            return
        now = self.clock()
        at = self.format.touch_expiry(session, now)
        if at is None:
            return
        if not self.ready:
            yield from self.prepare()
        yield self.format.touch(sid, at, now)

    def destroy(self, sid: object) -> Flow[bool]:
        """Delete the row; whether there was one."""
        sid = self.format.check_sid(sid)
        if not self.ready:
            yield from self.prepare()
        deleted: int = yield Statement(self.format.sql_destroy, (sid,), False, True)
        return deleted > 0

    def _live(self, sql: str) -> Flow[Rows]:
        if not self.ready:
            yield from self.prepare()
        rows: Rows = yield Statement(sql, self.format.now_params(self.clock()), True)
        return rows

    def length(self) -> Flow[int]:
        rows = yield from self._live(self.format.sql_length)
        return int(rows[0][0])

    def ids(self) -> Flow[list[str]]:
        rows = yield from self._live(self.format.sql_ids)
        return [row[0] for row in rows]

    def all(self) -> Flow[dict[str, Session]]:
        """Live sessions by id; one that is not a JSON object is skipped and logged."""
        rows = yield from self._live(self.format.sql_all)
        sessions: dict[str, Session] = {}
        for sid, text in rows:
            try:
                session = self.decode(sid, text)
            except ValueError as exc:
                log.warning("all(): %s", exc)
                continue
            if session is not None:
                sessions[sid] = session
        return sessions

    def clear(self) -> Flow[None]:
        if not self.ready:
            yield from self.prepare()
        yield Statement(self.format.sql_clear, (), False)

    def prune(self) -> Flow[int]:
        """Delete the expired rows now; how many."""
        if not self.ready:
            yield from self.prepare()
        deleted: int = yield Statement(
            self.format.sql_prune, self.format.now_params(self.clock()), False
        )
        return deleted
