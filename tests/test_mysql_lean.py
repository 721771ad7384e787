"""The blocking MySQL store's result reader (``stores/mysql/lean.py``) against PyMySQL's own,
on the real MariaDB: the same rows, the same errors, the connection usable after."""

from __future__ import annotations

import decimal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
from pymysql.constants import CLIENT

from token_session.stores.mysql.lean import _read_by_pymysql as _pymysql
from token_session.stores.mysql.lean import run_text

from .databases import scratch_mysql_database


@pytest.fixture(scope="module")
def mysql_args(mysql_url: str) -> Iterator[dict[str, Any]]:
    with scratch_mysql_database(mysql_url, "ts_lean") as args:
        yield args


def _connect(args: dict[str, Any], **more: Any) -> pymysql.connections.Connection[Any]:
    options = {"autocommit": True, "charset": "utf8mb4", **args, **more}
    options["client_flag"] = options.get("client_flag", 0) | CLIENT.MULTI_STATEMENTS
    return pymysql.connect(**options)


@pytest.fixture(scope="module")
def typed_table(mysql_args: dict[str, Any]) -> Iterator[str]:
    connection = _connect(mysql_args)
    connection.query(
        "CREATE TABLE typed (id INT PRIMARY KEY, i INT UNSIGNED, b BIGINT, d DECIMAL(12,3),"
        " f DOUBLE, t MEDIUMTEXT COLLATE utf8mb4_bin, v VARCHAR(300), bl MEDIUMBLOB,"
        " vb VARBINARY(20), j JSON, dt DATETIME(3), da DATE, bi BIT(8), e ENUM('x','y'))"
    )
    rows = [
        "(1, 4294967295, -9007199254740993, 12.5, 1.5e300, '{\"a\":\"é☃😀\"}', REPEAT('v', 300),"
        " X'00FF10', X'0102', '{\"k\": [1, 2]}', '2026-12-02 06:30:01.123', '2026-12-02',"
        " b'10100101', 'y')",
        "(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
        "(3, 0, 0, -0.001, 0, '', '', '', '', 'null', '1970-01-01 00:00:00', '1000-01-01',"
        " b'0', 'x')",
        "(4, 1, 1, 1, 1, REPEAT('é', 40000), 'a', REPEAT('b', 70000), 'c', '[]',"
        " NULL, NULL, NULL, NULL)",
    ]
    connection.query(f"INSERT INTO typed VALUES {', '.join(rows)}")
    connection.close()
    yield "typed"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM typed ORDER BY id",
        "SELECT t, i, id FROM typed WHERE id = 1",
        "SELECT * FROM typed WHERE id = 99",
        "SELECT COUNT(*), SUM(i), NOW() > 0, NULL, 'plain', _binary 'bytes' FROM typed",
        "UPDATE typed SET b = b WHERE id > 1",
        "UPDATE typed SET b = b + 1 WHERE id = 1; UPDATE typed SET b = b - 1 WHERE id = 1",
        "SELECT t FROM typed WHERE id = 4; UPDATE typed SET i = i WHERE id = 4",
        "SELECT 1; SELECT 2; SELECT * FROM typed WHERE id = 3",
        "DO 1",
    ],
)
@pytest.mark.parametrize("use_unicode", [True, False])
def test_the_rows_are_those_pymysql_reads(
    mysql_args: dict[str, Any], typed_table: str, sql: str, use_unicode: bool
) -> None:
    def outcome(read: Any) -> Any:
        connection = _connect(mysql_args, use_unicode=use_unicode)
        try:
            first = read(connection, sql)
            # again on the same connection, and PyMySQL then finds it in order
            return first, read(connection, sql), _pymysql(connection, "SELECT 'next'")
        except Exception as exc:  # PyMySQL cannot convert a DECIMAL's bytes: neither can this
            return type(exc), str(exc)
        finally:
            connection.close()

    assert outcome(run_text) == outcome(_pymysql)


def test_the_connections_decoders_and_encoding_are_used(
    mysql_args: dict[str, Any], typed_table: str
) -> None:
    conv = {**pymysql.converters.decoders, pymysql.FIELD_TYPE.NEWDECIMAL: float}
    connection = _connect(mysql_args, conv=conv, charset="latin1")
    try:
        rows, _ = run_text(connection, "SELECT d, v FROM typed WHERE id = 1")
        assert rows == ((12.5, "v" * 300),)
        assert rows == _pymysql(connection, "SELECT d, v FROM typed WHERE id = 1")[0]
    finally:
        connection.close()


def test_a_value_of_16_mib_and_more_comes_in_several_packets(mysql_args: dict[str, Any]) -> None:
    server = _connect(mysql_args)
    ((previous,),) = run_text(server, "SELECT @@GLOBAL.max_allowed_packet")[0]
    server.query("SET GLOBAL max_allowed_packet = 64 * 1024 * 1024")
    try:
        connection = _connect(mysql_args, max_allowed_packet=64 * 1024 * 1024)
        try:
            size = 0xFFFFFF + 1000  # the row is a payload of 16 MiB and more
            rows, count = run_text(connection, f"SELECT REPEAT('s', {size}), 7")
            assert count == 1 and rows[0][0] == "s" * size and rows[0][1] == 7
            assert run_text(connection, "SELECT 1") == (((1,),), 1)
        finally:
            connection.close()
    finally:
        server.query(f"SET GLOBAL max_allowed_packet = {previous}")
        server.close()


