"""Record access for the ``token-session`` command: pages, reads, writes and ``doctor``,
as flows run by the blocking store."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ...errors import SessionDecodeError
from ..records import Finding, Page, RawRecord, StoredSession, WriteResult, check_limit, plan_writes
from .core import Flow, PostgresCore, Rows
from .format import ConnectPgSimple, Statement, numbered, quote

if TYPE_CHECKING:
    from .store import PostgresStore

__all__ = ["PostgresRecords"]

_UTC = {"utc", "etc/utc", "gmt", "etc/gmt", "uct", "etc/uct", "universal", "etc/universal"}
_UTC |= {"zulu", "etc/zulu", "gmt0", "etc/gmt0", "gmt+0", "gmt-0", "greenwich", "z"}
_COLUMNS = numbered(
    "SELECT attname, format_type(atttypid, atttypmod), attnotnull::text FROM pg_attribute"
    " WHERE attrelid = to_regclass(?) AND attnum > 0 AND NOT attisdropped"
)
_PRIMARY = numbered(
    "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
    " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
    " WHERE i.indrelid = to_regclass(?) AND i.indisprimary"
)
_INDEXED = numbered(
    "SELECT count(*)::text FROM pg_index i JOIN pg_attribute a"
    " ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
    " WHERE i.indrelid = to_regclass(?) AND a.attname = ?"
)


class PostgresRecords:
    """Record access to a :class:`PostgresStore` (see :mod:`..records`), in id order."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self.core: PostgresCore = store.core
        self.format = store.core.format

    def _ready(self) -> Flow[None]:
        if not self.core.ready:
            yield from self.core.prepare()

    def _page(self, after: str | None, limit: int) -> Flow[Page]:
        check_limit(limit)
        yield from self._ready()
        fmt = self.format
        params = (*fmt.epoch_params(), *fmt.now_params(self.core.clock()), after or "", str(limit))
        rows: Rows = yield Statement(fmt.sql_page, params, True)
        records = [StoredSession(sid, text, int(ms)) for sid, text, ms in rows]
        return Page(records, rows[-1][0] if len(rows) == limit else None)

    def _raw(self, sid: str) -> Flow[tuple[str, str, str, int] | None]:
        """``(sid, sess, expire as text, expiry ms)`` as stored, expired or not."""
        sid = self.format.check_sid(sid)
        yield from self._ready()
        rows: Rows = yield Statement(self.format.sql_raw, (*self.format.epoch_params(), sid), True)
        return (rows[0][0], rows[0][1], rows[0][2], int(rows[0][3])) if rows else None

    def _read(self, sid: str) -> Flow[StoredSession | None]:
        row = yield from self._raw(sid)
        if row is None or not self.format.is_live(row[3], self.core.clock()):
            return None
        return StoredSession(row[0], row[1], row[3])

    def _put(self, records: Sequence[StoredSession]) -> Flow[WriteResult]:
        """One multi-row upsert of the texts as they are, each expiry as the Node store
        keeps it; records expired already are left out."""
        fmt, now = self.format, self.core.clock()

        def row(record: StoredSession) -> tuple[str, str, int] | None:
            sid = fmt.check_sid(record.sid)
            if record.expires_ms is not None:
                at = fmt.record_expiry(record.expires_ms)
            else:  # stored without expiry: what the Node store's set gives this session
                try:
                    at = fmt.set_expiry(self.core.decode(sid, record.text) or {}, now)
                except SessionDecodeError:
                    at = fmt.set_expiry({}, now)
            return None if not fmt.is_live(at, now) else (sid, record.text, at)

        result, planned = plan_writes(records, row)
        if planned:
            yield from self._ready()
            yield fmt.put([values for _, values in planned])
            result.written = [sid for sid, _ in planned]
        return result

    def _doctor(self) -> Flow[list[Finding]]:
        """The table, its columns, primary key and expiry index, and the time zones;
        never creates anything."""
        fmt = self.format
        rows: Rows = yield Statement(
            numbered(
                "SELECT current_setting('TimeZone'), (SELECT source FROM pg_settings"
                " WHERE name = 'TimeZone'), to_regclass(?)::text"
            ),
            (fmt.table,),
            True,
        )
        zone, source, exists = rows[0]
        findings = []
        if isinstance(fmt, ConnectPgSimple):
            default = (yield from self.core.server_zone(zone)) if source == "client" else zone
            findings += _zone_findings(default, zone, source, self.store.options.time_zone)
        if exists is None:
            what = (
                "connect-pg-simple creates it with createTableIfMissing"
                if isinstance(fmt, ConnectPgSimple)
                else "connect-session-knex creates it with createTable (the default)"
            )
            findings.append(
                Finding(
                    "error",
                    "table",
                    f"{fmt.display} does not exist ({what})",
                    ";\n".join(fmt.create()),
                )
            )
            return findings
        findings.append(Finding("ok", "table", f"{fmt.display} exists"))
        columns: Rows = yield Statement(_COLUMNS, (fmt.table,), True)
        findings += _column_findings(fmt.table, fmt.columns(), columns)
        primary: Rows = yield Statement(_PRIMARY, (fmt.table,), True)
        sid = fmt.sid_column
        if [row[0] for row in primary] == [sid]:
            findings.append(Finding("ok", "primary key", f"({sid})"))
        else:
            findings.append(
                Finding(
                    "error",
                    "primary key",
                    f"not ({sid}): upserts need it",
                    f"ALTER TABLE {fmt.table} ADD PRIMARY KEY ({quote(sid)})",
                )
            )
        indexed: Rows = yield Statement(_INDEXED, (fmt.table, fmt.expire_column), True)
        if int(indexed[0][0]):
            findings.append(Finding("ok", "expiry index", f"on {fmt.expire_column}"))
        else:
            findings.append(
                Finding(
                    "warning",
                    "expiry index",
                    f"no index on {fmt.expire_column}: every clean-up reads the whole table",
                    fmt.create()[1],
                )
            )
        dead: Rows = yield Statement(fmt.sql_count_dead, fmt.now_params(self.core.clock()), True)
        count = int(dead[0][0])
        findings.append(
            Finding("ok", "expired rows", "none waiting to be removed")
            if not count
            else Finding(
                "info",
                "expired rows",
                f"{count} expired rows not removed yet (the Node store's clean-up "
                "deletes them periodically)",
                "token-session purge-expired",
            )
        )
        return findings

    # the RecordIO protocol

    def page(self, cursor: str | None, limit: int) -> Page:
        return self.store._run(self._page(cursor, limit))

    def read(self, sid: str) -> StoredSession | None:
        return self.store._run(self._read(sid))

    def raw(self, sid: str) -> RawRecord | None:
        row = self.store._run(self._raw(sid))
        if row is None:
            return None
        fields: dict[str, str | int] = dict(
            zip(("sid", "sess", self.format.expire_column), row[:3], strict=True)
        )
        fields["expires_ms"] = row[3]
        return RawRecord(json.dumps(fields, ensure_ascii=False), {"row": fields})

    def write(self, records: Sequence[StoredSession]) -> WriteResult:
        return self.store._run(self._put(records))

    def delete(self, sid: str) -> bool:
        return self.store._run(self.core.destroy(sid))

    def purge_expired(self) -> int:
        return self.store.prune_sessions()

    def doctor(self) -> list[Finding]:
        return self.store._run(self._doctor())


