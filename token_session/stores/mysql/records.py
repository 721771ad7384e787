"""Record access for the ``token-session`` command: pages, reads, writes and ``doctor``.

:class:`RecordFlows` are the flows it runs, as pure as the store's (a base of
:class:`~.format.MySQLStoreCore`); :class:`MySQLRecords` runs them on a store.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from ..records import (
    Finding,
    Page,
    RawRecord,
    StoredSession,
    WriteResult,
    check_limit,
    plan_writes,
)
from .schema import Flow, MySQLSchema, Rows, Statement, column_findings, engine_finding

__all__ = ["MySQLRecords", "RecordFlows"]

T = TypeVar("T")


class RecordFlows:
    """The stored text and expiry as they are (the token-session command), as flows.

    :class:`~.format.MySQLStoreCore` gives what is declared here without a body.
    """

    schema: MySQLSchema
    table_ready: bool
    clock: Callable[[], int]
    create_sql: str
    _set: str
    _destroy: str
    _clear_expired: str
    exact_sid: str

    def now(self) -> int:
        raise NotImplementedError

    def check_sid(self, sid: object) -> str:
        raise NotImplementedError

    def check_new_sid(self, sid: object) -> str:
        raise NotImplementedError

    def record_expires(self, record: StoredSession) -> int:
        raise NotImplementedError

    def prepare(self) -> Flow[None]:
        raise NotImplementedError

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
            f"SELECT {sid_column}, {expires}, {data} FROM {table} WHERE {self.exact_sid}",
            (sid, sid),
            True,
        )
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else None

    def put(self, records: Sequence[StoredSession]) -> Flow[WriteResult]:
        """One multi-row upsert of the texts as they are, with their expiry in seconds as
        the Node store rounds it; records expired already are left out."""
        now = self.clock()

        def row(record: StoredSession) -> tuple[str, int, str] | None:
            if record.expires_ms is not None and record.expires_ms <= now:
                return None
            return (self.check_new_sid(record.sid), self.record_expires(record), record.text)

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
        deleted: int = yield Statement(self._destroy, (sid, sid), False)
        return deleted > 0

    def doctor(self) -> Flow[list[Finding]]:
        """The table and its columns against schema.sql; never creates anything."""
        tables: Rows = yield self.schema.table_lookup("ENGINE")
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
        columns: Rows = yield self.schema.column_lookup()
        findings = [engine_finding(self.schema, tables[0][0])]
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

    def column_findings(self, columns: Rows) -> list[Finding]:
        """information_schema.COLUMNS rows ``(name, type, collation, nullable, key)`` against
        the columns schema.sql creates."""
        return column_findings(self.schema, columns)


class _Store(Protocol):
    """What :class:`MySQLRecords` uses of a :class:`~.store.MySQLStore`."""

    @property
    def core(self) -> RecordFlows: ...

    def _run(self, flow: Flow[T]) -> T: ...

    def clear_expired_sessions(self) -> int: ...


class MySQLRecords:
    """Record access to a :class:`~.store.MySQLStore` (see :mod:`..records`), in id order."""

    def __init__(self, store: _Store) -> None:
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
