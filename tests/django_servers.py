"""The two apps of the Django end-to-end tests as subprocesses: the Django project of
tests/django_app under gunicorn (WSGI) or uvicorn (ASGI), and fixtures/node/django-app.js
(Express with passport) under node, each over one store given as URL and options."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from .node import NodeUnavailableError, ensure_node_project
from .web_apps import EXPRESS_OPTIONS, Server

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class _Process(Server):
    _proc: subprocess.Popen[str]

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


class DjangoServer(_Process):
    """tests/django_app under gunicorn (``kind="wsgi"``) or uvicorn (``kind="asgi"``)."""

    def __init__(self, kind: str, store_url: str, store_options: dict[str, Any], db: Path) -> None:
        port = _free_port()
        if kind == "wsgi":
            command = ["gunicorn", "tests.django_app.wsgi:application", "-b", f"127.0.0.1:{port}"]
            command += ["-w", "1", "--threads", "4", "--log-level", "warning"]
        else:
            command = ["uvicorn", "tests.django_app.asgi:application", "--port", str(port)]
            command += ["--host", "127.0.0.1", "--lifespan", "off", "--log-level", "warning"]
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.django_app.settings",
            "TS_DJANGO_STORE": store_url,
            "TS_DJANGO_STORE_OPTIONS": json.dumps(store_options),
            "TS_DJANGO_DB": str(db),
        }
        self._proc = subprocess.Popen(
            [sys.executable, "-m", *command], cwd=ROOT, env=env, stdin=subprocess.PIPE, text=True
        )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(self.url + "/csrf", timeout=2)
                return
            except httpx.TransportError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError(f"{kind} Django server did not start") from None
                time.sleep(0.05)


class ExpressPassportServer(_Process):
    """django-app.js: express 4 or 5, express-session 1.19.0 and passport 0.7.0."""

    def __init__(self, express: str, store: str, store_options: dict[str, Any]) -> None:
        config = {"express": express, "store": store, "storeOptions": store_options}
        config["session"] = EXPRESS_OPTIONS
        self._proc = subprocess.Popen(
            ["node", "django-app.js", json.dumps(config)],
            cwd=ensure_node_project(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise NodeUnavailableError(f"django-app.js exited with {self._proc.wait()}")
        self.url = f"http://127.0.0.1:{json.loads(line)['port']}"