def test_an_error_raises_pymysqls_exception_and_the_connection_goes_on(
    mysql_args: dict[str, Any], typed_table: str
) -> None:
    connection = _connect(mysql_args)
    try:
        with pytest.raises(pymysql.err.ProgrammingError) as raised:
            run_text(connection, "SELECT * FROM no_such_table")
        assert raised.value.args[0] == 1146
        # the error of a later statement too, after the first one's rows
        with pytest.raises(pymysql.err.ProgrammingError):
            run_text(connection, "SELECT 1; SELECT * FROM no_such_table")
        with pytest.raises(pymysql.err.IntegrityError):
            run_text(connection, "INSERT INTO typed (id) VALUES (1)")
        assert run_text(connection, "SELECT id FROM typed WHERE id = 3") == (((3,),), 1)
        assert _pymysql(connection, "SELECT 2") == (((2,),), 1)
    finally:
        connection.close()


def test_what_a_pymysql_query_left_unread_is_read_first(
    mysql_args: dict[str, Any], typed_table: str
) -> None:
    connection = _connect(mysql_args)
    try:
        connection.query("SELECT 1; SELECT 2; SELECT 3")  # the 2nd and 3rd left unread
        assert run_text(connection, "SELECT 4") == (((4,),), 1)
    finally:
        connection.close()


def test_the_server_status_follows_the_session(mysql_args: dict[str, Any]) -> None:
    connection = _connect(mysql_args)
    try:
        run_text(connection, "SET autocommit = 0")
        assert not connection.get_autocommit()
        run_text(connection, "SET autocommit = 1; SELECT 1")
        assert connection.get_autocommit()
    finally:
        connection.close()


def test_a_connection_ended_while_reading_raises_pymysqls_error_and_stays_unusable(
    mysql_args: dict[str, Any],
) -> None:
    connection = _connect(mysql_args)
    killer = _connect(mysql_args)
    try:
        ((thread_id,),), _ = run_text(connection, "SELECT CONNECTION_ID()")
        # the server ends the connection while it waits for the sleep's result
        threading.Timer(0.3, killer.query, (f"KILL {thread_id}",)).start()
        started = time.monotonic()
        with pytest.raises(pymysql.err.OperationalError):
            run_text(connection, "SELECT SLEEP(5)")
        assert time.monotonic() - started < 4
        with pytest.raises((pymysql.err.OperationalError, pymysql.err.InterfaceError)):
            run_text(connection, "SELECT 1")
    finally:
        connection.close() if connection.open else None
        killer.close()


def test_decimal_values_are_decimals(mysql_args: dict[str, Any], typed_table: str) -> None:
    connection = _connect(mysql_args)
    try:
        rows, _ = run_text(connection, "SELECT d FROM typed WHERE id = 3")
        assert rows == ((decimal.Decimal("-0.001"),),)
    finally:
        connection.close()


def test_the_connections_read_timeout_holds(mysql_args: dict[str, Any]) -> None:
    connection = _connect(mysql_args, read_timeout=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(pymysql.err.OperationalError) as raised:
            run_text(connection, "SELECT SLEEP(3)")
        assert raised.value.args[0] == 2013 and time.monotonic() - started < 2
        assert not connection.open
    finally:
        connection.close() if connection.open else None


def test_a_connection_whose_results_end_without_eof_is_read_by_pymysql(
    mysql_args: dict[str, Any], typed_table: str
) -> None:
    # a PyMySQL that asked for CLIENT_DEPRECATE_EOF (none does yet) gets results this reader
    # does not expect: it leaves them to PyMySQL's (the flag here is only on the client side)
    connection = _connect(mysql_args)
    try:
        expected = run_text(connection, "SELECT id, t FROM typed WHERE id < 3 ORDER BY id")
        connection.client_flag |= CLIENT.DEPRECATE_EOF
        assert run_text(connection, "SELECT id, t FROM typed WHERE id < 3 ORDER BY id") == expected
    finally:
        connection.close()


@pytest.mark.parametrize("size", [0, 1, 250, 251, 252, 255, 256, 65535, 65536, 70000])
def test_values_at_every_length_encodings_edge(mysql_args: dict[str, Any], size: int) -> None:
    connection = _connect(mysql_args)
    try:
        sql = f"SELECT REPEAT('é', {size}), NULL, REPEAT(_binary 'b', {size}), {size}"
        rows, _ = run_text(connection, sql)
        assert rows == (("é" * size, None, b"b" * size, size),)
        assert rows == _pymysql(connection, sql)[0]
    finally:
        connection.close()
