"""``token-session migrate`` on many sessions along a route of stores (by default Redis ->
PostgreSQL -> MySQL -> MongoDB -> Redis), then a check that every session arrived with the
same JSON text and the same expiry, session by session, after each hop.

    python bench/bench_migrate.py [-n 100000] [--batch 1000]
        [--route redis,postgres,mysql,mongo,redis]
        [--redis redis://127.0.0.1:6379/0] [--mysql mysql://root@127.0.0.1:3306/test]
        [--postgres postgresql://postgres@127.0.0.1:5432/test] [--mongo mongodb://...]

The route's stores: ``redis``, ``mysql``, ``mongo``, ``postgres`` (a connect-pg-simple
table) and ``knex`` (a connect-session-knex table); it starts at ``redis``, which is seeded,
and a store may come back (each visit gets a prefix, a table or a collection of its own).
Each hop runs the command itself (``python -m token_session migrate ... --json``) and prints
its throughput and its check. Without --mongo (and without MONGO_URL) a route through
``mongo`` starts the test suite's MongoDB-protocol server, which is much slower than a
mongod: expect it to be the bottleneck. Everything it writes (Redis prefixes, a MySQL
database, a PostgreSQL database, a Mongo database) is removed after.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.snapshots import snapshot  # noqa: E402
from token_session.compat import dumps, js_iso  # noqa: E402
from token_session.compat.cookie import from_ms, now_ms  # noqa: E402
from token_session.stores import from_url  # noqa: E402
from token_session.stores.records import StoredSession, record_io  # noqa: E402

HOUR = 3_600_000


def sessions(count: int) -> list[StoredSession]:
    rng = random.Random(42)
    now = now_ms()
    made = []
    for i in range(count):
        expires = now + rng.randint(2 * HOUR, 48 * HOUR)
        session = {
            "cookie": {
                "originalMaxAge": expires - now,
                "expires": js_iso(from_ms(expires)),
                "httpOnly": True,
                "path": "/",
            },
            "user": {"id": i, "name": rng.choice(["Ada", "Zoë", "李雷", "🙂"])},
            "cart": [{"sku": f"A-{j}", "qty": j, "price": j * 0.1} for j in range(i % 5)],
        }
        made.append(StoredSession(secrets.token_urlsafe(24), dumps(session), expires))
    return made


# How far a session's expiry may move along a route, in milliseconds (found - original):
# - Redis keeps milliseconds, but as a TTL: written as PX from a clock read before the
#   batch is sent, read back as PTTL added to a clock read after the answer, each a few ms
#   (tens under load) later. MongoDB and connect-session-knex's timestamptz keep ms.
# - MySQL keeps whole seconds, Math.round(ms / 1000) as express-mysql-session: up to 500 ms
#   either way.
# - PostgreSQL's connect-pg-simple keeps whole seconds rounded UP, to_timestamp(ceil(ms /
#   1000)): up to 999 ms later than what it is given, never earlier, and what Redis gives
#   it is already a few ms late: a second and a few ms late in all. Later hops keep that
#   second (a whole second is its own Math.round and its own ceil) and Redis adds its few
#   ms again: from a PostgreSQL hop on, 2 s late is allowed, 1 s before it (and 1 s early
#   everywhere). Anything beyond (a second lost, a time zone's hour) is a mismatch.
EARLY_MS = 1_000
LATE_MS = 1_000
LATE_AFTER_POSTGRES_MS = 2_000


@dataclass
class Verdict:
    checked: int  # sessions expected and found, text and expiry compared
    missing: int
    extra: int
    changed: int  # another text
    moved: int  # another expiry, outside the tolerance
    shifts: tuple[int, int]  # the earliest and the latest expiry found - original, in ms

    @property
    def mismatches(self) -> int:
        return self.missing + self.extra + self.changed + self.moved

    def __str__(self) -> str:
        problems = [
            f"{count} {what}"
            for what, count in (
                ("missing", self.missing),
                ("extra", self.extra),
                ("changed", self.changed),
                ("with another expiry", self.moved),
            )
            if count
        ]
        return (
            f"{self.checked:,} checked, {self.mismatches} mismatches"
            + (f" ({'; '.join(problems)})" if problems else "")
            + f", expiry {self.shifts[0]:+,} to {self.shifts[1]:+,} ms"
        )


def check(url: str, original: dict[str, StoredSession], late_ms: int) -> Verdict:
    """Every session at ``url`` against the original: the same text, the expiry at most
    EARLY_MS earlier and ``late_ms`` later."""
    found = snapshot(url)
    both = original.keys() & found.keys()
    changed = moved = 0
    shifts = [0]
    for sid in both:
        changed += found[sid].text != original[sid].text
        shift = (found[sid].expires_ms or 0) - (original[sid].expires_ms or 0)
        moved += not -EARLY_MS <= shift <= late_ms
        shifts.append(shift)
    return Verdict(
        len(both), len(original.keys() - found.keys()), len(found.keys() - original.keys()),
        changed, moved, (min(shifts), max(shifts)),
    )  # fmt: skip


@contextlib.contextmanager
def mongo(url: str | None, database: str) -> Iterator[str]:
    """A MongoDB server's URL (the test suite's own without ``url``); ``database`` is
    dropped after."""
    import pymongo

    with contextlib.ExitStack() as stack:
        if not url:
            from tests.mongo_server import start_mongo_server

            url = stack.enter_context(start_mongo_server())
        try:
            yield url
        finally:
            client: pymongo.MongoClient[Any]
            with pymongo.MongoClient(url) as client:
                client.drop_database(database)


def with_path(url: str, path: str, query: str = "") -> str:
    return urlunsplit(urlsplit(url)._replace(path=path, query=query))


SUITE_MONGO_TIMEOUT_S = 600
STORES = ("redis", "mysql", "mongo", "postgres", "knex")


def route_of(text: str) -> list[str]:
    route = [name.strip() for name in text.split(",")]
    unknown = [name for name in route if name not in STORES]
    if unknown or len(route) < 2 or route[0] != "redis":
        raise SystemExit(
            f"--route: stores among {', '.join(STORES)}, at least two, from redis first"
            + (f" (not {', '.join(unknown)})" if unknown else "")
        )
    return route


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100_000, help="sessions (default 100000)")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument(
        "--route",
        type=route_of,
        default=route_of("redis,postgres,mysql,mongo,redis"),
        help="stores in the order the sessions go through (default "
        "redis,postgres,mysql,mongo,redis)",
    )
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument(
        "--mysql", default=os.environ.get("MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--mongo", default=os.environ.get("MONGO_URL"))
    args = parser.parse_args()
    route: list[str] = args.route

    import redis

    tag = secrets.token_hex(4)
    database = f"bench_migrate_{tag}"
    with contextlib.ExitStack() as cleanup:
        redis_client = redis.Redis.from_url(args.redis)
        cleanup.callback(redis_client.close)
        cleanup.callback(drop_redis_keys, redis_client, f"bench-{tag}-")
        mysql_databases = [
            f"{database}_{visit}" for visit, name in enumerate(route) if name == "mysql"
        ]
        if mysql_databases:
            cleanup.enter_context(mysql_databases_made(args.mysql, mysql_databases))
        if "postgres" in route or "knex" in route:
            cleanup.enter_context(postgres_database(args.postgres, database))
        mongo_url = cleanup.enter_context(mongo(args.mongo, database)) if "mongo" in route else ""

        def url_of(visit: int, name: str) -> str:
            """The store of the route's ``visit``-th stop: a prefix, a database, a table or
            a collection of its own."""
            if name == "redis":
                joiner = "&" if "?" in args.redis else "?"
                return f"{args.redis}{joiner}prefix=bench-{tag}-{visit}:"
            if name == "mysql":
                return with_path(args.mysql, f"/{database}_{visit}", "clear_expired=false")
            if name == "mongo":
                # the suite's server (a Python one) takes seconds over a page of a large
                # collection: more than the store's 5 s default
                slow = "" if args.mongo else f"&timeout={SUITE_MONGO_TIMEOUT_S}"
                return with_path(mongo_url, f"/{database}", f"collection_name=s{visit}{slow}")
            if name == "postgres":
                query = f"table_name=s{visit}&create_table_if_missing=true&prune_session_interval=0"
            else:
                query = f"format=connect-session-knex&table_name=s{visit}&cleanup_interval=0"
            return with_path(args.postgres, f"/{database}", query)

        urls = [
            (name if name not in route[:visit] else f"{name} again", url_of(visit, name))
            for visit, name in enumerate(route)
        ]
        return run(args.n, args.batch, urls)


def drop_redis_keys(client: Any, prefix: str) -> None:
    for key in client.scan_iter(match=f"{prefix}*", count=5000):
        client.delete(key)


@contextlib.contextmanager
def mysql_databases_made(url: str, databases: list[str]) -> Iterator[None]:
    import pymysql

    parts = urlsplit(url)
    admin = pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        autocommit=True,
    )
    try:
        for database in databases:
            admin.cursor().execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
        yield
    finally:
        for database in databases:
            admin.cursor().execute(f"DROP DATABASE IF EXISTS `{database}`")
        admin.close()


@contextlib.contextmanager
def postgres_database(url: str, database: str) -> Iterator[None]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    try:
        yield
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def run(count: int, batch: int, urls: list[tuple[str, str]]) -> int:
    made = sessions(count)
    original = {r.sid: r for r in made}
    started = time.perf_counter()
    with from_url(urls[0][1]) as store:
        records = record_io(store)
        for start in range(0, count, 1000):
            records.write(made[start : start + 1000])
    print(f"seeded {count} sessions into Redis in {time.perf_counter() - started:.1f} s")

    failures = 0
    late_ms = LATE_MS
    for (source, source_url), (target, target_url) in itertools.pairwise(urls):
        command = [
            sys.executable, "-m", "token_session", "migrate",
            "--from", source_url, "--to", target_url, "--batch", str(batch), "--json",
        ]  # fmt: skip
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        elapsed = time.perf_counter() - started
        if not done.stdout:
            raise SystemExit(f"migrate failed: {done.stderr}")
        summary = json.loads(done.stdout)
        if target.startswith("postgres"):
            late_ms = LATE_AFTER_POSTGRES_MS
        verdict = check(target_url, original, late_ms)
        failures += verdict.mismatches > 0 or done.returncode != 0
        print(
            f"{source:>11} -> {target:<11} copied {summary['copied']:>7}, skipped "
            f"{summary['skipped']}, failed {len(summary['failed'])} in {elapsed:6.1f} s: "
            f"{summary['read'] / summary['seconds']:>7,.0f} sessions/s (process "
            f"{summary['read'] / elapsed:,.0f}/s); check: {verdict}"
        )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