def _column_findings(
    table: str, expected: dict[str, tuple[frozenset[str], str]], rows: Rows
) -> list[Finding]:
    found = {row[0]: row for row in rows}
    findings = []
    for name, (types, definition) in expected.items():
        row = found.get(name)
        alter = f"ALTER TABLE {table} ADD COLUMN {quote(name)} {definition}"
        if row is None:
            findings.append(Finding("error", f"column {name}", "missing", alter))
            continue
        wrong = [] if row[1] in types else [f"type {row[1]}, not {min(types)}"]
        if row[2] != "true":
            wrong.append("nullable")
        if wrong:
            base, _, _ = definition.partition(" NOT NULL")
            fix = (
                f"ALTER TABLE {table} ALTER COLUMN {quote(name)} TYPE {base},"
                f" ALTER COLUMN {quote(name)} SET NOT NULL"
            )
            findings.append(Finding("error", f"column {name}", "; ".join(wrong), fix))
        else:
            findings.append(Finding("ok", f"column {name}", row[1]))
    return findings


def _zone_findings(default: str, zone: str, source: str, chosen: str | None) -> list[Finding]:
    """connect-pg-simple's ``timestamp`` column holds wall-clock time in the TimeZone of
    node-postgres's connections: the server's default."""
    findings = []
    if default.lower() in _UTC:
        findings.append(Finding("ok", "time zone", f"server default {default}"))
    else:
        findings.append(
            Finding(
                "warning",
                "time zone",
                f"server default {default}: expire holds wall-clock time there, ambiguous "
                "for an hour when clocks go back, and read differently by any client "
                "that sets another TimeZone",
                "ALTER DATABASE ... SET TimeZone = 'UTC' (and move existing rows)",
            )
        )
    if source == "client" and zone != default:
        origin = "PGTZ" if os.environ.get("PGTZ") else "PGOPTIONS or the connection string"
        findings.append(
            Finding(
                "warning",
                "client time zone",
                f"this client's connections run in {zone} ({origin}), not {default}: "
                "node-postgres ignores PGTZ, so a Node app writes in the server's default; "
                "this store converts to it, other Python code on such connections does not",
            )
        )
    if chosen is not None and chosen != default:
        findings.append(
            Finding(
                "warning",
                "time zone option",
                f"time_zone={chosen!r}, but node-postgres's connections get {default}",
            )
        )
    return findings
