"""The command never prints a traceback: every error is one line on stderr,
``token-session: error: ...``, with exit status 1 (2 for a usage error); the traceback of an
error that is not one of ours only with --debug or $TOKEN_SESSION_DEBUG."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import click
import pymongo
import pymysql
import pytest
import redis

from token_session.cli import main
from token_session.cli.app import cli
from token_session.compat.cookie import now_ms

from .backends import mysql_connect_args
from .test_cli_commands import run, seed

HOUR = 3_600_000
DEEP = '{"a":' * 2000 + "1" + "}" * 2000  # JSON.parse reads it; Python's parser does not


def error_line(err: str) -> str:
    """The one line of an error report (and that it is one line, and ours)."""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("token-session: error: "), err
    assert "Traceback" not in err
    return lines[0]


def put_raw(backend: str, url: str, redis_url: str, sid: str, stored: object) -> None:
    """Store ``stored`` under ``sid`` as the backend's Node store would hold a session's
    text, expiring in an hour, without this package's stores."""
    expires = now_ms() + HOUR
    if backend == "redis":
        prefix = url.rpartition("prefix=")[2]
        with redis.Redis.from_url(redis_url) as client:
            client.set(prefix + sid, str(stored), px=HOUR)
    elif backend == "mysql":
        with pymysql.connect(**mysql_connect_args(url), autocommit=True) as db:
            db.cursor().execute(
                "INSERT INTO sessions (session_id, expires, data) VALUES (%s, %s, %s)",
                (sid, expires // 1000, str(stored)),
            )
    else:
        with pymongo.MongoClient[dict[str, Any]](url) as client:
            client.get_default_database().sessions.insert_one(
                {
                    "_id": sid,
                    "session": stored,
                    "expires": datetime.fromtimestamp(expires / 1000, tz=timezone.utc),
                }
            )


CORRUPT = {"brace": "{bad", "array": "[1,2]", "string": '"text"'}


@pytest.mark.parametrize("backend", ["redis", "mysql", "mongo"])
def test_get_of_a_record_that_is_not_a_session_is_one_error_line(
    backend: str,
    store_urls: dict[str, str],
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = store_urls[backend]
    seed(url, 1)  # the table, as the store creates it
    for sid, text in CORRUPT.items():
        put_raw(backend, url, redis_url, sid, text)
    for sid in CORRUPT:
        for extra in ([], ["--json"]):
            status, out, err = run(capsys, "get", sid, "--store", url, *extra)
            assert (status, out) == (1, ""), (sid, extra)
            assert f"stored session {sid!r} cannot be decoded" in error_line(err)
    assert "JSON list, not an object" in run(capsys, "get", "array", "--store", url)[2]
    # --raw still shows what is there, to look at it
    status, out, _ = run(capsys, "get", "array", "--store", url, "--raw")
    assert status == 0 and "[1,2]" in out


def test_get_of_a_mongo_session_that_is_not_text(
    store_urls: dict[str, str], redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = store_urls["mongo"]
    put_raw("mongo", url, redis_url, "number", 42)
    status, out, err = run(capsys, "get", "number", "--store", url)
    assert (status, out) == (1, "")
    assert "stored session 'number' cannot be decoded" in error_line(err)


def test_get_of_a_session_nested_deeper_than_python_reads(
    store_urls: dict[str, str], redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = store_urls["redis"]
    put_raw("redis", url, redis_url, "deep", DEEP)
    put_raw("redis", url, redis_url, "deep900", '{"a":' * 900 + "1" + "}" * 900)
    for extra in ([], ["--json"]):
        status, out, err = run(capsys, "get", "deep", "--store", url, *extra)
        assert (status, out) == (1, "")
        assert "nested too deeply" in error_line(err)
        status, out, err = run(capsys, "get", "deep900", "--store", url, *extra)
        assert status == 0 and out.count('"a"') == 900, err


@pytest.mark.parametrize(
    "template",
    [
        "redis://127.0.0.1:abc/0",
        "{redis}?ttl=abc",
        "mongodb://a:b:c@/x",
        "mysql://{mysql_user}@{mysql_host}/ts_no_such_database",
        "mysql://ts_nobody:wrong@{mysql_host}/test",
    ],
)
def test_a_bad_url_or_a_refused_connection_is_one_error_line(
    template: str, capsys: pytest.CaptureFixture[str], redis_url: str, mysql_url: str
) -> None:
    mysql = urlsplit(mysql_url)
    url = template.format(
        redis=redis_url.partition("?")[0],
        mysql_user=mysql.netloc.rpartition("@")[0],
        mysql_host=mysql.netloc.rpartition("@")[2],
    )
    for command in (["ls"], ["get", "x"], ["stats"]):
        status, out, err = run(capsys, *command, "--store", url)
        assert (status, out) == (1, ""), err
        error_line(err)


def test_cluster_mode_against_a_single_redis_is_one_error_line(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"{redis_url}{'&' if '?' in redis_url else '?'}cluster=1"
    status, out, err = run(capsys, "ls", "--store", url)
    assert (status, out) == (1, "")
    error_line(err)


@pytest.fixture
def failing_command() -> Iterator[str]:
    """A command of the group that fails with an error that is not one of ours."""

    @click.command("explode")
    def explode() -> None:
        raise RuntimeError("boom\non two lines")

    cli.add_command(explode)
    try:
        yield "explode"
    finally:
        cli.commands.pop("explode")


def test_an_unexpected_error_is_one_line_with_its_type(
    failing_command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TOKEN_SESSION_DEBUG", raising=False)
    status, _, err = run(capsys, failing_command)
    assert status == 1
    line = error_line(err)
    assert "RuntimeError: boom on two lines" in line and "--debug" in line
    monkeypatch.setenv("TOKEN_SESSION_DEBUG", "0")
    assert run(capsys, failing_command)[0] == 1 and "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_shows_the_traceback(
    how: str,
    failing_command: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TOKEN_SESSION_DEBUG", raising=False)
    argv = [failing_command]
    if how == "flag":
        argv.insert(0, "--debug")
    else:
        monkeypatch.setenv("TOKEN_SESSION_DEBUG", "1")
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("Traceback (most recent call last):")
    assert 'raise RuntimeError("boom\\non two lines")' in err
    assert err.splitlines()[-1] == "token-session: error: RuntimeError: boom on two lines"


def test_a_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "ls", "--limit", "many", "--store", "memory://")
    assert status == 2 and "Invalid value for '--limit'" in err and "Traceback" not in err
