"""token_session.testing, the pytest plugin: off unless enabled, every Node store it pins
over its backend, the Express app, the Node packages installed once per lock file (and not
at all when node or npm is missing), the example suite that documents it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import httpx
import pytest

from token_session.stores import from_url
from token_session.testing import (
    ExpressApp,
    NodeStore,
    NodeStoreError,
    NodeUnavailableError,
    cookie_sid,
    signed_cookie,
)
from token_session.testing.drivers import EXPRESS, NodeDriver, store_spec
from token_session.testing.drivers import STORES as PINNED
from token_session.testing.install import NODE_FILES, lock_hash

from .databases import drop_mysql_table, scratch_database

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.node
ROOT = Path(__file__).resolve().parent.parent
COOKIE = {"originalMaxAge": 60_000, "expires": "2099-01-01T00:00:00.000Z"}
STORED_COOKIE = {**COOKIE, "httpOnly": True, "path": "/"}  # as express-session's Cookie writes it


@pytest.fixture(autouse=True)
def _inner_runs_without_pytest_asyncio(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the pytest sessions pytester starts are a user's, who need not have pytest-asyncio
    # (installed here, it warns there about its unset loop scope); set once pytester, which
    # clears PYTEST_ADDOPTS, is made
    if "pytester" in request.fixturenames:
        request.getfixturevalue("pytester")
        monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:asyncio")


USES_NODE_STORE = """
def test_it(node_store):
    store = node_store("session-memory-store")
    store.set("sid", {"user": "ada"})
    assert store.get("sid") == {"user": "ada"}
"""


def test_the_fixtures_are_off_unless_enabled(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(USES_NODE_STORE)
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'node_store' not found*"])
    # the entry point still registers the options, so a shared ini or command line works
    pytester.runpytest("--help").stdout.fnmatch_lines(["*--token-session-node=*"])


@pytest.fixture
def filled_cache(token_session_node_modules: Path) -> str:
    """The option naming this run's cache (pytester's runs get a HOME of their own)."""
    return f"--token-session-cache={token_session_node_modules.parent.parent}"


@pytest.mark.parametrize("how", ["-p", "-p without autoload", "ini", "pytest_plugins"])
def test_enabled_by_option_ini_or_pytest_plugins(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, filled_cache: str, how: str
) -> None:
    pytester.makepyfile(USES_NODE_STORE)
    args = [filled_cache, "--strict-markers"]
    if how.startswith("-p"):
        args += ["-p", "token_session.testing"]
    if how == "-p without autoload":  # no entry points: the plugin adds its options itself
        monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    if how == "ini":
        pytester.makeini("[pytest]\ntoken_session_node = true\n")
    if how == "pytest_plugins":
        pytester.makeconftest('pytest_plugins = ["token_session.testing"]\n')
    pytester.runpytest(*args).assert_outcomes(passed=1)
    # the tests that use the fixtures are marked, so a quick run can leave them out
    pytester.runpytest(*args, "-m", "not token_session_node").assert_outcomes(deselected=1)


def test_without_node_the_tests_fail_or_skip_as_chosen(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytester.makepyfile(USES_NODE_STORE)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    cache = f"--token-session-cache={tmp_path / 'empty'}"
    failed = pytester.runpytest("-p", "token_session.testing", cache)
    failed.assert_outcomes(errors=1)
    failed.stdout.fnmatch_lines(["*`node` is not on PATH*Install Node.js 20+*"])
    skipped = pytester.runpytest("-p", "token_session.testing", cache, "--token-session-node=skip")
    skipped.assert_outcomes(skipped=1)
    assert not (tmp_path / "empty").exists()


def test_the_ini_can_choose_to_skip(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytester.makepyfile(USES_NODE_STORE)
    pytester.makeini("[pytest]\ntoken_session_node = true\ntoken_session_node_missing = skip\n")
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    monkeypatch.setenv("TOKEN_SESSION_NODE_CACHE", str(tmp_path / "empty"))
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*`node` is not on PATH*"])


def test_a_filled_cache_needs_no_npm(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, filled_cache: str
) -> None:
    """An offline run: node alone on PATH (no npm, so no network) over the filled cache."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    node = subprocess.run(["node", "-p", "process.execPath"], capture_output=True, text=True)
    (bin_dir / "node").symlink_to(node.stdout.strip())
    monkeypatch.setenv("PATH", str(bin_dir))
    pytester.makepyfile(USES_NODE_STORE)
    result = pytester.runpytest("-p", "token_session.testing", filled_cache)
    result.assert_outcomes(passed=1)


