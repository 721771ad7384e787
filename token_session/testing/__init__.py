"""A pytest plugin for cross-language tests: the real Node session stores and a real Express
app as fixtures, over your own backends.

Enable it with ``-p token_session.testing``, ``pytest_plugins = ["token_session.testing"]``
or ``token_session_node = true`` in the pytest ini. Fixtures:

- ``node_store(package, version=None, url=..., **options)``: a :class:`NodeStore`, the real
  store (connect-redis 6/7/9, connect-mongo 4/6, express-mysql-session 2/3,
  connect-pg-simple 10, connect-session-knex 5, session-memory-store) with the Node store's
  own options (camelCase; connect-mongo 6's ``cryptoAdapter`` as ``{"adapter": "webcrypto"
  or "kruptein", ...}``, and ``kruptein="3.0.8"`` for connect-mongo 4), closed after the test;
- ``express_app(store, version=None, url=..., store_options=None, express=5, **session)``: an
  :class:`ExpressApp` (express-session 1.19.0) on a loopback port, stopped after the test.

The Node packages are installed with ``npm ci`` on first use into a cache folder per lock
file (``--token-session-cache``, ``$TOKEN_SESSION_NODE_CACHE``); without node/npm the tests
that need them fail, or skip with ``--token-session-node=skip``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from token_session_pytest import add_marker, add_options

from ..compat import decode_cookie_value, encode_cookie_value
from .drivers import EXPRESS, ExpressApp, NodeDriver, NodeStore, NodeStoreError, store_spec
from .install import NodeUnavailableError, cache_root, node_modules

__all__ = [
    "ExpressApp",
    "NodeStore",
    "NodeStoreError",
    "NodeUnavailableError",
    "cookie_sid",
    "signed_cookie",
]

EXPRESS_SESSION_DEFAULTS: dict[str, Any] = {
    "secret": "token-session testing secret",
    "resave": False,
    "saveUninitialized": False,
}


def signed_cookie(sid: str, secret: str | Iterable[str]) -> str:
    """The ``connect.sid`` cookie value express-session sets for ``sid`` (``s:`` + the id
    signed with the first secret, URI-encoded)."""
    return encode_cookie_value(sid, secret)


def cookie_sid(value: str, secret: str | Iterable[str]) -> str | None:
    """The session id in a ``connect.sid`` cookie value, None if unsigned or forged."""
    return decode_cookie_value(value, secret)


def pytest_addoption(parser: pytest.Parser) -> None:
    # the entry point adds them too; with plugin autoloading off only -p brings this module
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    add_marker(config)


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that use the Node fixtures are marked ``token_session_node``."""
    for item in items:
        if {"node_store", "express_app"} & set(getattr(item, "fixturenames", ())):
            item.add_marker("token_session_node")


@pytest.fixture(scope="session")
def token_session_node_modules(pytestconfig: pytest.Config) -> Path:
    """The installed Node packages (``npm ci`` into the cache on first use)."""
    missing = pytestconfig.getoption("token_session_node") or pytestconfig.getini(
        "token_session_node_missing"
    )
    root = cache_root(pytestconfig.getoption("token_session_cache"))
    try:
        return node_modules(root)
    except NodeUnavailableError as exc:
        if missing == "skip":
            pytest.skip(str(exc))
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def token_session_node_driver(token_session_node_modules: Path) -> Iterator[NodeDriver]:
    """One driver.js process for the run, which every ``node_store`` opens its store in."""
    driver = NodeDriver(token_session_node_modules)
    yield driver
    driver.close()


@pytest.fixture
def node_store(token_session_node_driver: NodeDriver) -> Iterator[Callable[..., NodeStore]]:
    """``node_store("connect-redis", 9, url="redis://...", prefix="sess:")``: the real Node
    store over ``url`` (a Redis, MongoDB, MySQL or PostgreSQL URL; none for
    session-memory-store) with the store's own options, closed after the test."""
    opened: list[NodeStore] = []

    def open_store(
        package: str, version: str | int | None = None, *, url: str | None = None, **options: Any
    ) -> NodeStore:
        name, major = store_spec(package, version)
        process = token_session_node_driver.process()
        store = NodeStore(process, name, major, url=url, options=options)
        opened.append(store)
        return store

    yield open_store
    _close_all([store.close for store in reversed(opened)])


@pytest.fixture
def express_app(token_session_node_modules: Path) -> Iterator[Callable[..., ExpressApp]]:
    """``express_app("connect-redis", url="redis://...", secret="s")``: a real Express app
    (express 4 or 5, express-session 1.19.0) over that Node store, its base URL in ``.url``;
    the keywords besides ``version``, ``url``, ``store_options`` and ``express`` are
    express-session's options (camelCase; ``resave`` and ``saveUninitialized`` default to
    false). Stopped after the test."""
    started: list[ExpressApp] = []

    def start(
        store: str = "session-memory-store",
        version: str | int | None = None,
        *,
        url: str | None = None,
        store_options: dict[str, Any] | None = None,
        express: int | str = 5,
        **session: Any,
    ) -> ExpressApp:
        name, major = store_spec(store, version)
        if str(express) not in EXPRESS:
            raise ValueError(f"express {express!r}: 4 or 5")
        config = {
            "express": str(express),
            "store": {"package": name, "version": major, "url": url, "options": store_options},
            "session": {**EXPRESS_SESSION_DEFAULTS, **session},
        }
        app = ExpressApp(token_session_node_modules, config)
        started.append(app)
        return app

    yield start
    _close_all([app.close for app in reversed(started)])


def _close_all(closers: list[Callable[[], None]]) -> None:
    """Every one closed; the first failure raised afterwards."""
    failures: list[Exception] = []
    for close in closers:
        try:
            close()
        except (NodeStoreError, NodeUnavailableError) as exc:
            failures.append(exc)
    if failures:
        raise failures[0]
