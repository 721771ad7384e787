"""The same small app three times, on loopback ports: Express (web-app.js, express 4 or 5),
FastAPI under uvicorn and Flask under werkzeug, each with express-session's options."""

# no `from __future__ import annotations`: FastAPI reads the route annotations at runtime
import json
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from token_session.stores import AsyncStore, Store

from .node import NodeUnavailableError, ensure_node_project

_SNAKE = {
    "saveUninitialized": "save_uninitialized",
    "maxAge": "max_age",
    "httpOnly": "http_only",
    "sameSite": "same_site",
}


def snake_options(options: dict[str, Any]) -> dict[str, Any]:
    """express-session's options (cookie options included) as SessionOptions keywords."""
    snake = {_SNAKE.get(key, key): value for key, value in options.items()}
    if "cookie" in snake:
        snake["cookie"] = {_SNAKE.get(key, key): value for key, value in snake["cookie"].items()}
    return snake


EXPRESS_OPTIONS: dict[str, Any] = {
    "secret": ["new secret", "old secret"],
    "resave": False,
    "saveUninitialized": False,
    "rolling": True,
    "cookie": {"maxAge": 60_000, "sameSite": "lax", "priority": "high"},
}
PYTHON_OPTIONS = snake_options(EXPRESS_OPTIONS)


def _view(app: str, session: Any) -> dict[str, Any]:
    return {"app": app, "user": session.get("user"), "cart": session.get("cart", [])}


def fastapi_app(store: AsyncStore) -> Any:
    from fastapi import FastAPI, Request

    from token_session.web.asgi import SessionMiddleware, session_of

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await store.close()  # on the loop the store ran on

    app = FastAPI(lifespan=lifespan)
    app.add_middleware(SessionMiddleware, store=store, **PYTHON_OPTIONS)

    @app.get("/me")
    async def me(request: Request) -> dict[str, Any]:
        return _view("fastapi", request.session)

    @app.post("/login")
    async def login(request: Request, user: str) -> dict[str, Any]:
        session_of(request).regenerate()
        request.session["user"] = user
        return _view("fastapi", request.session)

    @app.post("/cart")
    async def cart(request: Request, item: str) -> dict[str, Any]:
        request.session["cart"] = [*request.session.get("cart", []), item]
        return _view("fastapi", request.session)

    @app.post("/logout")
    async def logout(request: Request) -> dict[str, Any]:
        session_of(request).destroy()
        return {"app": "fastapi", "user": None}

    return app


def flask_app(store: Store) -> Any:
    from flask import Flask, request, session

    from token_session.web.flask import ExpressSessionInterface

    app = Flask(__name__)
    app.session_interface = ExpressSessionInterface(store, **PYTHON_OPTIONS)

    @app.get("/me")
    def me() -> dict[str, Any]:
        return _view("flask", session)

    @app.post("/login")
    def login() -> dict[str, Any]:
        session.regenerate()  # type: ignore[attr-defined]
        session["user"] = request.args["user"]
        return _view("flask", session)

    @app.post("/cart")
    def cart() -> dict[str, Any]:
        session["cart"] = [*session.get("cart", []), request.args["item"]]
        return _view("flask", session)

    @app.post("/logout")
    def logout() -> dict[str, Any]:
        session.destroy()  # type: ignore[attr-defined]
        return {"app": "flask", "user": None}

    return app


class Server:
    """A running app: ``url`` to reach it, ``close()`` to stop it."""

    url: str

    def close(self) -> None:
        raise NotImplementedError


class UvicornServer(Server):
    def __init__(self, app: Any) -> None:
        import uvicorn

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        _wait_until(lambda: self._server.started, "uvicorn")

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


class WerkzeugServer(Server):
    def __init__(self, app: Any, on_close: Callable[[], None]) -> None:
        from werkzeug.serving import make_server

        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self._on_close = on_close

    def close(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)
        self._on_close()


class ExpressServer(Server):
    """web-app.js under node: express 4 or 5 over a store factory of fixtures/node/stores."""

    def __init__(self, express: str, store: str, store_options: dict[str, Any]) -> None:
        config = {"express": express, "store": store, "storeOptions": store_options}
        config["session"] = EXPRESS_OPTIONS
        self._proc = subprocess.Popen(
            ["node", "web-app.js", json.dumps(config)],
            cwd=ensure_node_project(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise NodeUnavailableError(f"web-app.js exited with {self._proc.wait()}")
        self.url = f"http://127.0.0.1:{json.loads(line)['port']}"

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def _wait_until(ready: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start within {timeout} s")
        time.sleep(0.01)
