"""connect-session-knex 5.0.0's table on PostgreSQL, with no I/O: its expiry rules over
the shared statements of :class:`~.format.StoreFormat`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ...compat.cookie import expires_ms
from ...compat.jsdate import js_iso_ms
from ...compat.jsjson import js_truthy
from ...errors import InvalidArgumentError
from .format import KNEX, MAX_TIME_MS, ONE_DAY_S, Statement, StoreFormat, numbered, quote, valid_ms
from .onestep import LAST_MS

__all__ = ["ConnectSessionKnex"]


class ConnectSessionKnex(StoreFormat):
    """connect-session-knex 5.0.0 on pg: ``expired timestamptz``, milliseconds, live
    while ``now <= expired``."""

    name = KNEX
    default_table = "sessions"
    expire_column = "expired"
    live = "?::timestamptz <= {e}"
    dead = "{e} < ?::timestamptz"
    value = "?::timestamptz"
    epoch_ms = "round(extract(epoch from {e}) * 1000)::bigint::text"
    sid_limit = 255
    # touch writes the restarted cookie.expires to the millisecond, nothing without one
    touch_when = f"found.ms BETWEEN 0 AND {LAST_MS}"
    touch_value = "timestamptz 'epoch' + found.ms * interval '1 millisecond'"
    touch_skip = "NOT found.timed AND found.plain"
    column_type = "timestamptz"

    def __init__(
        self, table_name: str | None, schema_name: str | None, sid_field_name: str = "sid"
    ) -> None:
        super().__init__(table_name, schema_name, sid_field_name)
        t, sid = self.table, quote(self.sid_column)
        live = self.live.format(e='"expired"')
        self.sql_touch = numbered(
            f'UPDATE {t} SET "expired" = ?::timestamptz WHERE {sid} = ? AND {live}'
        )

    def now_params(self, now: int) -> tuple[str, ...]:
        return (_iso(now),)  # dateAsISO(knex): new Date().toISOString()

    def expiry_params(self, at_ms: int) -> tuple[str, ...]:
        return (_iso(at_ms),)

    def set_expiry(self, session: Mapping[str, Any], now: int) -> int:
        # Node's set reads `session.cookie.maxAge` only: express-session's Cookie computes it
        # as `expires - now`, so a Node app writes cookie.expires; a plain object (JSON,
        # token-session) has no such getter, and gets now + maxAge or one day. A Python
        # session is a plain dict, so cookie.expires is read first, as a Node app's Cookie
        # gives it, then maxAge as a plain object gives it.
        at = expires_ms(session)
        if at is not None and math.isfinite(at) and abs(at) <= MAX_TIME_MS:
            return math.trunc(at)
        cookie = session.get("cookie")
        max_age = cookie.get("maxAge") if isinstance(cookie, Mapping) else None
        if not js_truthy(max_age):
            return now + ONE_DAY_S * 1000
        if isinstance(max_age, bool) or not isinstance(max_age, (int, float)):
            raise InvalidArgumentError(
                "cookie.maxAge is not a number (connect-session-knex throws a RangeError)"
            )
        return valid_ms(now + max_age, "now + cookie.maxAge")

    def touch_expiry(self, session: Mapping[str, Any], now: int) -> int | None:
        # only a truthy cookie.expires is written; nothing is sent otherwise
        at = expires_ms(session)
        return None if at is None else valid_ms(at, "cookie.expires")

    def record_expiry(self, at_ms: float) -> int:
        return valid_ms(at_ms, "expiry")

    def touch(self, sid: str, at_ms: int, now: int) -> Statement:
        return Statement(self.sql_touch, (_iso(at_ms), sid, _iso(now)), False, True)

    def create(self) -> list[str]:
        t, name, sid = self.table, self.table_name, quote(self.sid_column)
        return [
            f'CREATE TABLE IF NOT EXISTS {t} ({sid} varchar(255), "sess" json not null,'
            f' "expired" timestamptz not null, constraint {quote(name + "_pkey")}'
            f" primary key ({sid}))",
            f'CREATE INDEX IF NOT EXISTS {quote(name + "_expired_index")} ON {t} ("expired")',
        ]

    def columns(self) -> dict[str, tuple[frozenset[str], str]]:
        return {
            self.sid_column: (frozenset({"character varying(255)"}), "varchar(255) NOT NULL"),
            "sess": (frozenset({"json"}), "json NOT NULL"),
            "expired": (frozenset({"timestamp with time zone"}), "timestamptz NOT NULL"),
        }

    def is_live(self, at_ms: int, now: int) -> bool:
        return now <= at_ms


def _iso(ms: int) -> str:
    text = js_iso_ms(ms)
    if text is None:
        raise InvalidArgumentError("expiry is not a date")
    return text