def test_parallel_first_uses_install_once(tmp_path: Path) -> None:
    """Two runs starting on an empty cache at once: one ``npm ci``, one installed copy."""
    code = (
        "import sys; from pathlib import Path; "
        "from token_session.testing.install import node_modules; "
        "print(node_modules(Path(sys.argv[1])))"
    )
    started = time.monotonic()
    runs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = {run.communicate(timeout=300)[0].decode().strip() for run in runs}
    print(f"first use: npm ci in {time.monotonic() - started:.1f} s")
    assert outputs == {str(tmp_path / lock_hash() / "node_modules")}
    assert sorted(path.name for path in tmp_path.iterdir() if path.is_dir()) == [lock_hash()]
    assert (tmp_path / lock_hash() / "node_modules" / "connect-redis-6").is_dir()


def test_the_versions_it_names_are_the_ones_its_lock_file_pins() -> None:
    lock = json.loads((NODE_FILES / "package-lock.json").read_text())["packages"]
    for package, majors in PINNED.items():
        for major, version in majors.items():
            alias = f"node_modules/{package}-{major}"
            entry = lock.get(alias) or lock[f"node_modules/{package}"]
            assert entry["version"] == version, (package, major)
    for major, version in EXPRESS.items():
        assert lock[f"node_modules/express{major}"]["version"] == version
    assert lock["node_modules/express-session"]["version"] == "1.19.0"


def test_a_version_that_is_not_pinned_is_refused_naming_the_pinned_ones() -> None:
    assert store_spec("connect-redis", None) == ("connect-redis", "9")
    assert store_spec("connect-mongo@4.6.0", None) == ("connect-mongo", "4")
    with pytest.raises(ValueError, match=r"connect-redis@9\.0\.0, connect-redis@7\.1\.1"):
        store_spec("connect-redis", 8)
    with pytest.raises(ValueError, match="no Node store 'connect-sqlite'"):
        store_spec("connect-sqlite", 1)


@pytest.fixture
def backend_url(request: pytest.FixtureRequest) -> Iterator[Callable[[str], str | None]]:
    """The URL each package's store is opened over (PostgreSQL: a scratch database)."""
    with scratch_database(request.getfixturevalue("postgres_url"), "ts_plugin") as pg:
        urls = {
            "connect-redis": "redis_url",
            "connect-mongo": "mongo_url",
            "express-mysql-session": "mysql_url",
        }

        def url(package: str) -> str | None:
            if package in ("connect-pg-simple", "connect-session-knex"):
                return pg
            fixture = urls.get(package)
            return None if fixture is None else str(request.getfixturevalue(fixture))

        yield url


STORES: list[tuple[str, int, dict[str, Any]]] = [
    ("connect-redis", 9, {"prefix": "P"}),
    ("connect-redis", 7, {"prefix": "P"}),
    ("connect-redis", 6, {"prefix": "P"}),
    ("connect-mongo", 6, {"collectionName": "T"}),
    ("connect-mongo", 4, {"collectionName": "T"}),
    ("express-mysql-session", 3, {"schema": {"tableName": "T"}, "clearExpired": False}),
    ("express-mysql-session", 2, {"schema": {"tableName": "T"}, "clearExpired": False}),
    ("connect-pg-simple", 10, {"tableName": "T", "createTableIfMissing": True}),
    ("connect-session-knex", 5, {"tableName": "T"}),
    ("session-memory-store", 0, {}),
]


