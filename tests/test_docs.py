"""The documentation site builds without a warning, and every Python snippet on it runs.

The line before each ```python fence on the site says how its snippet is checked:

- ``<!-- runnable -->``: it runs as it is, in a namespace of its own, with nothing but the
  package (the memory store, or stores and apps made without I/O);
- ``<!-- tested-by: test_name -->``: that test of this module runs it against the real
  local services (Redis, MySQL, PostgreSQL, the tests' MongoDB, Node), as a user would;
  ``<!-- tested-by: tests/test_x.py::test_name -->``: that test of another module does (it
  reads the page: its source names it);
- ``<!-- not-runnable: why -->``: it cannot run here (a Redis Cluster, Sentinels), and says so.

No snippet goes unmarked; each README snippet is one of the site's, word for word. Every
snippet must parse; the site's ``token-session`` command lines parse as the command reads
them, and its config files name store options that exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import inspect
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from token_session.testing import cookie_sid, signed_cookie

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SNIPPET = re.compile(
    r"^(?:<!-- (?P<mark>[^\n]*?) -->\n)?```python\n(?P<code>.*?)^```", re.MULTILINE | re.DOTALL
)
MARKS = re.compile(
    r"runnable|tested-by: (?:(?P<module>tests/\w+\.py)::)?(?P<test>test_\w+)"
    r"|not-runnable: (?P<why>\S.*)"
)


@dataclass(frozen=True)
class Snippet:
    where: str  # page#number
    mark: str | None
    code: str

    @property
    def tested_by(self) -> str | None:
        found = MARKS.fullmatch(self.mark or "")
        return found["test"] if found and not found["module"] else None


def snippets(page: Path) -> list[Snippet]:
    text = page.read_text("utf-8")
    where = page.relative_to(ROOT)
    return [
        Snippet(f"{where}#{number}", match["mark"], match["code"])
        for number, match in enumerate(SNIPPET.finditer(text), 1)
    ]


def site_snippets() -> list[Snippet]:
    return [snippet for page in sorted(DOCS.rglob("*.md")) for snippet in snippets(page)]


def params(found: list[Snippet]) -> list[pytest.ParameterSet]:
    return [pytest.param(snippet, id=snippet.where) for snippet in found]


def marked(test: str) -> list[Snippet]:
    """The site's snippets that ``test`` runs (at least one)."""
    found = [snippet for snippet in site_snippets() if snippet.tested_by == test]
    assert found, f"no snippet says <!-- tested-by: {test} -->"
    return found


def run(snippet: Snippet, namespace: dict[str, Any] | None = None) -> dict[str, Any]:
    namespace = {"__name__": "__docs__", **(namespace or {})}
    exec(compile(snippet.code, snippet.where, "exec"), namespace)
    return namespace


# What each snippet is, and that it parses


@pytest.mark.parametrize("snippet", params(site_snippets()))
def test_every_snippet_is_run_or_says_why_not(snippet: Snippet) -> None:
    found = MARKS.fullmatch(snippet.mark or "")
    assert found, (
        f"{snippet.where}: the line before ```python must be <!-- runnable -->, "
        "<!-- tested-by: test_name --> or <!-- not-runnable: why -->"
    )
    if found["module"]:
        module = (ROOT / found["module"]).read_text("utf-8")
        assert f"def {found['test']}(" in module, f"{snippet.where}: no {found['test']}"
        assert Path(snippet.where.split("#")[0]).name in module  # it reads the page
    elif found["test"]:
        test = globals().get(found["test"])
        assert callable(test), f"{snippet.where}: no {found['test']} in {__name__}"
        assert f'marked("{found["test"]}")' in inspect.getsource(test)
    if found["why"]:
        assert len(found["why"].split()) >= 3, f"{snippet.where}: say why it cannot run"


def test_the_readme_snippets_are_the_sites() -> None:
    site = {snippet.code for snippet in site_snippets()}
    readme = snippets(ROOT / "README.md")
    assert readme
    for snippet in readme:
        assert snippet.code in site, f"{snippet.where} is not a snippet of the site, word for word"


@pytest.mark.parametrize("snippet", params([*snippets(ROOT / "README.md"), *site_snippets()]))
def test_python_snippet_compiles(snippet: Snippet) -> None:
    compile(snippet.code, snippet.where, "exec")


