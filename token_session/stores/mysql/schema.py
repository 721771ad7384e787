"""The table and the SQL sent to it: :class:`Statement`, the table and column names
(:class:`MySQLSchema`), the CREATE TABLE of express-mysql-session's ``schema.sql``, and the
checks ``doctor`` makes of an existing table against it."""

from __future__ import annotations

import re
from collections.abc import Generator, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

from ...errors import InvalidArgumentError
from ..records import Finding

__all__ = ["SID_COLUMN_LENGTH", "Flow", "MySQLSchema", "Rows", "Statement"]

T = TypeVar("T")
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


class Statement(NamedTuple):
    """One SQL statement of an operation: ``%s`` placeholders, values in ``params``.

    ``fetch``: the flow is sent the rows; otherwise the number of affected rows.
    ``writes``: a read followed by writes in one text (several statements): the flow is
    sent the first one's rows; sent as a write is (never again once it may have arrived).
    """

    sql: str
    params: tuple[Any, ...]
    fetch: bool
    writes: bool = False


Flow = Generator[Statement, Any, T]
Rows = Sequence[Sequence[Any]]


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

    def create_sql(self) -> str:
        """schema.sql's CREATE TABLE, with these names."""
        table, sid, expires, data = self.quoted()
        return _CREATE_TABLE.format(table=table, session_id=sid, expires=expires, data=data)

    def table_lookup(self, columns: str) -> Statement:
        """``columns`` of this table's information_schema.TABLES row (none: no table)."""
        database, _, name = self.table_name.rpartition(".")
        return Statement(
            f"SELECT {columns} FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA = COALESCE(%s, DATABASE()) AND TABLE_NAME = %s",
            (database or None, name),
            True,
        )

    def column_lookup(self) -> Statement:
        """This table's information_schema.COLUMNS rows, as :func:`column_findings` reads them."""
        database, _, name = self.table_name.rpartition(".")
        return Statement(
            "SELECT COLUMN_NAME, COLUMN_TYPE, COLLATION_NAME, IS_NULLABLE, COLUMN_KEY"
            " FROM information_schema.COLUMNS"
            " WHERE TABLE_SCHEMA = COALESCE(%s, DATABASE()) AND TABLE_NAME = %s",
            (database or None, name),
            True,
        )


def _is_identifier(name: object) -> bool:
    return isinstance(name, str) and _IDENTIFIER.fullmatch(name) is not None


def engine_finding(schema: MySQLSchema, engine: str | None) -> Finding:
    if engine == "InnoDB":
        return Finding("ok", "table", f"{schema.table_name} exists (InnoDB)")
    return Finding(
        "warning",
        "table",
        f"{schema.table_name} uses {engine}, not InnoDB as schema.sql",
        f"ALTER TABLE {schema.quoted().table_name} ENGINE=InnoDB",
    )


def column_findings(schema: MySQLSchema, columns: Rows) -> list[Finding]:
    """information_schema.COLUMNS rows ``(name, type, collation, nullable, key)`` against
    the columns schema.sql creates."""
    found = {str(row[0]): row for row in columns}
    quoted = schema.quoted()
    findings = []
    for role, ((types, collation, nullable), definition) in _COLUMNS.items():
        name = getattr(schema, role)
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
