"""The ``token-session`` commands ls, get, stats, rm, purge-expired and doctor on the real
backends, run in-process through ``main`` as a shell would run them."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pymongo
import pymysql
import pytest
import redis

from token_session.cli import main
from token_session.compat.cookie import now_ms
from token_session.stores import from_url
from token_session.stores.base import encode_session
from token_session.stores.mysql import js_round
from token_session.stores.records import StoredSession, record_io

from .backends import mysql_connect_args
from .redis_servers import lone_redis

BACKENDS = ["redis", "mysql", "mongo"]
HOUR = 3_600_000


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    status, out, err = run(capsys, *argv, "--json")
    assert out, err
    return status, json.loads(out)


def seed(url: str, count: int) -> list[StoredSession]:
    """``count`` sessions, each expiring a different number of minutes from now."""
    now = now_ms()
    records = [
        StoredSession(
            f"sid-{i:03d}",
            encode_session({"cookie": {"originalMaxAge": None}, "n": i, "name": "Zoë ✓"}),
            now + (i + 2) * 60_000 + 30_000,
        )
        for i in range(count)
    ]
    with from_url(url) as store:
        assert record_io(store).write(records).written == [r.sid for r in records]
    return records


@pytest.mark.parametrize("backend", BACKENDS)
def test_ls_pages_through_every_session_with_its_expiry(
    backend: str, store_urls: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = store_urls[backend]
    records = {r.sid: r for r in seed(url, 25)}
    seen: dict[str, Any] = {}
    cursor: str | None = None
    pages = 0
    while True:
        extra = ["--cursor", cursor] if cursor else []
        status, listing = run_json(capsys, "ls", "--store", url, "--limit", "10", *extra)
        assert status == 0
        seen.update({entry["sid"]: entry for entry in listing["sessions"]})
        pages += 1
        cursor = listing["cursor"]
        if cursor is None:
            break
    if backend != "redis":  # SCAN's COUNT is only a hint
        assert pages == 3
    assert set(seen) == set(records)
    for sid, entry in seen.items():
        expected = records[sid].expires_ms
        assert expected is not None
        # MySQL keeps whole seconds
        assert abs(entry["ttl_ms"] - (expected - now_ms())) < 2_000
        assert entry["size"] == len(records[sid].text.encode())
    status, everything = run_json(capsys, "ls", "--store", url, "--all", "--limit", "7")
    assert {entry["sid"] for entry in everything["sessions"]} == set(records)


@pytest.mark.parametrize("backend", BACKENDS)
def test_get_shows_the_session_and_raw_shows_what_is_stored(
    backend: str, store_urls: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = store_urls[backend]
    record = seed(url, 1)[0]
    status, shown = run_json(capsys, "get", record.sid, "--store", url)
    assert status == 0
    assert shown["session"] == json.loads(record.text)
    status, out, _ = run(capsys, "get", record.sid, "--store", url, "--raw")
    assert status == 0
    if backend == "redis":
        assert out == record.text + "\n"  # the value's bytes as they are
    elif backend == "mysql":
        assert json.loads(out)["data"] == record.text
        # Math.round: a clock read on a half second rounds up, where Python's round may not
        assert json.loads(out)["expires"] == js_round(record.expires_ms / 1000)  # type: ignore[operator]
    else:
        document = json.loads(out)
        assert document["session"] == record.text
        assert document["expires"] == {"$date": {"$numberLong": str(record.expires_ms)}}
    status, out, err = run(capsys, "get", "no-such-sid", "--store", url)
    assert status == 1
    assert "no session 'no-such-sid'" in err
    status, out, _ = run(capsys, "get", record.sid, "--store", url)
    assert status == 0 and '"name": "Zoë ✓"' in out


@pytest.mark.parametrize("backend", BACKENDS)
def test_rm_deletes_and_says_which_were_missing(
    backend: str, store_urls: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = store_urls[backend]
    records = seed(url, 3)
    status, result = run_json(capsys, "rm", records[0].sid, "gone", "--store", url)
    assert status == 1
    assert result == {"removed": [records[0].sid], "missing": ["gone"]}
    assert run(capsys, "rm", "gone", "--force", "--store", url)[0] == 0
    with from_url(url) as store:
        assert sorted(store.ids()) == [records[1].sid, records[2].sid]


def test_stats_counts_and_buckets(
    store_urls: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = store_urls["redis"]
    records = seed(url, 12)  # expiring in 2.5 .. 13.5 minutes
    status, stats = run_json(capsys, "stats", "--store", url)
    assert status == 0
    assert stats["count"] == 12
    assert stats["expires_in"]["< 10 min"] == 8 and stats["expires_in"]["< 1 h"] == 4
    assert stats["size"]["< 256 B"] == 12
    sizes = sorted(len(record.text.encode()) for record in records)
    assert sizes[0] < sizes[-1]  # "n": 0 .. 11
    assert stats["bytes"] == {
        "total": sum(sizes),
        "min": sizes[0],
        "median": (sizes[5] + sizes[6]) // 2,
        "max": sizes[-1],
    }
    status, out, _ = run(capsys, "stats", "--store", url)
    assert "12 live sessions" in out and "█" in out


def test_the_store_comes_from_the_environment_or_a_config_file(
    store_urls: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    base, _, query = store_urls["redis"].partition("?")
    prefix = query.removeprefix("prefix=")
    seed(store_urls["redis"], 2)
    config = tmp_path / "token-session.toml"
    config.write_text(f'[store]\nurl = "{base}"\nprefix = "{prefix}"\n')
    listing = run_json(capsys, "ls", "--config", str(config))[1]
    assert {entry["sid"] for entry in listing["sessions"]} == {"sid-000", "sid-001"}
    monkeypatch.setenv("TOKEN_SESSION_STORE", base)
    status, listing = run_json(capsys, "ls", "-o", f"prefix={prefix}")
    assert status == 0 and len(listing["sessions"]) == 2
    monkeypatch.delenv("TOKEN_SESSION_STORE")
    status, _, err = run(capsys, "ls")
    assert status == 1 and "--store URL or $TOKEN_SESSION_STORE" in err


def test_purge_expired_removes_expired_rows_and_documents(
    store_urls: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    stale = {"cookie": {"originalMaxAge": 1000, "expires": "2001-01-01T00:00:00.000Z"}}
    mongo_url = store_urls["mongo"]
    for url in (store_urls["mysql"], mongo_url):
        seed(url, 2)
    with pymysql.connect(**mysql_connect_args(store_urls["mysql"]), autocommit=True) as db:
        db.cursor().execute("INSERT INTO sessions VALUES ('old', 978307200, '{}')")
    with pymongo.MongoClient[dict[str, Any]](mongo_url, tz_aware=True) as client:
        client.get_default_database().sessions.insert_one(
            {"_id": "old", "session": encode_session(stale), "expires": datetime(2001, 1, 1)}
        )
    assert run_json(capsys, "purge-expired", "--store", store_urls["mysql"]) == (0, {"purged": 1})
    assert run_json(capsys, "purge-expired", "--store", mongo_url) == (0, {"purged": 1})
    assert run_json(capsys, "purge-expired", "--store", store_urls["redis"]) == (
        0,
        {"purged": None},
    )
    for url in (store_urls["mysql"], mongo_url):
        with from_url(url) as store:
            assert "old" not in store.ids() and store.length() == 2


def findings(capsys: pytest.CaptureFixture[str], url: str) -> tuple[int, dict[str, Any]]:
    status, report = run_json(capsys, "doctor", url)
    return status, {f["check"]: f for f in report["findings"]}


def test_doctor_checks_the_mysql_table_against_schema_sql(
    store_urls: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = store_urls["mysql"]
    status, found = findings(capsys, url)
    assert status == 1
    assert found["table"]["level"] == "error"
    assert "CREATE TABLE IF NOT EXISTS `sessions`" in found["table"]["fix"]
    seed(url, 1)  # the store creates the table as the Node store does
    status, found = findings(capsys, url)
    assert status == 0
    assert {f["level"] for f in found.values()} == {"ok"}
    with pymysql.connect(**mysql_connect_args(url), autocommit=True) as db:
        db.cursor().execute(
            "ALTER TABLE sessions MODIFY session_id varchar(128) COLLATE utf8mb4_general_ci"
            " NOT NULL, MODIFY data text COLLATE utf8mb4_bin"
        )
    status, found = findings(capsys, url)
    assert status == 1
    assert "collation utf8mb4_general_ci" in found["column session_id"]["message"]
    assert "type text" in found["column data"]["message"]
    fix = found["column session_id"]["fix"]
    with pymysql.connect(**mysql_connect_args(url), autocommit=True) as db:
        db.cursor().execute(fix)
        db.cursor().execute(found["column data"]["fix"])
    assert findings(capsys, url)[0] == 0
    status, out, _ = run(capsys, "doctor", url)
    assert status == 0 and "column session_id" in out


def test_doctor_checks_the_mongo_ttl_index(
    store_urls: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = store_urls["mongo"]
    with pymongo.MongoClient[dict[str, Any]](url) as client:
        client.get_default_database().sessions.insert_one({"_id": "x", "session": "{}"})
    status, found = findings(capsys, url)
    assert status == 1
    assert found["TTL index on expires"]["level"] == "warning"
    assert "expireAfterSeconds: 0" in found["TTL index on expires"]["fix"]
    seed(url, 1)  # the first write creates the index, as connect-mongo does when it starts
    status, found = findings(capsys, url)
    assert status == 0 and found["TTL index on expires"]["level"] == "ok"


def test_doctor_finds_redis_keys_without_ttl(
    store_urls: dict[str, str], capsys: pytest.CaptureFixture[str], redis_url: str
) -> None:
    url = store_urls["redis"]
    seed(url, 3)
    status, found = findings(capsys, url)
    assert found["keys without TTL"]["level"] == "ok"
    prefix = url.rpartition("prefix=")[2]
    with redis.Redis.from_url(redis_url) as client:
        client.set(prefix + "forever", "{}")
    status, found = findings(capsys, url)
    assert status == 1
    assert found["keys without TTL"]["level"] == "warning"
    assert f"{prefix}forever" in found["keys without TTL"]["message"]


@pytest.mark.parametrize(
    ("settings", "level", "status"),
    [
        ((), "ok", 0),  # redis-server's default: noeviction
        (("--maxmemory-policy", "allkeys-lru"), "warning", 1),  # no maxmemory: nothing yet
        (("--maxmemory", "64mb", "--maxmemory-policy", "volatile-lru"), "error", 1),
    ],
)
def test_doctor_reads_the_eviction_policy_of_the_server(
    settings: tuple[str, ...], level: str, status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    with lone_redis(*settings) as server:
        got, found = findings(capsys, server.url)
    assert found["eviction policy"]["level"] == level
    assert got == status


def test_errors_are_one_line_and_exit_non_zero(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "ls", "--store", "redis://127.0.0.1:1/0")
    assert status == 1 and err.startswith("token-session: error: Redis unavailable")
    status, _, err = run(capsys, "ls", "--store", "nosuch://x")
    assert status == 1 and "unknown store URL scheme" in err
    status, _, err = run(capsys, "ls", "--store", "memory://", "-o", "oops")
    assert status == 1 and "not name=value" in err
    status, _, err = run(capsys, "get")
    assert status == 2 and "Missing argument 'SID'" in err


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("ls", "get", "stats", "rm", "migrate", "purge-expired", "doctor"):
        status, out, _ = run(capsys, command, "--help")
        assert status == 0 and "example" in out and f"token-session {command}" in out


def test_demo_needs_only_the_base_install() -> None:
    """Without click and rich, ``demo`` still runs and the other commands say what to
    install."""
    script = (
        "import sys; sys.modules['click'] = None; sys.modules['rich'] = None\n"
        "from token_session.cli import main\n"
        "sys.exit(main(sys.argv[1:]))"
    )
    demo = subprocess.run([sys.executable, "-c", script, "demo"], capture_output=True, text=True)
    assert demo.returncode == 0 and "sessions left: 0" in demo.stdout
    other = subprocess.run([sys.executable, "-c", script, "--help"], capture_output=True, text=True)
    assert "token-session[cli]" in other.stdout
    ls = subprocess.run([sys.executable, "-c", script, "ls"], capture_output=True, text=True)
    assert ls.returncode == 2 and "ls needs the cli extra" in ls.stderr