@pytest.mark.parametrize(
    "snippet", params([snippet for snippet in site_snippets() if snippet.mark == "runnable"])
)
def test_runnable_snippet(snippet: Snippet) -> None:
    namespace = run(snippet)
    for value in namespace.values():  # what the snippet made and left open
        close = getattr(value, "close", None)
        if callable(close) and hasattr(value, "get") and not isinstance(value, type):
            result = close()
            if inspect.isawaitable(result):
                asyncio.run(result)  # type: ignore[arg-type]


# The site


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="mkdocs is not installed")
def test_site_builds_strictly(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "index.html").is_file()
    for backend in ("stores", "redis", "mongo", "mysql", "postgres"):
        reference = (tmp_path / "reference" / backend / "index.html").read_text("utf-8")
        assert ":class:" not in reference  # the docstrings' Sphinx roles shown as code
    command = (tmp_path / "command" / "index.html").read_text("utf-8")
    assert "purge-expired" in command  # generated from the click definitions
    assert "UNSET" not in command  # no click internals shown as a default


# The command lines and config files of the site

BLOCK = re.compile(r"^```(?P<lang>sh|console|toml)\n(?P<body>.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(lang: str) -> list[tuple[str, str]]:
    found = []
    for page in sorted(DOCS.rglob("*.md")):
        for match in BLOCK.finditer(page.read_text("utf-8")):
            if match["lang"] == lang:
                found.append((str(page.relative_to(ROOT)), match["body"]))
    return found


def command_lines() -> list[pytest.ParameterSet]:
    lines = []
    for where, body in blocks("sh"):
        for line in body.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            for start, word in enumerate(words):
                if word.endswith("token-session") and not word.startswith("'"):
                    lines.append(pytest.param(words[start + 1 :], id=f"{where}: {line[:60]}"))
                    break
    return lines


@pytest.mark.parametrize("words", command_lines())
def test_the_command_lines_parse(words: list[str]) -> None:
    """Each ``token-session ...`` line of the site names a command, and its options and
    arguments parse as the command reads them (nothing is run)."""
    import click

    from token_session.cli.app import cli

    top = click.Context(cli)
    if words and words[0] == "--debug":
        words = words[1:]
    command = cli.get_command(top, words[0])
    assert command is not None, f"no command {words[0]}"
    command.make_context(words[0], words[1:], parent=top)  # a usage error raises


def test_the_demo_command_runs() -> None:
    """The home page's first command, on the base install's memory store."""
    command = Path(sys.executable).parent / "token-session"
    result = subprocess.run([command, "demo"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "sessions left: 0" in result.stdout


@pytest.mark.parametrize(
    ("where", "body"), blocks("toml"), ids=[where for where, _ in blocks("toml")]
)
def test_the_config_files_name_store_options_that_exist(where: str, body: str) -> None:
    from token_session.stores import from_url

    config = tomllib.loads(body)
    assert config
    for table in config.values():
        options = {key: value for key, value in table.items() if key != "url"}
        from_url(table["url"], **options).close()  # options are checked before any I/O


# The snippets that run against the real services


@contextlib.contextmanager
def served(app: Any) -> Iterator[str]:
    """A WSGI app on a loopback port, its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


@dataclass
class RedisKeys:
    """The tests' Redis (``url``, a ``client``); the keys in ``written`` are deleted after."""

    url: str
    client: Any
    written: set[str]


@pytest.fixture
def redis_keys(redis_url: str) -> Iterator[RedisKeys]:
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    keys = RedisKeys(redis_url, client, set())
    yield keys
    for key in keys.written:
        client.delete(key)
    client.close()


@pytest.fixture
def guide_env(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> str:
    """The share-login guide's environment: the tests' Redis and the Express secret."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("SESSION_SECRET", "s3cret")
    return "s3cret"


def test_share_login_fastapi_half(guide_env: str, redis_keys: RedisKeys) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    for snippet in marked("test_share_login_fastapi_half"):
        app = run(snippet)["app"]
        with TestClient(app) as browser:
            assert browser.get("/me").json() == {"user": None, "cart": []}
            assert "connect.sid" not in browser.cookies  # save_uninitialized=False
            assert browser.post("/cart", params={"item": "apple"}).json() == {"cart": ["apple"]}
            sid = cookie_sid(browser.cookies["connect.sid"], guide_env)
            redis_keys.written.add(f"sess:{sid}")
            assert '"cart":["apple"]' in redis_keys.client.get(f"sess:{sid}")
            assert browser.get("/me").json()["cart"] == ["apple"]
            browser.post("/logout")
            assert redis_keys.client.exists(f"sess:{sid}") == 0
            assert browser.get("/me").json() == {"user": None, "cart": []}


def express_half(port: int, folder: Path) -> subprocess.Popen[bytes]:
    """The share-login guide's Express half, as it is, under node with the fixtures' packages
    (``express`` is express 5, which the fixtures keep under an alias)."""
    from .node import ensure_node_project

    project = ensure_node_project()
    page = (DOCS / "guides" / "share-login.md").read_text("utf-8")
    code = re.findall(r"^```js\n(.*?)^```", page, re.MULTILINE | re.DOTALL)[0]
    (folder / "node_modules").mkdir()
    (folder / "node_modules" / "express").symlink_to(project / "node_modules" / "express5")
    (folder / "app.js").write_text(code, "utf-8")
    env = {**os.environ, "PORT": str(port), "NODE_PATH": str(project / "node_modules")}
    return subprocess.Popen(["node", "app.js"], cwd=folder, env=env, stderr=subprocess.PIPE)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.node
def test_share_login_flask_half(guide_env: str, redis_keys: RedisKeys, tmp_path: Path) -> None:
    """The guide's "Try it": log in on its Express half, the Flask half sees who, logs out."""
    pytest.importorskip("flask")
    port = free_port()
    express = express_half(port, tmp_path)
    try:
        for snippet in marked("test_share_login_flask_half"):
            app = run(snippet)["app"]
            flask_client = app.test_client()
            assert flask_client.get("/me").json == {"user": None}
            assert flask_client.get_cookie("connect.sid") is None  # save_uninitialized=False
            with httpx.Client(timeout=10) as browser:
                deadline = time.monotonic() + 20
                while True:
                    try:
                        login = browser.post(f"http://127.0.0.1:{port}/login?user=ada")
                        break
                    except httpx.TransportError:
                        assert express.poll() is None, express.stderr.read()  # type: ignore[union-attr]
                        assert time.monotonic() < deadline, "the Express half did not listen"
                        time.sleep(0.1)
                assert login.json() == {"user": "ada"}
                cookie = browser.cookies["connect.sid"]
            redis_keys.written.add(f"sess:{cookie_sid(cookie, guide_env)}")
            flask_client.set_cookie("connect.sid", cookie)
            assert flask_client.get("/me").json == {"user": "ada"}  # Python sees ada
            assert flask_client.post("/logout").json == {"user": None}
            assert redis_keys.client.exists(f"sess:{cookie_sid(cookie, guide_env)}") == 0
    finally:
        express.terminate()
        express.wait(timeout=10)


def test_web_asgi_snippet(redis_url: str, redis_keys: RedisKeys) -> None:
    pytest.importorskip("fastapi")
    from fastapi import Request
    from fastapi.testclient import TestClient

    async def visit(request: Request) -> dict[str, int]:
        request.session["visits"] = request.session.get("visits", 0) + 1
        return {"visits": request.session["visits"]}

    for snippet in marked("test_web_asgi_snippet"):
        code = snippet.code.replace('"redis://127.0.0.1:6379/0"', repr(redis_url))
        app = run(Snippet(snippet.where, snippet.mark, code))["app"]
        visit.__annotations__["request"] = Request  # a real class, not this module's string
        app.post("/visit")(visit)
        with TestClient(app, base_url="https://app.test") as browser:
            assert browser.post("/visit").json() == {"visits": 1}
            sid = cookie_sid(browser.cookies["connect.sid"], "current secret")
            redis_keys.written.add(f"sess:{sid}")
            assert browser.post("/visit").json() == {"visits": 2}
            assert '"visits":2' in redis_keys.client.get(f"sess:{sid}")
            # a cookie the previous secret signed is still read
            browser.cookies.clear()
            browser.cookies.set("connect.sid", signed_cookie(sid, "previous secret"))  # type: ignore[arg-type]
            assert browser.post("/visit").json() == {"visits": 3}


def test_web_flask_snippet(redis_url: str, redis_keys: RedisKeys) -> None:
    """The Flask one-liner (the README's, the home page's and the web page's): a session
    stored on the real Redis once it has data, none for a visitor who leaves none."""
    flask = pytest.importorskip("flask")
    for snippet in marked("test_web_flask_snippet"):
        code = snippet.code.replace('"redis://127.0.0.1:6379/0"', repr(redis_url))
        app = run(Snippet(snippet.where, snippet.mark, code))["app"]

        def login() -> dict[str, str]:
            flask.session["user"] = "ada"
            return {"user": "ada"}

        app.add_url_rule("/login", view_func=login, methods=["POST"])

        browser = app.test_client()
        assert browser.get("/").status_code == 404
        assert browser.get_cookie("connect.sid") is None  # nothing stored for a visitor
        browser.post("/login")
        value = browser.get_cookie("connect.sid").value
        secret = re.search(r'secret="([^"]*)"', snippet.code)[1]  # type: ignore[index]
        sid = cookie_sid(value, secret)
        redis_keys.written.add(f"sess:{sid}")
        assert '"user":"ada"' in redis_keys.client.get(f"sess:{sid}")


def test_web_wsgi_snippet(mysql_url: str) -> None:
    """The WSGI snippet's MySQL URL names a database of its own; here a scratch one."""
    from werkzeug.test import Client

    from token_session.stores import from_url

    from .databases import scratch_mysql_database

    def inner(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["token_session"]["user"] = "ada"
        start_response("200 OK", [])
        return [b""]

    for snippet in marked("test_web_wsgi_snippet"):
        with scratch_mysql_database(mysql_url, "ts_docs") as args:
            url = f"mysql://{args['user']}@{args['host']}:{args['port']}/{args['database']}"
            code = snippet.code.replace('"mysql://root@127.0.0.1/app"', repr(url))
            assert code != snippet.code
            wsgi = run(Snippet(snippet.where, snippet.mark, code), {"app": inner})["app"]
            response = Client(wsgi).get("/")
            value = response.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
            sid = cookie_sid(value, "s")
            assert sid is not None
            with from_url(url) as store:
                assert store.get(sid)["user"] == "ada"  # type: ignore[index]
            wsgi.store.close()


@pytest.mark.node
def test_testing_page_snippets(
    guide_env: str,
    redis_keys: RedisKeys,
    mongo_url: str,
    express_app: Callable[..., Any],
    node_store: Callable[..., Any],
) -> None:
    """The testing page's tests, run with the plugin's fixtures, the tests' MongoDB as
    ``mongo_url``, and as ``my_app_url`` the share-login guide's Flask half (the same Redis,
    prefix and secret ``s``)."""
    pytest.importorskip("flask")
    guide = (DOCS / "guides" / "share-login.md").read_text("utf-8")
    flask_half = next(code for code in SNIPPET.findall(guide) if "flask.Flask(" in code[1])
    os.environ["SESSION_SECRET"] = "s"  # restored by guide_env's monkeypatch
    app = run(Snippet("share-login.md (Flask)", None, flask_half[1]))["app"]
    seen: list[str] = []

    def recording(environ: dict[str, Any], start_response: Any) -> Any:
        cookie = environ.get("HTTP_COOKIE", "").partition("connect.sid=")[2].split(";")[0]
        seen.append(f"sess:{cookie_sid(cookie, 's')}")
        return app(environ, start_response)

    ran = []
    with served(recording) as my_app_url:
        fixtures = {
            "express_app": express_app,
            "node_store": node_store,
            "my_app_url": my_app_url,
            "mongo_url": mongo_url,
        }
        for snippet in marked("test_testing_page_snippets"):
            code = snippet.code.replace('"redis://127.0.0.1:6379/0"', repr(redis_keys.url))
            namespace = run(Snippet(snippet.where, snippet.mark, code))
            for name, test in namespace.items():
                if name.startswith("test_") and callable(test):
                    wanted = inspect.signature(test).parameters
                    try:
                        test(**{parameter: fixtures[parameter] for parameter in wanted})
                    finally:
                        redis_keys.written.update(seen)
                    ran.append(name)
    assert len(ran) >= 2, ran
    assert seen and seen[-1] != "sess:None"  # the Flask half saw Express's login
