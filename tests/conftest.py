from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, settings

from .backends import MONGO, MYSQL, POSTGRES, REDIS, Backend, BackendMissingError, provide
from .databases import scratch_database
from .node import NodeOracle, NodeStoreDriver, NodeUnavailableError

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("default")

NOW = 1_700_000_000_000


class Clock:
    """A settable ``Date.now()`` for stores and sessions: epoch milliseconds."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def node() -> Iterator[NodeOracle]:
    """The real Node packages behind a pipe; a missing Node fails the run, never skips."""
    try:
        oracle = NodeOracle()
    except NodeUnavailableError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield oracle
    oracle.close()


@pytest.fixture(scope="session")
def node_stores() -> Iterator[NodeStoreDriver]:
    """store-driver.js: the real Node stores, opened with ``node_stores.open(name, ...)``."""
    try:
        driver = NodeStoreDriver()
    except NodeUnavailableError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield driver
    driver.close()


def _backend_fixture(
    backend: Backend,
    ready: Callable[[str], bool],
    fallback: Callable[[], contextlib.AbstractContextManager[str]] | None = None,
) -> Any:
    @pytest.fixture(scope="session")
    def fixture() -> Iterator[str]:
        try:
            with provide(backend, ready, fallback) as url:
                yield url
        except BackendMissingError as exc:
            pytest.fail(str(exc), pytrace=False)

    return fixture


def _redis_ready(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=2).ping())
    except redis.RedisError:
        return False


def _mysql_ready(url: str) -> bool:
    import pymysql

    from .backends import mysql_connect_args

    try:
        pymysql.connect(**mysql_connect_args(url), connect_timeout=2).close()
    except pymysql.MySQLError:
        return False
    return True


def _postgres_ready(url: str) -> bool:
    """Whether what answers at ``url`` is a PostgreSQL server taking connections."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=2) as connection:
            version = connection.execute("SELECT version()").fetchone()
    except psycopg.Error:
        return False
    return version is not None and str(version[0]).startswith("PostgreSQL")


def _mongo_ready(url: str) -> bool:
    import pymongo

    try:
        with pymongo.MongoClient(url, serverSelectionTimeoutMS=2000) as client:
            client.admin.command("ping")
    except pymongo.errors.PyMongoError:
        return False
    return True


def _our_mongo_server() -> contextlib.AbstractContextManager[str]:
    from .mongo_server import start_mongo_server

    return start_mongo_server()


redis_url = _backend_fixture(REDIS, _redis_ready)
mysql_url = _backend_fixture(MYSQL, _mysql_ready)
mongo_url = _backend_fixture(MONGO, _mongo_ready, _our_mongo_server)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server's URL (POSTGRES_URL, the local port, a container), checked to
    be PostgreSQL: something else answering on 5432 fails the run."""
    try:
        with provide(POSTGRES, _postgres_ready) as url:
            if not _postgres_ready(url):
                pytest.fail(f"no PostgreSQL server answers at {url}", pytrace=False)
            yield url
    except BackendMissingError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def store_urls(redis_url: str, mysql_url: str, mongo_url: str) -> Iterator[dict[str, str]]:
    """Store URLs of this test's own: a Redis prefix, a MySQL database and a Mongo database
    (with a collection each), all removed afterwards."""
    import secrets
    from urllib.parse import urlsplit, urlunsplit

    import pymongo
    import pymysql
    import redis

    from .backends import mysql_connect_args

    tag = secrets.token_hex(4)
    prefix = f"ts-cli-{tag}:"
    database = f"ts_cli_{tag}"
    server = pymysql.connect(**{**mysql_connect_args(mysql_url), "database": None}, autocommit=True)
    with server.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
    mysql_parts = urlsplit(mysql_url)
    mongo_parts = urlsplit(mongo_url)
    urls = {
        "redis": f"{redis_url}{'&' if '?' in redis_url else '?'}prefix={prefix}",
        "mysql": urlunsplit(mysql_parts._replace(path=f"/{database}", query="clear_expired=false")),
        "mongo": urlunsplit(mongo_parts._replace(path=f"/{database}")),
    }
    try:
        yield urls
    finally:
        client = redis.Redis.from_url(redis_url)
        # the prefix, and the prefixes tests make from it ("back-" + prefix)
        for key in client.scan_iter(match=f"*{prefix}*", count=1000):
            client.delete(key)
        client.close()
        with server.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")
        server.close()
        with pymongo.MongoClient(mongo_url) as mongo:
            mongo.drop_database(database)


# PostgreSQL: a database of the test module's own, an admin connection to it, a fresh table name


@pytest.fixture(scope="module")
def db_url(postgres_url: str) -> Iterator[str]:
    """A PostgreSQL database of the test module's own."""
    with scratch_database(postgres_url, "ts_pg") as url:
        yield url


@pytest.fixture(scope="module")
def admin(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def table() -> str:
    return f"t_{secrets.token_hex(6)}"