@pytest.mark.parametrize(("package", "version", "options"), STORES, ids=lambda v: str(v))
def test_every_pinned_store_over_its_backend(
    request: pytest.FixtureRequest,
    backend_url: Callable[[str], str | None],  # first: its database outlives the store
    node_store: Callable[..., NodeStore],
    package: str,
    version: int,
    options: dict[str, Any],
) -> None:
    tag = f"plugin_{uuid.uuid4().hex[:8]}"
    named = {key: tag if value in ("P", "T") else value for key, value in options.items()}
    if "schema" in options:
        named["schema"] = {"tableName": tag}
    store = node_store(package, version, url=backend_url(package), **named)
    if package == "express-mysql-session":  # the other backends' records go with the test's
        request.addfinalizer(lambda: drop_mysql_table(str(backend_url(package)), tag))
    assert store.version.startswith(f"{version}.")
    session = {"cookie": COOKIE, "user": "ada", "cart": [1, 2]}
    store.set("sid-1", session)
    got = store.get("sid-1")
    assert got is not None
    if package == "session-memory-store":  # node-cache's clone of the live Cookie
        got["cookie"] = STORED_COOKIE
    assert got == {**session, "cookie": STORED_COOKIE}
    assert '"user":"ada","cart":[1,2]}' in _session_text(store.raw("sid-1"))
    store.touch("sid-1", session)
    store.destroy("sid-1")
    assert store.get("sid-1") is None and store.raw("sid-1") is None


def _session_text(raw: Any) -> str:
    """The session's JSON in a raw record: the Redis value, the SQL row's data column, the
    Mongo document's session; session-memory-store keeps the object."""
    if isinstance(raw, str):
        return raw
    for column in ("data", "sess", "session"):
        if column in raw:
            return str(raw[column])
    return json.dumps(raw, separators=(",", ":"))


@pytest.mark.parametrize(
    ("package", "url"),
    [
        ("connect-redis@9", "redis://127.0.0.1:1"),
        ("connect-redis@6", "redis://127.0.0.1:1"),
        ("express-mysql-session@2", "mysql://root@127.0.0.1:1/test"),
        ("connect-session-knex", "postgresql://postgres@127.0.0.1:1/test"),  # knex logs
    ],
)
def test_a_backend_that_is_not_there_is_an_error_at_once(
    node_store: Callable[..., NodeStore],
    express_app: Callable[..., ExpressApp],
    package: str,
    url: str,
) -> None:
    started = time.monotonic()
    with pytest.raises(NodeStoreError, match="ECONNREFUSED"):
        node_store(package, url=url).get("sid")
    with pytest.raises(NodeUnavailableError, match=r"app\.js exited with 1:\n.*ECONNREFUSED"):
        express_app(package, url=url)
    assert time.monotonic() - started < 10
    # the driver is still in step: the next store answers
    assert node_store("session-memory-store").get("sid") is None


def test_a_store_that_does_not_answer_stops_the_driver_and_the_next_use_starts_anew(
    token_session_node_modules: Path,
) -> None:
    driver = NodeDriver(token_session_node_modules)
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        first = driver.process()
        first.timeout = 0.5
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(NodeStoreError, match=r"did not answer within 0\.5 s; stopped"):
            NodeStore(first, "connect-redis", "9", url=url, options={})
    second = driver.process()
    assert second is not first
    assert NodeStore(second, "session-memory-store", "0", url=None).get("sid") is None
    driver.close()


def test_raw_is_what_the_backend_holds(
    node_store: Callable[..., NodeStore], redis_url: str, mongo_url: str
) -> None:
    redis = node_store("connect-redis", url=redis_url, prefix=f"plugin-{uuid.uuid4().hex}:")
    redis.set("sid", {"cookie": COOKIE, "n": 1})
    try:
        assert redis.raw("sid") == (
            '{"cookie":{"originalMaxAge":60000,"expires":"2099-01-01T00:00:00.000Z",'
            '"httpOnly":true,"path":"/"},"n":1}'
        )
    finally:
        redis.clear()  # it would live until 2099
    mongo = node_store("connect-mongo", url=mongo_url, collectionName=f"p{uuid.uuid4().hex}")
    mongo.set("sid", {"cookie": COOKIE, "n": 1})
    document = mongo.raw("sid")
    assert (
        document["_id"] == "sid" and document["expires"].isoformat() == "2099-01-01T00:00:00+00:00"
    )
    mongo.clear()


