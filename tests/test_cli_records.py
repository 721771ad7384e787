"""One record that is not a session never stops ``ls``, ``stats`` or ``migrate``: each goes
through every readable session, names the others with the reason (stderr, or "failed" with
--json) and exits 1 at the end."""

from __future__ import annotations

import json

import psycopg
import pytest
import redis

from token_session.cli import main

from .databases import scratch_database
from .snapshots import snapshot
from .test_cli_commands import run, run_json, seed
from .test_cli_errors import CORRUPT, error_line, put_raw

BACKENDS = ["redis", "mysql", "mongo"]


def spoil(backend: str, url: str, redis_url: str) -> set[str]:
    """Sessions and records that are not sessions side by side; the good ids."""
    good = {record.sid for record in seed(url, 5)}
    for sid, text in CORRUPT.items():
        put_raw(backend, url, redis_url, sid, text)
    return good


@pytest.mark.parametrize("backend", BACKENDS)
def test_ls_lists_every_session_and_names_the_unreadable_records(
    backend: str, store_urls: dict[str, str], redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = store_urls[backend]
    good = spoil(backend, url, redis_url)
    status, listing = run_json(capsys, "ls", "--all", "--limit", "2", "--store", url)
    assert status == 1
    assert {entry["sid"] for entry in listing["sessions"]} == good
    assert set(listing["failed"]) == set(CORRUPT)
    assert "not an object" in listing["failed"]["array"]
    assert "not JSON" in listing["failed"]["brace"]
    status, out, err = run(capsys, "ls", "--all", "--store", url)
    assert status == 1
    assert all(sid in out for sid in good) and not any(sid in out for sid in CORRUPT)
    assert sorted(line.split()[1] for line in err.splitlines()) == sorted(
        f"{sid}:" for sid in CORRUPT
    )
    assert all(line.startswith("unreadable ") for line in err.splitlines())


@pytest.mark.parametrize("backend", BACKENDS)
def test_stats_counts_the_sessions_and_names_the_unreadable_records(
    backend: str, store_urls: dict[str, str], redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = store_urls[backend]
    spoil(backend, url, redis_url)
    status, stats = run_json(capsys, "stats", "--store", url)
    assert status == 1
    assert stats["count"] == 5
    assert set(stats["failed"]) == set(CORRUPT)
    status, out, err = run(capsys, "stats", "--store", url)
    assert status == 1 and "5 live sessions" in out
    assert sum(line.startswith("unreadable ") for line in err.splitlines()) == len(CORRUPT)


@pytest.mark.parametrize(
    ("source", "target"), [("redis", "mysql"), ("mysql", "mongo"), ("mongo", "redis")]
)
def test_migrate_copies_every_session_and_reports_the_unreadable_records(
    source: str,
    target: str,
    store_urls: dict[str, str],
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good = spoil(source, store_urls[source], redis_url)
    argv = ["migrate", "--from", store_urls[source], "--to", store_urls[target], "--batch", "2"]
    status = main([*argv, "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert status == 1
    assert (summary["read"], summary["copied"]) == (len(good) + len(CORRUPT), len(good))
    assert set(summary["failed"]) == set(CORRUPT)
    assert set(snapshot(store_urls[target])) == good
    status = main(argv)
    out = capsys.readouterr().out
    assert status == 1 and f"copied {len(good)}," in out
    assert all(f"failed {sid}: " in out for sid in CORRUPT)


def test_redis_keys_that_name_no_session_are_listed_and_skipped(
    store_urls: dict[str, str], redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key not UTF-8, longer than an id can be, or the prefix itself: named, not fatal."""
    url = store_urls["redis"]
    good = {record.sid for record in seed(url, 4)}
    prefix = url.rpartition("prefix=")[2].encode()
    with redis.Redis.from_url(redis_url) as client:
        for key in (prefix + b"\xff\xfe", prefix + b"x" * 300, prefix):
            client.set(key, "{}", px=3_600_000)
    status, listing = run_json(capsys, "ls", "--all", "--store", url)
    assert status == 1
    assert {entry["sid"] for entry in listing["sessions"]} == good
    assert len(listing["failed"]) == 3
    status, stats = run_json(capsys, "stats", "--store", url)
    assert (status, stats["count"], len(stats["failed"])) == (1, 4, 3)
    status = main(["migrate", "--from", url, "--to", store_urls["mysql"], "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert (status, summary["copied"], len(summary["failed"])) == (1, 4, 3)
    assert set(snapshot(store_urls["mysql"])) == good


def test_postgres_rows_that_are_not_sessions(
    postgres_url: str, store_urls: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """connect-pg-simple's json column holds any JSON value: an array or a string is no
    session, for get, ls, stats and migrate alike."""
    with scratch_database(postgres_url, "ts_cli") as database:
        url = f"{database}?create_table_if_missing=true&prune_session_interval=0"
        good = {record.sid for record in seed(url, 3)}  # the table, as the store makes it
        with psycopg.connect(database, autocommit=True) as db:
            for sid, text in (("array", "[1,2]"), ("string", '"text"')):
                db.execute(
                    "INSERT INTO session (sid, sess, expire)"
                    " VALUES (%s, %s, now() + interval '1 hour')",
                    (sid, text),
                )
        status, out, err = run(capsys, "get", "array", "--store", url)
        assert (status, out) == (1, "")
        assert "stored session 'array' cannot be decoded" in error_line(err)
        status, listing = run_json(capsys, "ls", "--store", url)
        assert status == 1 and {e["sid"] for e in listing["sessions"]} == good
        assert set(listing["failed"]) == {"array", "string"}
        status, stats = run_json(capsys, "stats", "--store", url)
        assert (status, stats["count"], set(stats["failed"])) == (1, 3, {"array", "string"})
        status = main(["migrate", "--from", url, "--to", store_urls["redis"], "--json"])
        summary = json.loads(capsys.readouterr().out)
        assert (status, summary["copied"], set(summary["failed"])) == (1, 3, {"array", "string"})
