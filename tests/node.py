"""The real Node packages, installed from fixtures/node and driven from the tests."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from token_session.compat.cookie import to_ms

ROOT = Path(__file__).resolve().parent.parent
NODE_PROJECT = ROOT / "fixtures" / "node"
GOLDEN = ROOT / "fixtures" / "golden"

_install_lock = threading.Lock()


class NodeUnavailableError(RuntimeError):
    pass


def ensure_node_project() -> Path:
    """``npm ci`` the pinned Node packages (and the older store versions in ``legacy/``)
    unless node_modules already matches the lock file."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise NodeUnavailableError(
                f"`{tool}` is not on PATH: the interop tests drive the real Node packages. "
                "Install Node.js 20+ with npm."
            )
    with _install_lock:
        for project in (NODE_PROJECT, NODE_PROJECT / "legacy"):
            lock = project / "package-lock.json"
            installed = project / "node_modules" / ".package-lock.json"
            if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
                continue
            result = subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund"],
                cwd=project,
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                raise NodeUnavailableError(f"npm ci failed in {project}:\n{result.stderr}")
    return NODE_PROJECT


def number_text(value: int | float) -> str:
    """Text that JS ``Number()`` reads as the same double Python holds."""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    return str(int(value))


def tag(value: Any) -> Any:
    """A Python value in the tagged form ops.js rebuilds the same JS value from."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return {"n": number_text(value)}
    if isinstance(value, (list, tuple)):
        return [tag(item) for item in value]
    if isinstance(value, dict):
        return {"o": [[key, tag(item)] for key, item in value.items()]}
    if isinstance(value, datetime):
        return {"d": to_ms(value)}
    raise TypeError(f"cannot tag {type(value).__name__}")


class NodeProcess:
    """One long-lived ``node SCRIPT`` from fixtures/node: a JSON request per line, a JSON
    answer per line, in order."""

    def __init__(self, script: str) -> None:
        project = ensure_node_project()
        self.script = script
        self._proc = subprocess.Popen(
            ["node", script],
            cwd=project,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        self._lock = threading.Lock()

    def ask(self, op: str, **request: Any) -> dict[str, Any]:
        """The answer ``{"ok": True, "out": ...}`` or ``{"ok": False, "error": ...}``."""
        line = json.dumps({"op": op, **request}, ensure_ascii=True) + "\n"
        with self._lock:
            assert self._proc.stdin is not None and self._proc.stdout is not None
            self._proc.stdin.write(line)
            self._proc.stdin.flush()
            answer = self._proc.stdout.readline()
        if not answer:
            raise NodeUnavailableError(f"node {self.script} exited with {self._proc.wait()}")
        result: dict[str, Any] = json.loads(answer)
        return result

    def out(self, op: str, **request: Any) -> Any:
        """The answer's value; AssertionError if Node threw."""
        answer = self.ask(op, **request)
        if not answer["ok"]:
            raise AssertionError(f"node {op} failed: {answer['error']}")
        return answer["out"]

    def close(self) -> None:
        if self._proc.stdin:
            self._proc.stdin.close()
        self._proc.wait(timeout=30)
        if self._proc.stdout:
            self._proc.stdout.close()


class NodeOracle(NodeProcess):
    """ops.js: JSON, cookies, signatures and token-session's stored records."""

    def __init__(self) -> None:
        super().__init__("oracle.js")


class NodeStore:
    """One real Node store opened in a :class:`NodeStoreDriver` (see store-driver.js)."""

    def __init__(self, driver: NodeProcess, name: str, options: dict[str, Any]) -> None:
        self.driver = driver
        self.name = name
        self.handle = driver.out("open", store=name, options=options)

    def call(self, op: str, **request: Any) -> Any:
        return self.driver.out(op, handle=self.handle, **request)

    def call_answer(self, op: str, **request: Any) -> dict[str, Any]:
        """The whole answer, {"ok": False, "error": ...} included."""
        return self.driver.ask(op, handle=self.handle, **request)

    def get(self, sid: str) -> str | None:
        """The session Node's store returns, as the JSON text JSON.stringify gives it."""
        text: str | None = self.call("get", sid=sid)
        return text

    def set(self, sid: str, session_json: str, shape: str = "express") -> None:
        """Store a session given as JSON text, shaped as express-session or token-session
        hands it to the store ("express" / "plain")."""
        self.call("set", sid=sid, session=session_json, shape=shape)

    def touch(self, sid: str, session_json: str, shape: str = "express") -> None:
        self.call("touch", sid=sid, session=session_json, shape=shape)

    def destroy(self, sid: str) -> None:
        self.call("destroy", sid=sid)

    def token_session(self, call: str, **request: Any) -> Any:
        """A token-session 1.0.0 call over this store (data as JSON text)."""
        return self.call("tokenSession", call=call, **request)

    def close(self) -> None:
        self.driver.out("close", handle=self.handle)


class NodeStoreDriver(NodeProcess):
    """store-driver.js: real Node session stores, opened by factory name."""

    def __init__(self) -> None:
        super().__init__("store-driver.js")

    def open(self, name: str, **options: Any) -> NodeStore:
        return NodeStore(self, name, options)
