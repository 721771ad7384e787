"""The command under faults, on loopback only: a backend stalled behind the tests' own TCP
proxy gives one error line and exit status 1 within the store's timeout; a migration whose
target stalls or goes away mid-way stops with BackendUnavailableError within the timeout,
keeps every session it had copied, and the same stores finish it from the state file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from token_session.errors import BackendUnavailableError
from token_session.migration import MigrationState, migrate
from token_session.stores import from_url
from token_session.stores.records import record_io

from .faults import TcpProxy, elapsed
from .snapshots import snapshot
from .test_cli_commands import run, seed
from .test_cli_errors import error_line

TIMEOUT = 1.0
BOUND = TIMEOUT + 1.5  # two busy cores


def behind(url: str, proxy: TcpProxy) -> str:
    """``url`` through ``proxy``, with the store's timeout set to TIMEOUT."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")
    host = f"{netloc[0]}{netloc[1]}127.0.0.1:{proxy.port}"
    query = f"{parts.query}&" if parts.query else ""
    return urlunsplit(parts._replace(netloc=host, query=f"{query}timeout={TIMEOUT}"))


def unavailable(line: str) -> bool:
    """Whether an error line says the backend is down or too slow (each store words it)."""
    return any(word in line.lower() for word in ("unavailable", "timeout", "unreachable"))


@pytest.fixture
def proxied(store_urls: dict[str, str]) -> Iterator[dict[str, tuple[str, TcpProxy]]]:
    """Each backend's URL through a proxy of the test's own."""
    proxies: dict[str, tuple[str, TcpProxy]] = {}
    try:
        for name, url in store_urls.items():
            parts = urlsplit(url)
            proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 0)
            proxy.start()
            proxies[name] = (behind(url, proxy), proxy)
        yield proxies
    finally:
        for _, proxy in proxies.values():
            proxy.resume()
            proxy.stop()


@pytest.mark.parametrize("backend", ["redis", "mysql", "mongo"])
def test_a_stalled_backend_is_one_error_line_within_the_timeout(
    backend: str,
    proxied: dict[str, tuple[str, TcpProxy]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, proxy = proxied[backend]
    seed(url, 3)
    assert run(capsys, "ls", "--store", url, "--json")[0] == 0
    with proxy.stalled():
        for command in (["ls"], ["get", "sid-000"], ["stats"]):
            with elapsed() as took:
                status, out, err = run(capsys, *command, "--store", url)
            assert (status, out) == (1, ""), err
            assert unavailable(error_line(err))
            assert took[0] < BOUND, (command, took[0])
    status, out, _ = run(capsys, "ls", "--store", url, "--json")
    assert status == 0 and len(json.loads(out)["sessions"]) == 3


@pytest.mark.parametrize("fault", ["stall", "stop"])
def test_a_migration_whose_target_fails_mid_way_resumes_with_nothing_lost(
    fault: str,
    store_urls: dict[str, str],
    proxied: dict[str, tuple[str, TcpProxy]],
    tmp_path: Path,
) -> None:
    source_url = store_urls["redis"]
    target_url, proxy = proxied["mysql"]
    expected = {record.sid: record for record in seed(source_url, 60)}
    state_file = str(tmp_path / "state.json")
    state = MigrationState.load_or_new(state_file, "redis", "mysql")

    def after_batch(state: MigrationState, read: int) -> None:
        state.save(state_file)
        if state.read >= 20:  # the target fails after two batches were written
            proxy.stall() if fault == "stall" else proxy.stop()

    with from_url(source_url) as source_store, from_url(target_url) as target_store:
        source, target = record_io(source_store), record_io(target_store)
        with elapsed() as took, pytest.raises(BackendUnavailableError):
            migrate(source, target, state, batch_size=10, on_batch=after_batch)
        assert took[0] < BOUND + 0.5, took  # the two batches, then one timeout
        saved = MigrationState.load_or_new(state_file, "redis", "mysql")
        # every batch read before the fault was written (Redis's pages hold about 10)
        assert 20 <= saved.read == saved.copied < 60 and not saved.done
        proxy.resume()
        if fault == "stop":
            proxy.start()
        # what was acknowledged is there, and the same stores finish the copy
        part = snapshot(store_urls["mysql"])
        assert len(part) >= saved.copied
        assert all(part[sid].text == expected[sid].text for sid in part)
        done = migrate(source, target, saved, batch_size=10)
    assert done.done and done.failed == {} and done.copied == 60
    copied = snapshot(store_urls["mysql"])
    assert set(copied) == set(expected)
    assert all(copied[sid].text == record.text for sid, record in expected.items())


def test_the_command_stops_on_an_unreachable_target_and_resumes_from_its_state(
    store_urls: dict[str, str],
    proxied: dict[str, tuple[str, TcpProxy]],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    source_url = store_urls["mongo"]
    target_url, proxy = proxied["redis"]
    seed(source_url, 30)
    state_file = str(tmp_path / "state.json")
    argv = ["migrate", "--from", source_url, "--to", target_url, "--state", state_file]
    proxy.stop()
    with elapsed() as took:
        status, out, err = run(capsys, *argv)
    assert (status, out) == (1, "")
    assert unavailable(error_line(err))
    assert took[0] < BOUND, took
    proxy.start()
    status, out, err = run(capsys, *argv, "--json")
    assert status == 0, err
    assert json.loads(out)["copied"] == 30
    assert set(snapshot(store_urls["redis"])) == set(snapshot(source_url))
