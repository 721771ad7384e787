"""The blocking store's statements on a PyMySQL connection, their results read here.

PyMySQL sends the text; what comes back is read by :func:`run_text` instead of PyMySQL's
result reader, which parses every column's name and table into objects and every packet
into a wrapper: of the ~80 µs of CPU a one-row read takes in PyMySQL 1.2, ~30 were that.
Here each column's definition yields only its type and character set, and each value is
decoded and converted as PyMySQL's ``_get_descriptions`` and ``_read_row_from_packet``
would (the connection's ``decoders``, ``encoding`` and ``use_unicode``), so the rows are
the ones PyMySQL gives. Errors are PyMySQL's own exceptions, a lost connection closed as
PyMySQL closes it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from pymysql import converters, err
from pymysql.constants import CLIENT, COMMAND, CR, FIELD_TYPE, SERVER_STATUS

from ..spin import ReplySpin

__all__ = ["run_text"]

_HEADER = struct.Struct("<HBB")
_CHARSET_AND_TYPE = struct.Struct("<xHxxxxB")
_MAX_PACKET = 0xFFFFFF
_BINARY_CHARSET = 63
_MORE_RESULTS = SERVER_STATUS.SERVER_MORE_RESULTS_EXISTS
_TEXT_TYPES = {
    FIELD_TYPE.BIT,
    FIELD_TYPE.BLOB,
    FIELD_TYPE.LONG_BLOB,
    FIELD_TYPE.MEDIUM_BLOB,
    FIELD_TYPE.STRING,
    FIELD_TYPE.TINY_BLOB,
    FIELD_TYPE.VAR_STRING,
    FIELD_TYPE.VARCHAR,
    FIELD_TYPE.GEOMETRY,
}
_UNKNOWN = object()
Column = tuple["str | None", "Callable[[Any], Any] | None"]


class _Reader:
    """The packets of one command's answer, from the connection's buffered socket file."""

    __slots__ = ("connection", "read", "seq")

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.read = connection._rfile.read
        self.seq: int = connection._next_seq_id  # after the command's packets
        # the read timeout, as PyMySQL's _read_packet sets it: from 1.1.1 only when the
        # socket's differs, before that every time
        wanted = connection._read_timeout
        current = getattr(connection, "_current_timeout", _UNKNOWN)
        if current is _UNKNOWN or current != wanted:
            connection._sock.settimeout(wanted)
            if current is not _UNKNOWN:
                connection._current_timeout = wanted

    def _bytes(self, size: int) -> bytes:
        try:
            data: bytes = self.read(size)
        except OSError as exc:
            self.connection._force_close()
            raise err.OperationalError(
                CR.CR_SERVER_LOST, f"Lost connection to MySQL server during query ({exc})"
            ) from exc
        if len(data) < size:
            self.connection._force_close()
            raise err.OperationalError(
                CR.CR_SERVER_LOST, "Lost connection to MySQL server during query"
            )
        return data

    def packet(self) -> bytes:
        """The next packet's payload (a payload of 16 MiB or more comes in several)."""
        parts = []
        while True:
            low, high, number = _HEADER.unpack(self._bytes(4))
            size = low + (high << 16)
            if number != self.seq:
                self.connection._force_close()
                if number == 0:  # MariaDB's error packet as it shuts down
                    raise err.OperationalError(
                        CR.CR_SERVER_LOST, "Lost connection to MySQL server during query"
                    )
                raise err.InternalError(
                    f"Packet sequence number wrong - got {number} expected {self.seq}"
                )
            self.seq = (self.seq + 1) & 0xFF
            parts.append(self._bytes(size) if size else b"")
            if size < _MAX_PACKET:
                break
        payload = parts[0] if len(parts) == 1 else b"".join(parts)
        if payload[:1] == b"\xff":
            self.connection._next_seq_id = self.seq
            err.raise_mysql_exception(payload)
        return payload


def _length(data: bytes, at: int) -> tuple[int | None, int]:
    """A length-encoded integer at ``at`` and where what follows starts (None: NULL)."""
    first = data[at]
    if first < 251:
        return first, at + 1
    if first == 251:
        return None, at + 1
    if first == 252:
        return data[at + 1] | data[at + 2] << 8, at + 3
    if first == 253:
        return data[at + 1] | data[at + 2] << 8 | data[at + 3] << 16, at + 4
    return int.from_bytes(data[at + 1 : at + 9], "little"), at + 9


