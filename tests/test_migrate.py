"""``token-session migrate``: every live session copied between the real backends, text and
expiry unchanged, readable by the real Node stores at the target; resumable, idempotent."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from token_session.cli import main
from token_session.compat import js_iso
from token_session.compat.cookie import from_ms, now_ms
from token_session.compat.jsjson import dumps
from token_session.errors import InvalidArgumentError
from token_session.migration import MigrationState, migrate
from token_session.stores import MemoryStore, from_url
from token_session.stores.records import StoredSession, record_io
from token_session.testing import NodeStore

from .conftest import Clock
from .databases import scratch_database
from .snapshots import snapshot

N = 3000
HOUR = 3_600_000


def express_session(i: int, rng: random.Random, expires_ms: int) -> str:
    """The JSON text express-session hands its store for a varied session."""
    session: dict[str, Any] = {
        "cookie": {
            "originalMaxAge": expires_ms - now_ms(),
            "expires": js_iso(from_ms(expires_ms)),
            "secure": False,
            "httpOnly": True,
            "path": "/",
        },
        "user": {"id": i, "name": rng.choice(["Ada", "Zoë", "Łukasz", "李雷", "🙂 emoji"])},
        "cart": [{"sku": f"A-{j}", "qty": j, "price": j * 0.1} for j in range(i % 4)],
        "flags": {"beta": i % 2 == 0, "score": 1e21 if i % 7 == 0 else i / 3},
    }
    return dumps(session)


def seed_redis(url: str, count: int) -> dict[str, StoredSession]:
    rng = random.Random(7)
    now = now_ms()
    records = []
    for i in range(count):
        expires = now + rng.randint(HOUR, 48 * HOUR)
        sid = f"s{i:05d}-{rng.getrandbits(40):x}"
        records.append(StoredSession(sid, express_session(i, rng, expires), expires))
    with from_url(url) as store:
        for start in range(0, count, 1000):
            assert not record_io(store).write(records[start : start + 1000]).failed
    return {r.sid: r for r in records}


def assert_same(
    found: dict[str, StoredSession], expected: dict[str, StoredSession], late_ms: int = 1_000
) -> None:
    assert set(found) == set(expected)
    for sid, record in expected.items():
        assert found[sid].text == record.text
        assert record.expires_ms is not None and found[sid].expires_ms is not None
        # MySQL keeps whole seconds (Math.round), Redis's PTTL is read a moment later
        assert -1_000 <= found[sid].expires_ms - record.expires_ms <= late_ms  # type: ignore[operator]


def cli_migrate(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    status = main(["migrate", *argv, "--json"])
    return status, json.loads(capsys.readouterr().out)


@pytest.fixture
def postgres_db(postgres_url: str) -> Iterator[str]:
    """A database of this test's own (connect-pg-simple's table made by the command)."""
    with scratch_database(postgres_url, "ts_migrate") as url:
        yield url


def test_redis_to_postgres_to_mysql_to_mongo_to_redis_loses_and_changes_nothing(
    store_urls: dict[str, str],
    redis_url: str,
    postgres_db: str,
    node_store: Callable[..., NodeStore],
    capsys: pytest.CaptureFixture[str],
) -> None:
    original = seed_redis(store_urls["redis"], N)
    back = store_urls["redis"].replace("prefix=", "prefix=back-")
    pg = f"{postgres_db}?create_table_if_missing=true&prune_session_interval=0"
    late_ms = 1_000
    hops = [
        (store_urls["redis"], pg),
        (pg, store_urls["mysql"]),
        (store_urls["mysql"], store_urls["mongo"]),
        (store_urls["mongo"], back),
    ]
    for source, target in hops:
        status, summary = cli_migrate(capsys, "--from", source, "--to", target, "--batch", "500")
        assert status == 0, summary
        assert (summary["read"], summary["copied"], summary["skipped"]) == (N, N, 0)
        assert summary["failed"] == {}
        # connect-pg-simple keeps whole seconds rounded up (of an expiry Redis already
        # holds a few ms late): up to 1 s later from there on, and Redis's PTTL on top
        late_ms = 2_000 if target == pg else late_ms
        assert_same(snapshot(target), original, late_ms)

    # the real Node stores read the migrated sessions as they were written
    sample = random.Random(1).sample(sorted(original), 5)
    prefix = back.rpartition("prefix=")[2]
    nodes = (
        node_store("connect-redis", 9, url=redis_url, prefix=prefix),
        node_store("express-mysql-session", 3, url=store_urls["mysql"], clearExpired=False),
        node_store("connect-mongo", 6, url=store_urls["mongo"]),
        node_store("connect-pg-simple", 10, url=postgres_db),
    )
    for sid in sample:
        for node in nodes:
            assert node.get_json(sid) == original[sid].text, node


def test_migrate_is_idempotent_and_dry_run_writes_nothing(
    store_urls: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    original = seed_redis(store_urls["redis"], 300)
    source, target = store_urls["redis"], store_urls["mysql"]
    status, summary = cli_migrate(capsys, "--from", source, "--to", target, "--dry-run")
    assert status == 0 and summary["copied"] == 300 and summary["dry_run"]
    assert snapshot(target) == {}
    for _ in range(2):
        status, summary = cli_migrate(capsys, "--from", source, "--to", target, "--batch", "64")
        assert status == 0 and summary["copied"] == 300
        assert_same(snapshot(target), original)


def test_an_interrupted_migration_resumes_from_its_state_file(
    store_urls: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    original = seed_redis(store_urls["redis"], 1000)
    source, target = store_urls["redis"], store_urls["mongo"]
    state_file = str(tmp_path / "state.json")

    class StopHereError(Exception):
        pass

    def stop_after_two(state: MigrationState, read: int) -> None:
        state.save(state_file)
        if state.read >= 2 * 100:
            raise StopHereError

    state = MigrationState.load_or_new(state_file, source, target)
    with (
        from_url(source) as source_store,
        from_url(target) as target_store,
        pytest.raises(StopHereError),
    ):
        migrate(
            record_io(source_store),
            record_io(target_store),
            state,
            batch_size=100,
            on_batch=stop_after_two,
        )
    part = snapshot(target)
    assert 0 < len(part) < 1000
    saved = json.loads(Path(state_file).read_text())
    assert saved["cursor"] and not saved["done"]

    status, summary = cli_migrate(
        capsys, "--from", source, "--to", target, "--state", state_file, "--batch", "100"
    )
    assert status == 0
    # counted across both runs; a second pass from the start would read 1200 and more
    # (SCAN may return a key twice while Redis rehashes: a few more are harmless)
    assert 1000 <= summary["read"] < 1200
    assert_same(snapshot(target), original)
    assert json.loads(Path(state_file).read_text())["done"]

    other = ["migrate", "--from", source, "--to", store_urls["mysql"], "--state", state_file]
    assert main(other) == 1
    assert "is of a migration from" in capsys.readouterr().err


def test_sessions_that_expire_during_the_copy_are_skipped(clock: Clock) -> None:
    source = MemoryStore(clock=clock)
    later = Clock()
    later.now = clock.now + 10_000  # the target is written 10 s after the source was read
    target = MemoryStore(clock=later)
    record_io(source).write(
        [
            StoredSession("short", "{}", clock.now + 5_000),
            StoredSession("long", '{"a":1}', clock.now + HOUR),
            StoredSession("forever", '{"b":2}', None),
        ]
    )
    state = migrate(record_io(source), record_io(target), MigrationState("a", "b"))
    assert (state.copied, state.skipped, state.failed) == (2, ["short"], {})
    assert record_io(target).read("long") == StoredSession("long", '{"a":1}', clock.now + HOUR)
    assert record_io(target).read("forever") == StoredSession("forever", '{"b":2}', None)


def test_failures_are_reported_with_their_ids(
    store_urls: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    seed_redis(store_urls["redis"], 50)
    too_long = "x" * 200  # more than express-mysql-session's varchar(128)
    with from_url(store_urls["redis"]) as store:
        record_io(store).write([StoredSession(too_long, "{}", now_ms() + HOUR)])
    status, summary = cli_migrate(
        capsys, "--from", store_urls["redis"], "--to", store_urls["mysql"]
    )
    assert status == 1
    assert summary["copied"] == 50
    assert list(summary["failed"]) == [too_long]
    assert "128" in summary["failed"][too_long]
    status = main(["migrate", "--from", store_urls["redis"], "--to", store_urls["mysql"]])
    out = capsys.readouterr().out
    assert status == 1 and f"failed {too_long}" in out and "copied 50" in out


def test_a_state_file_that_cannot_be_read_or_written_is_one_error_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source, target = "memory://", "memory://"
    status = main(["migrate", "--from", source, "--to", target, "--state", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 1 and err.startswith("token-session: error: cannot read state file")
    assert len(err.splitlines()) == 1
    with pytest.raises(InvalidArgumentError, match="cannot write state file"):
        MigrationState("a", "b").save(str(tmp_path / "no-such-directory" / "state.json"))