def test_the_node_stores_own_options_name_where_the_records_go(
    backend_url: Callable[[str], str | None],
    node_store: Callable[..., NodeStore],
    redis_url: str,
    mysql_url: str,
) -> None:
    """A prefix and TTL, a MySQL table with column names of its own, a PostgreSQL schema and
    table: what the Node store writes under them, our store given the same options reads."""
    import psycopg
    import pymysql
    import redis

    from .backends import mysql_connect_args

    tag = f"opt_{uuid.uuid4().hex[:8]}"
    cookie = {"originalMaxAge": None, "expires": None, "httpOnly": True, "path": "/"}
    session = expected = {"cookie": cookie, "user": "ada"}

    node = node_store("connect-redis", 9, url=redis_url, prefix=f"{tag}:", ttl=123)
    node.set("sid", session)
    with redis.Redis.from_url(redis_url) as client:
        assert 120 <= client.ttl(f"{tag}:sid") <= 123
    with from_url(redis_url, prefix=f"{tag}:") as python:
        assert python.get("sid") == expected
    node.destroy("sid")

    columns = {"session_id": "k", "expires": "until", "data": "body"}
    node = node_store(
        "express-mysql-session",
        3,
        url=mysql_url,
        clearExpired=False,
        schema={"tableName": tag, "columnNames": columns},
    )
    node.set("sid", session)
    assert set(node.raw("sid")) == {"k", "until", "body"}
    schema = {"table_name": tag, "column_names": columns}
    with from_url(mysql_url, schema=schema, clear_expired=False) as python:
        assert python.get("sid") == expected
        python.clear()
    server = pymysql.connect(**mysql_connect_args(mysql_url), autocommit=True)
    with server, server.cursor() as cursor:
        cursor.execute(f"DROP TABLE `{tag}`")

    pg = backend_url("connect-pg-simple")
    assert pg is not None
    with psycopg.connect(pg, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {tag}")
    node = node_store(
        "connect-pg-simple", url=pg, schemaName=tag, tableName="s", createTableIfMissing=True
    )
    node.set("sid", session)
    assert node.raw("sid")["sid"] == "sid"
    with from_url(pg, schema_name=tag, table_name="s") as python:
        assert python.get("sid") == expected


SECRET = "Sq2-Kx9!session secret"  # kruptein 3.1+ wants 2 upper, lower, digits, symbols
ENCRYPTED: dict[str, tuple[int, dict[str, Any], dict[str, Any]]] = {
    # id: (connect-mongo major, its options, our MongoStore's)
    "6 crypto": (6, {"crypto": {"secret": SECRET}}, {"crypto": {"secret": SECRET}}),
    "6 webcrypto adapter": (
        6,
        {"cryptoAdapter": {"adapter": "webcrypto", "secret": SECRET, "algorithm": "AES-CBC"}},
        {"crypto_adapter": {"adapter": "webcrypto", "secret": SECRET, "algorithm": "AES-CBC"}},
    ),
    "6 kruptein adapter": (
        6,
        {"cryptoAdapter": {"adapter": "kruptein", "secret": SECRET}},
        {"crypto_adapter": {"adapter": "kruptein", "secret": SECRET}},
    ),
    "4 crypto over kruptein 3.0.8": (
        4,
        {"crypto": {"secret": SECRET}, "kruptein": "3.0.8"},
        {"crypto": {"secret": SECRET}},
    ),
}


@pytest.mark.parametrize(
    ("version", "node_options", "options"), ENCRYPTED.values(), ids=list(ENCRYPTED)
)
def test_encrypted_connect_mongo_and_our_store_read_each_other(
    node_store: Callable[..., NodeStore],
    mongo_url: str,
    version: int,
    node_options: dict[str, Any],
    options: dict[str, Any],
) -> None:
    collection = f"enc_{uuid.uuid4().hex[:8]}"
    node = node_store(
        "connect-mongo", version, url=mongo_url, collectionName=collection, **node_options
    )
    python = from_url(mongo_url, db_name="test", collection_name=collection, **options)
    try:
        node.set("from-node", {"cookie": COOKIE, "user": "ada"})
        stored = node.raw("from-node")["session"]
        assert isinstance(stored, str) and "ada" not in stored  # sealed, not clear text
        assert python.get("from-node") == {"cookie": STORED_COOKIE, "user": "ada"}
        python.set("from-python", {"cookie": STORED_COOKIE, "user": "grace"})
        assert "grace" not in str(node.raw("from-python")["session"])
        assert node.get("from-python") == {"cookie": STORED_COOKIE, "user": "grace"}
    finally:
        node.clear()
        python.close()


def test_the_kruptein_option_is_checked_before_connecting(
    node_store: Callable[..., NodeStore],
) -> None:
    url = "mongodb://127.0.0.1:1/test"  # never reached: refused first
    with pytest.raises(NodeStoreError, match="kruptein"):
        node_store("connect-mongo", 6, url=url, kruptein="3.0.8")
    with pytest.raises(NodeStoreError, match="kruptein"):
        node_store("connect-mongo", 4, url=url, kruptein="3.9.9")
    with pytest.raises(NodeStoreError, match='adapter: "webcrypto" or "kruptein"'):
        node_store("connect-mongo", 6, url=url, cryptoAdapter={"secret": SECRET})


@pytest.mark.parametrize("express", [4, 5])
def test_the_express_app_writes_reads_and_deletes_session_keys(
    express_app: Callable[..., ExpressApp], redis_url: str, express: int
) -> None:
    prefix = f"plugin-{uuid.uuid4().hex[:8]}:"
    app = express_app(
        "connect-redis",
        url=redis_url,
        store_options={"prefix": prefix},
        express=express,
        secret=["new", "old"],
    )
    assert app.express.startswith(f"{express}.")
    python = from_url(redis_url, prefix=prefix)
    with httpx.Client(base_url=app.url, timeout=10) as client:
        assert client.get("/session").json()["session"] == {
            "cookie": {"originalMaxAge": None, "expires": None, "httpOnly": True, "path": "/"}
        }
        assert "connect.sid" not in client.cookies  # saveUninitialized is false
        first = client.post("/session", json={"user": "ada", "cart": ["apple"]}).json()
        sid = first["id"]
        assert cookie_sid(client.cookies["connect.sid"], ["new", "old"]) == sid
        assert client.cookies["connect.sid"] == signed_cookie(sid, "new")
        assert python.get(sid) == {**first["session"]}  # what Express stored, read by Python
        client.delete("/session/cart")
        assert python.get(sid) == {"cookie": first["session"]["cookie"], "user": "ada"}
        moved = client.post("/session/regenerate").json()
        assert moved["id"] != sid and moved["session"]["user"] == "ada"
        assert python.get(sid) is None and python.get(moved["id"]) is not None
        # a cookie signed with the older secret is still read
        client.cookies.clear()
        client.cookies.set("connect.sid", signed_cookie(moved["id"], "old"), "127.0.0.1")
        assert client.get("/session").json()["session"]["user"] == "ada"
        assert client.delete("/session").json() == {"id": None, "session": None}
        assert python.get(moved["id"]) is None
    python.close()


def test_the_example_suite_passes() -> None:
    example = ROOT / "examples" / "pytest-interop"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=example,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    print(f"example suite: {time.monotonic() - started:.1f} s")
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout


def test_the_package_carries_the_node_files(tmp_path: Path) -> None:
    """What a user installs runs without this repository's fixtures folder: the package
    as setuptools builds it holds the scripts and the lock file, and the entry point."""
    build = ["-c", "import setuptools; setuptools.setup()", "-q", "build_py", "--build-lib"]
    subprocess.run(
        [sys.executable, *build, str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    node = tmp_path / "token_session" / "testing" / "node"
    names = {"app.js", "driver.js", "stores.js", "package.json", "package-lock.json"}
    assert {path.name for path in node.iterdir()} == names
    plugins = entry_points(group="pytest11", name="token_session")
    assert [plugin.value for plugin in plugins] == ["token_session_pytest"]
    assert (tmp_path / "token_session_pytest.py").is_file()
