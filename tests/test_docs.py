"""The documentation site builds without a warning, and its runnable snippets run.

A snippet is runnable when the line before its ```python fence is ``<!-- runnable -->``: it
must run as it is, on the base install (the memory store), in a namespace of its own.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RUNNABLE = re.compile(r"^<!-- runnable -->\n```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def runnable_snippets() -> list[pytest.ParameterSet]:
    snippets = []
    for page in sorted(DOCS.rglob("*.md")):
        for number, match in enumerate(RUNNABLE.finditer(page.read_text("utf-8")), 1):
            where = f"{page.relative_to(DOCS)}#{number}"
            snippets.append(pytest.param(where, match.group(1), id=where))
    return snippets


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


PYTHON = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def python_snippets() -> list[pytest.ParameterSet]:
    snippets = []
    for page in [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]:
        for number, match in enumerate(PYTHON.finditer(page.read_text("utf-8")), 1):
            where = f"{page.relative_to(ROOT)}#{number}"
            snippets.append(pytest.param(where, match.group(1), id=where))
    return snippets


@pytest.mark.parametrize(("where", "code"), python_snippets())
def test_python_snippet_compiles(where: str, code: str) -> None:
    compile(code, where, "exec")  # those that need a server are not run, but must parse


def test_there_are_runnable_snippets() -> None:
    assert len(runnable_snippets()) >= 3


@pytest.mark.parametrize(("where", "code"), runnable_snippets())
def test_runnable_snippet(where: str, code: str) -> None:
    exec(compile(code, where, "exec"), {"__name__": "__docs__"})


def guide_app(kind: str) -> dict[str, object]:
    """The share-login guide's FastAPI or Flask half (the block that makes ``kind``), run on
    the memory store with the secret the guide reads from the environment."""
    page = (DOCS / "guides" / "share-login.md").read_text("utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", page, re.MULTILINE | re.DOTALL)
    code = next(block for block in blocks if f"app = {kind}(" in block)
    redis = 'os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), prefix="sess:"'
    assert redis in code
    code = code.replace(redis, '"memory://"').replace('os.environ["SESSION_SECRET"]', '"s3cret"')
    namespace: dict[str, object] = {"__name__": "__docs__"}
    exec(compile(code, f"share-login.md ({kind})", "exec"), namespace)
    return namespace


def test_share_login_fastapi_half() -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    app = guide_app("FastAPI")["app"]
    with TestClient(app) as browser:  # type: ignore[arg-type]
        assert browser.get("/me").json() == {"user": None, "cart": []}
        assert "connect.sid" not in browser.cookies  # save_uninitialized=False
        assert browser.post("/cart", params={"item": "apple"}).json() == {"cart": ["apple"]}
        assert browser.cookies["connect.sid"].startswith("s%3A")
        assert browser.get("/me").json()["cart"] == ["apple"]
        browser.post("/logout")
        assert browser.get("/me").json() == {"user": None, "cart": []}


def test_share_login_flask_half() -> None:
    pytest.importorskip("flask")
    app = guide_app("flask.Flask")["app"]
    browser = app.test_client()  # type: ignore[attr-defined]
    assert browser.get("/me").json == {"user": None}
    assert browser.get_cookie("connect.sid") is None  # save_uninitialized=False
    assert browser.post("/logout").json == {"user": None}


def web_snippet(marker: str, url: str, namespace: dict[str, object]) -> dict[str, object]:
    """The web middleware page's snippet holding ``marker``, its store ``url`` made memory://."""
    page = (DOCS / "web.md").read_text("utf-8")
    code = next(block for block in PYTHON.findall(page) if marker in block)
    assert f'"{url}"' in code
    namespace.setdefault("__name__", "__docs__")
    exec(compile(code.replace(f'"{url}"', '"memory://"'), f"web.md ({marker})", "exec"), namespace)
    return namespace


def test_web_asgi_snippet() -> None:
    pytest.importorskip("fastapi")
    from fastapi import Request
    from fastapi.testclient import TestClient

    app = web_snippet("FastAPI(lifespan", "redis://127.0.0.1:6379/0", {})["app"]

    async def visit(request: Request) -> dict[str, int]:
        request.session["visits"] = request.session.get("visits", 0) + 1
        return {"visits": request.session["visits"]}

    visit.__annotations__["request"] = Request  # a real class, not this module's string
    app.post("/visit")(visit)  # type: ignore[attr-defined]

    with TestClient(app, base_url="https://app.test") as browser:  # type: ignore[arg-type]
        assert browser.post("/visit").json() == {"visits": 1}
        assert browser.post("/visit").json() == {"visits": 2}


def test_web_flask_and_wsgi_snippets() -> None:
    pytest.importorskip("flask")
    from werkzeug.test import Client

    flask_app = web_snippet("ExpressSessionInterface(", "redis://127.0.0.1:6379/0", {})["app"]
    assert flask_app.test_client().get("/").status_code == 404  # type: ignore[attr-defined]

    def inner(environ: dict[str, object], start_response: object) -> list[bytes]:
        session = environ["token_session"]
        session["user"] = "ada"  # type: ignore[index]
        start_response("200 OK", [])  # type: ignore[operator]
        return [b""]

    wsgi = web_snippet("web.wsgi import", "mysql://root@127.0.0.1/app", {"app": inner})["app"]
    response = Client(wsgi).get("/")  # type: ignore[arg-type]
    assert response.headers["Set-Cookie"].startswith("connect.sid=s%3A")
