"""MySQLStore, AsyncMySQLStore and the command with MariaDB behind a proxy of the tests' own
(:class:`tests.faults.TcpProxy`) that stalls, cuts and refuses connections: each fault gives
BackendUnavailableError within the store's timeout (plus a margin for two busy cores), no
acknowledged write is lost, and the same store object works again once the server answers.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import asyncmy
import pymysql
import pytest

from token_session import BackendUnavailableError
from token_session.stores.mysql import AsyncMySQLStore, MySQLStore

from .databases import scratch_mysql_database
from .faults import TcpProxy, elapsed

TIMEOUT = 1.5
MARGIN = 1.5  # what a busy two-core machine may add to the timeout
COMMAND = os.path.join(os.path.dirname(sys.executable), "token-session")


@pytest.fixture(scope="module")
def db(mysql_url: str) -> Iterator[dict[str, Any]]:
    with scratch_mysql_database(mysql_url, "ts_faults") as args:
        yield args


@pytest.fixture
def proxy(db: dict[str, Any]) -> Iterator[TcpProxy]:
    with TcpProxy(db["host"], db["port"]) as forwarder:
        yield forwarder


@pytest.fixture
def options(db: dict[str, Any], proxy: TcpProxy) -> dict[str, Any]:
    """The store's keywords, through the proxy, in a table of the test's own."""
    return {
        **db,
        "port": proxy.port,
        "schema": {"table_name": f"t_{secrets.token_hex(4)}"},
        "timeout": TIMEOUT,
        "clear_expired": False,
    }


def fails_in_time(call: Any, timeout: float = TIMEOUT) -> float:
    """Run ``call``: it must raise BackendUnavailableError within timeout + MARGIN."""
    with elapsed() as took, pytest.raises(BackendUnavailableError) as caught:
        call()
    assert took[0] < timeout + MARGIN, f"{took[0]:.2f} s"
    assert caught.value.__cause__ is not None
    return took[0]


async def afails_in_time(call: Any, timeout: float = TIMEOUT) -> float:
    with elapsed() as took, pytest.raises(BackendUnavailableError) as caught:
        await call()
    assert took[0] < timeout + MARGIN, f"{took[0]:.2f} s"
    assert caught.value.__cause__ is not None
    return took[0]


# --- a stalled server ------------------------------------------------------------------


def test_a_stall_is_a_timeout_never_doubled_and_the_store_recovers(
    options: dict[str, Any], proxy: TcpProxy
) -> None:
    with MySQLStore(**options, connection_limit=2) as store:
        store.set("a", {"n": 1})
        with proxy.stalled():
            took = fails_in_time(lambda: store.get("a"))
            assert TIMEOUT * 0.9 <= took < TIMEOUT * 1.9  # it waited for the server, once
            fails_in_time(lambda: store.set("b", {"n": 2}))
            fails_in_time(store.length)
        assert store.get("a") == {"n": 1}
        store.set("b", {"n": 3})
        assert store.get("b") == {"n": 3}  # the write sent before the stall did not undo it


def test_a_stall_before_the_handshake_and_a_busy_pool_are_timeouts(
    options: dict[str, Any], proxy: TcpProxy
) -> None:
    with MySQLStore(**options, connection_limit=1) as store:
        with proxy.stalled():
            fails_in_time(lambda: store.get("a"))  # a new connection: no greeting comes
            # one connection, held by a stalled statement: the second caller waits its own
            # timeout in the pool, not the first caller's plus its own
            errors: list[BaseException] = []
            first = threading.Thread(target=lambda: _record(errors, lambda: store.get("a")))
            first.start()
            fails_in_time(lambda: store.get("b"))
            first.join()
            assert len(errors) == 1 and isinstance(errors[0], BackendUnavailableError)
        store.set("a", {"n": 1})
        assert store.get("a") == {"n": 1}


def _record(errors: list[BaseException], call: Any) -> None:
    try:
        call()
    except BaseException as exc:
        errors.append(exc)


def test_a_cut_while_stalled_retries_only_within_the_deadline(
    options: dict[str, Any], proxy: TcpProxy
) -> None:
    with MySQLStore(**options, connection_limit=2) as store:
        store.set("a", {"n": 1})
        proxy.stall()
        timer = threading.Timer(0.3, proxy.cut)  # the idle connection is cut mid-statement
        timer.start()
        fails_in_time(lambda: store.get("a"))  # the new connection stalls: same deadline
        timer.join()
        proxy.resume()
        assert store.get("a") == {"n": 1}


async def test_async_stall_is_a_timeout_for_every_caller_and_the_store_recovers(
    options: dict[str, Any], proxy: TcpProxy
) -> None:
    async with AsyncMySQLStore(**options, connection_limit=2) as store:
        await asyncio.gather(*(store.set(f"s{i}", {"n": i}) for i in range(4)))
        with proxy.stalled(), elapsed() as took:
            # more callers than connections: some wait in the pool, all within the timeout
            results = await asyncio.gather(
                *(store.get(f"s{i}") for i in range(6)), return_exceptions=True
            )
        assert all(isinstance(result, BackendUnavailableError) for result in results), results
        assert took[0] < TIMEOUT + MARGIN
        with proxy.stalled():
            await afails_in_time(lambda: store.set("b", {}))
        assert await asyncio.gather(*(store.get(f"s{i}") for i in range(4))) == [
            {"n": i} for i in range(4)
        ]
        assert await store.length() == 4


async def test_async_stall_before_the_handshake_is_a_timeout(
    options: dict[str, Any], proxy: TcpProxy
) -> None:
    store = AsyncMySQLStore(**options)
    with proxy.stalled():
        await afails_in_time(lambda: store.get("a"))
    await store.set("a", {"n": 1})
    assert await store.get("a") == {"n": 1}
    await store.close()


# --- cut and refused connections -------------------------------------------------------


def test_cut_idle_connections_cost_no_error_and_a_refusal_is_quick(
    options: dict[str, Any], proxy: TcpProxy
) -> None:
    with MySQLStore(**options, connection_limit=3) as store:
        store.set("a", {"n": 1})
        assert proxy.cut(reset=True) >= 1
        assert store.get("a") == {"n": 1}  # a new connection, within the same deadline
        proxy.stop()
        assert fails_in_time(lambda: store.get("a")) < 1.0  # refused: no wait
        proxy.start()
        assert store.get("a") == {"n": 1}


async def test_async_cut_idle_connections_cost_no_error_and_a_refusal_is_quick(
    options: dict[str, Any], proxy: TcpProxy
) -> None:
    async with AsyncMySQLStore(**options, connection_limit=3) as store:
        await store.set("a", {"n": 1})
        assert proxy.cut() >= 1
        await asyncio.sleep(0.05)  # the pool sees the sockets closed
        assert await store.get("a") == {"n": 1}
        proxy.stop()
        assert await afails_in_time(lambda: store.get("a")) < 1.0
        proxy.start()
        assert await store.get("a") == {"n": 1}


# --- the command -----------------------------------------------------------------------


def test_the_command_on_a_stalled_server_says_so_in_one_line_within_the_timeout(
    options: dict[str, Any], proxy: TcpProxy
) -> None:
    with MySQLStore(**options) as store:
        store.set("a", {"n": 1})
    db, table = options, options["schema"]["table_name"]
    url = (
        f"mysql://{db['user']}:{db['password']}@127.0.0.1:{proxy.port}/{db['database']}"
        f"?table_name={table}&timeout={TIMEOUT}&clear_expired=false"
    )
    command = [COMMAND, "ls", "--store", url]
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=20)
    assert done.returncode == 0 and "a" in done.stdout
    with proxy.stalled(), elapsed() as took:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=20)
    assert took[0] < TIMEOUT + MARGIN + 1.5  # the interpreter's start included
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "timeout" in lines[0], done.stderr


# --- no write sent twice ---------------------------------------------------------------


def test_a_write_lost_with_its_reply_is_not_sent_again_over_a_newer_one(
    db: dict[str, Any], options: dict[str, Any], proxy: TcpProxy
) -> None:
    """The upsert reaches the server, its reply does not come back, another writer then
    writes the row and the connection is cut: sending the upsert again would undo that."""
    admin = pymysql.connect(**db, autocommit=True)
    table = options["schema"]["table_name"]
    with MySQLStore(**options, connection_limit=1) as store:
        store.set("a", {"v": "first"})
        errors: list[BaseException] = []
        proxy.stall(replies_only=True)
        writer = threading.Thread(
            target=_record, args=(errors, lambda: store.set("a", {"v": "ours"}))
        )
        writer.start()
        assert _wait(lambda: _data(admin, table, "a") == '{"v":"ours"}')
        with admin.cursor() as cursor:  # the other writer, after ours
            cursor.execute(f"UPDATE `{table}` SET data = %s", ('{"v":"newer"}',))
        proxy.cut()
        proxy.resume()  # a new connection would work: the write is still not sent again
        writer.join(TIMEOUT + MARGIN)
        assert len(errors) == 1 and isinstance(errors[0], BackendUnavailableError)
        assert _data(admin, table, "a") == '{"v":"newer"}'
        assert store.get("a") == {"v": "newer"}  # and the store goes on
    admin.close()


async def test_async_a_write_lost_with_its_reply_is_not_sent_again_over_a_newer_one(
    db: dict[str, Any], options: dict[str, Any], proxy: TcpProxy
) -> None:
    admin = pymysql.connect(**db, autocommit=True)
    table = options["schema"]["table_name"]
    async with AsyncMySQLStore(**options, connection_limit=1) as store:
        await store.set("a", {"v": "first"})
        proxy.stall(replies_only=True)
        writing = asyncio.ensure_future(store.set("a", {"v": "ours"}))
        for _ in range(200):
            await asyncio.sleep(0.02)
            if _data(admin, table, "a") == '{"v":"ours"}':
                break
        with admin.cursor() as cursor:
            cursor.execute(f"UPDATE `{table}` SET data = %s", ('{"v":"newer"}',))
        proxy.cut()
        proxy.resume()
        with pytest.raises(BackendUnavailableError):
            await writing
        assert _data(admin, table, "a") == '{"v":"newer"}'
        assert await store.get("a") == {"v": "newer"}
    admin.close()


def _data(admin: Any, table: str, sid: str) -> str | None:
    with admin.cursor() as cursor:
        cursor.execute(f"SELECT data FROM `{table}` WHERE session_id = %s", (sid,))
        row = cursor.fetchone()
    return None if row is None else str(row[0])


def _wait(condition: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_a_read_lost_with_its_reply_runs_again_on_a_new_connection(
    options: dict[str, Any], proxy: TcpProxy
) -> None:
    with MySQLStore(**options, connection_limit=1) as store:
        store.set("a", {"n": 1})
        proxy.stall(replies_only=True)
        threading.Timer(0.3, _cut_and_resume, args=(proxy,)).start()
        with elapsed() as took:
            assert store.get("a") == {"n": 1}  # a read undoes nothing: it runs again
        assert took[0] < TIMEOUT + MARGIN


def _cut_and_resume(proxy: TcpProxy) -> None:
    proxy.cut()
    proxy.resume()


def test_a_users_connection_stalled_times_out_and_is_connected_again(
    db: dict[str, Any], options: dict[str, Any], proxy: TcpProxy
) -> None:
    connection = pymysql.connect(**{**db, "port": proxy.port}, autocommit=True)
    store_options = {k: v for k, v in options.items() if k not in db}
    with MySQLStore(connection, **store_options) as store:
        store.set("a", {"n": 1})
        with proxy.stalled():
            fails_in_time(lambda: store.get("a"))
        assert store.get("a") == {"n": 1}  # the same connection object, connected again
    assert connection.open
    connection.close()


async def test_async_a_users_connection_and_pool_stalled_time_out_and_recover(
    db: dict[str, Any], options: dict[str, Any], proxy: TcpProxy
) -> None:
    store_options = {k: v for k, v in options.items() if k not in db}
    connect_args = {**db, "port": proxy.port, "autocommit": True}
    connection = await asyncmy.connect(**connect_args)
    pool = await asyncmy.create_pool(minsize=1, maxsize=2, **connect_args)
    for given in (connection, pool):
        store = AsyncMySQLStore(given, **store_options)
        await store.set("a", {"n": 1})
        with proxy.stalled():
            await afails_in_time(lambda store=store: store.get("a"))
        assert await store.get("a") == {"n": 1}
        await store.close()
    connection.close()
    pool.close()
    await pool.wait_closed()