def _column(connection: Any, definition: bytes) -> Column:
    """How a column's values are decoded and converted, as PyMySQL's _get_descriptions."""
    at = 0
    for _ in range(6):  # catalog, schema, table, org_table, name, org_name
        size, at = _length(definition, at)
        at += size or 0
    charset, field_type = _CHARSET_AND_TYPE.unpack_from(definition, at)
    encoding: str | None = None
    if connection.use_unicode:
        if field_type == FIELD_TYPE.JSON:
            encoding = connection.encoding
        elif field_type in _TEXT_TYPES:
            encoding = None if charset == _BINARY_CHARSET else connection.encoding
        else:
            encoding = "ascii"
    converter = connection.decoders.get(field_type)
    return encoding, (None if converter is converters.through else converter)


def _row(data: bytes, columns: list[Column]) -> tuple[Any, ...]:
    row: list[Any] = []
    at = 0
    end = len(data)
    for encoding, converter in columns:
        if at >= end:  # PyMySQL's reading stops at the packet's end too
            break
        size, at = _length(data, at)
        if size is None:
            row.append(None)
            continue
        value: Any = data[at : at + size]
        at += size
        if encoding is not None:
            value = value.decode(encoding)
        if converter is not None:
            value = converter(value)
        row.append(value)
    return tuple(row)


def _status(ok_or_eof: bytes) -> int:
    """The server status flags of an OK packet (0x00) or an EOF packet (0xfe)."""
    if ok_or_eof[0] == 0xFE:
        return int.from_bytes(ok_or_eof[3:5], "little")
    _, at = _length(ok_or_eof, 1)  # affected rows
    _, at = _length(ok_or_eof, at)  # insert id
    return int.from_bytes(ok_or_eof[at : at + 2], "little")


def run_text(
    connection: Any, sql: str, spin: ReplySpin | None = None
) -> tuple[tuple[Any, ...], int]:
    """Send ``sql`` (one or more statements) on ``connection``; the first result's rows (an
    empty tuple for a statement without rows) and affected rows (rows read, for a read).
    The results after it are read and dropped; an error in any of them raises. ``spin``:
    how to wait for the answer before reading it."""
    if connection.client_flag & CLIENT.DEPRECATE_EOF:  # results end otherwise: PyMySQL reads
        return _read_by_pymysql(connection, sql)
    # reads first what a PyMySQL query left unread, and sends the text
    connection._execute_command(COMMAND.COM_QUERY, sql)
    reader = _Reader(connection)
    if spin is not None:
        spin.wait(connection._sock.fileno())
    first: tuple[tuple[Any, ...], int] | None = None
    while True:
        packet = reader.packet()
        if packet[0] == 0x00 or (packet[0] == 0xFE and len(packet) < 9):
            rows: tuple[tuple[Any, ...], ...] = ()
            status = _status(packet)
            if first is None:
                first = rows, _length(packet, 1)[0] or 0
        elif packet[0] == 0xFB:  # LOAD DATA LOCAL: no statement of the store's asks for it
            connection._force_close()
            raise err.OperationalError(CR.CR_COMMANDS_OUT_OF_SYNC, "Commands Out of Sync")
        else:
            count = _length(packet, 0)[0] or 0
            columns = [_column(connection, reader.packet()) for _ in range(count)]
            reader.packet()  # the EOF after the definitions
            found = []
            while True:
                packet = reader.packet()
                if packet[0] == 0xFE and len(packet) < 9:
                    break
                found.append(_row(packet, columns))
            status = _status(packet)
            if first is None:
                first = tuple(found), len(found)
        connection.server_status = status
        if not status & _MORE_RESULTS:
            connection._next_seq_id = reader.seq
            return first


def _read_by_pymysql(connection: Any, sql: str) -> tuple[tuple[Any, ...], int]:
    """:func:`run_text` through PyMySQL's own reader."""
    connection.query(sql)
    result = connection._result
    rows, affected = result.rows or (), result.affected_rows
    while connection._result.has_next:
        connection.next_result()
    return rows, affected
