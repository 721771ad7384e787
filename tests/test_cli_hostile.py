"""Ids and texts from a backend are data, never markup or terminal control: a session id
like ``[/bold]`` or one holding an escape sequence is printed as it is (control characters
written as escapes), and a lone surrogate in a session prints as its escape."""

from __future__ import annotations

import json

import pytest
import redis

from token_session.cli import main

from .test_cli_commands import run

HOSTILE = ["[/bold]", "[red]x[/red]", ":thumbs_up:", "a\x1b[2Jb", "tab\there", " x"]
SHOWN = ["[/bold]", "[red]x[/red]", ":thumbs_up:", "a\\x1b[2Jb", "tab\\there", "' x'"]


@pytest.fixture
def hostile(store_urls: dict[str, str], redis_url: str) -> str:
    url = store_urls["redis"]
    prefix = url.rpartition("prefix=")[2]
    with redis.Redis.from_url(redis_url) as client:
        for sid in HOSTILE:
            client.set(prefix + sid, '{"cookie":{"originalMaxAge":null},"n":1}', px=3_600_000)
        client.set(prefix + "[red]bad", "[1]", px=3_600_000)
        client.set(prefix + "sur", '{"a":"\\ud800","b":"\\u001b[2J"}', px=3_600_000)
    return url


def clean(*texts: str) -> None:
    for text in texts:
        assert "\x1b" not in text and "Traceback" not in text and "error" not in text


def test_ls_and_stats_print_ids_as_they_are(
    hostile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "ls", "--store", hostile)
    assert status == 1  # for "[red]bad", which is not a session
    clean(out)
    listed = {line.split("  ")[0].strip() for line in out.splitlines()[1:]}
    assert set(SHOWN) <= listed
    assert err == "unreadable [red]bad: JSON list, not an object\n"
    status, out, err = run(capsys, "stats", "--store", hostile)
    assert status == 1 and f"{len(HOSTILE) + 1} live sessions" in out
    assert err == "unreadable [red]bad: JSON list, not an object\n"


def test_get_and_rm_print_ids_as_they_are(hostile: str, capsys: pytest.CaptureFixture[str]) -> None:
    for sid, shown in zip(HOSTILE, SHOWN, strict=True):
        status, out, err = run(capsys, "get", sid, "--store", hostile)
        assert status == 0, err
        clean(out, err)
        assert err.startswith(f"{shown}  expires ") and '"n": 1' in out
    status, out, err = run(capsys, "rm", *HOSTILE, "--store", hostile)
    assert status == 0, err
    assert out.splitlines() == [f"removed {shown}" for shown in SHOWN]
    status, out, err = run(capsys, "rm", HOSTILE[0], "--store", hostile)
    assert (status, err) == (1, "no session [/bold]\n")


def test_a_lone_surrogate_prints_as_its_escape(
    hostile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "get", "sur", "--store", hostile)
    assert status == 0, err
    clean(out)
    assert '"\\ud800"' in out and '"\\u001b[2J"' in out
    status, out, err = run(capsys, "get", "sur", "--store", hostile, "--json")
    assert status == 0, err
    assert json.loads(out)["session"] == {"a": "\ud800", "b": "\x1b[2J"}


def test_doctor_and_migrate_print_ids_as_they_are(
    hostile: str, store_urls: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = hostile.rpartition("prefix=")[2]
    with redis.Redis.from_url(hostile.partition("?")[0]) as client:
        client.set(prefix + "[/b]\x1b[0m", "{}")  # no TTL: doctor names it
    status, out, err = run(capsys, "doctor", hostile)
    assert status == 1, err
    clean(out)
    assert "[/b]\\x1b[0m" in out
    status = main(["migrate", "--from", hostile, "--to", store_urls["mongo"]])
    out = capsys.readouterr().out
    assert status == 1
    assert "  failed [red]bad: JSON list, not an object" in out.splitlines()
