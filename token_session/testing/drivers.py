"""The Node side of token_session.testing: a store driver process (driver.js) and Express apps
(app.js), both run with ``node`` from the package's ``node/`` folder over the cached
packages."""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import tempfile
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from .install import NODE_FILES, NodeUnavailableError, node_env

# package -> major version -> the version pinned in node/package.json
STORES: dict[str, dict[str, str]] = {
    "connect-redis": {"9": "9.0.0", "7": "7.1.1", "6": "6.1.3"},
    "connect-mongo": {"6": "6.0.0", "4": "4.6.0"},
    "express-mysql-session": {"3": "3.0.3", "2": "2.1.8"},
    "connect-pg-simple": {"10": "10.0.0"},
    "connect-session-knex": {"5": "5.0.0"},
    "session-memory-store": {"0": "0.2.2"},
}
EXPRESS = {"4": "4.22.3", "5": "5.3.0"}


class NodeStoreError(RuntimeError):
    """The Node store answered with an error (its message)."""


def store_spec(package: str, version: str | int | None) -> tuple[str, str]:
    """``(package, major)`` for a package name and a version: ``9``, ``"9"``, ``"9.0.0"``
    or None for the newest pinned; ValueError naming what is pinned otherwise."""
    if "@" in package:
        package, version = package.split("@", 1)
    majors = STORES.get(package)
    if majors is None:
        raise ValueError(f"no Node store {package!r}; one of {', '.join(STORES)}")
    if version is None:
        return package, max(majors, key=int)
    major = str(version).split(".")[0]
    if major not in majors or ("." in str(version) and majors[major] != str(version)):
        pinned = ", ".join(f"{package}@{exact}" for exact in majors.values())
        raise ValueError(f"{package}@{version} is not pinned here; pinned: {pinned}")
    return package, major


class NodeProcess:
    """``node SCRIPT``: a JSON request per line in, a JSON answer per line out, in order.

    An answer that does not come within ``timeout`` seconds stops the process (the run
    fails, it does not hang); what node wrote on stderr is quoted when it exits."""

    def __init__(self, modules: Path, script: str, *args: str, timeout: float = 60) -> None:
        self.script = script
        self.timeout = timeout
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        self._proc = subprocess.Popen(
            ["node", str(NODE_FILES / script), *args],
            cwd=NODE_FILES,
            env=node_env(modules),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._lock = threading.Lock()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self._lines.put(line)
        self._lines.put("")  # end of output: the process exited

    def alive(self) -> bool:
        return self._proc.poll() is None

    def stderr(self) -> str:
        """What node has written on stderr so far (stores' logs, Express's errors)."""
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def _exited(self) -> NodeUnavailableError:
        status = self._proc.wait()
        said = self.stderr()[-3000:].strip()
        return NodeUnavailableError(
            f"node {self.script} exited with {status}" + (f":\n{said}" if said else "")
        )

    def readline(self) -> str:
        try:
            line = self._lines.get(timeout=self.timeout)
        except queue.Empty:
            self._proc.kill()
            self._proc.wait()
            raise NodeStoreError(
                f"node {self.script} did not answer within {self.timeout:g} s; stopped"
            ) from None
        if not line:
            raise self._exited()
        return line

    def ask(self, op: str, **request: Any) -> Any:
        line = json.dumps({"op": op, **request}, ensure_ascii=True) + "\n"
        with self._lock:
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.write(line)
                self._proc.stdin.flush()
            except OSError:
                raise self._exited() from None
            answer = json.loads(self.readline())
        if not answer["ok"]:
            raise NodeStoreError(f"node {op}: {answer['error']}")
        return answer["out"]

    def close(self) -> None:
        if self._proc.stdin is not None:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._stderr.close()


class NodeDriver:
    """driver.js for a whole run, started on first use and again if it stopped (a store
    that did not answer in time): one failure costs one test, not the rest of the run."""

    def __init__(self, modules: Path) -> None:
        self._modules = modules
        self._process: NodeProcess | None = None

    def process(self) -> NodeProcess:
        if self._process is None or not self._process.alive():
            if self._process is not None:
                self._process.close()
            self._process = NodeProcess(self._modules, "driver.js")
        return self._process

    def close(self) -> None:
        if self._process is not None:
            self._process.close()


def _text(value: Any) -> str:
    """Session data as the JSON text Node parses (datetimes as ``Date#toJSON``)."""
    if isinstance(value, str):
        return value
    from ..compat import dumps

    return dumps(value)


def _parsed(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class NodeStore:
    """One real Node store: ``set``/``get``/``touch``/``destroy``/``all``/``length``/``clear``
    go through the store's own methods; ``raw`` reads what the backend holds beside it.

    A session is a dict (or its JSON text). One with a ``cookie`` reaches the store as
    express-session hands it over (its cookie a ``Cookie``), one without as token-session
    does."""

    def __init__(self, driver: NodeProcess, package: str, major: str, **config: Any) -> None:
        self.package, self.major = package, major
        self.version = STORES[package][major]
        self._driver = driver
        self._handle = driver.ask("open", package=package, version=major, **config)

    def _call(self, op: str, **request: Any) -> Any:
        return self._driver.ask(op, handle=self._handle, **request)

    def set(self, sid: str, session: dict[str, Any] | str) -> None:
        self._call("set", sid=sid, session=_text(session))

    def get(self, sid: str) -> dict[str, Any] | None:
        """The session the Node store returns (None if none), parsed from its JSON text."""
        found: dict[str, Any] | None = _parsed(self.get_json(sid))
        return found

    def get_json(self, sid: str) -> str | None:
        """The session the Node store returns, as ``JSON.stringify`` writes it."""
        text: str | None = self._call("get", sid=sid)
        return text

    def touch(self, sid: str, session: dict[str, Any] | str) -> None:
        self._call("touch", sid=sid, session=_text(session))

    def destroy(self, sid: str) -> None:
        self._call("destroy", sid=sid)

    def all(self) -> Any:
        """What the store's ``all()`` gives (a list or an object by sid, as each store does)."""
        return _parsed(self._call("all"))

    def length(self) -> int:
        return int(self._call("length"))

    def clear(self) -> None:
        self._call("clear")

    def raw(self, sid: str) -> Any:
        """What the backend holds for ``sid`` (None if nothing): the Redis value (str), the
        Mongo document (``expires`` etc. as aware datetimes), the SQL row (a dict, every
        PostgreSQL column as the text the server sends), session-memory-store's object."""
        return _revive(_parsed(self._call("raw", sid=sid)))

    def close(self) -> None:
        self._call("close")

    def __repr__(self) -> str:
        return f"<NodeStore {self.package}@{self.version}>"


def _revive(value: Any) -> Any:
    """Extended JSON's dates (``{"$date": ...}``) as aware datetimes."""
    if isinstance(value, list):
        return [_revive(item) for item in value]
    if isinstance(value, dict):
        if list(value) == ["$date"] and isinstance(value["$date"], str):
            return datetime.fromisoformat(value["$date"].replace("Z", "+00:00"))
        return {key: _revive(item) for key, item in value.items()}
    return value


class ExpressApp:
    """A running Express app (app.js): ``url`` is its base URL; stopped by ``close()``.

    Routes: ``GET /session`` -> ``{"id", "session"}``; ``POST /session`` with a JSON object
    sets those keys; ``DELETE /session/KEY``; ``POST /session/regenerate``;
    ``DELETE /session`` destroys it."""

    def __init__(self, modules: Path, config: dict[str, Any]) -> None:
        self.secret: list[str] = list(_secrets(config["session"]["secret"]))
        self.cookie_name: str = config["session"].get("name", "connect.sid")
        self.express = EXPRESS[str(config["express"])]
        self._proc = NodeProcess(modules, "app.js", json.dumps(config))
        try:
            self.url = f"http://127.0.0.1:{json.loads(self._proc.readline())['port']}"
        except BaseException:
            self._proc.close()
            raise

    def logs(self) -> str:
        """What the app has written on stderr so far (a route's error, say)."""
        return self._proc.stderr()

    def close(self) -> None:
        self._proc.close()

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"<ExpressApp express@{self.express} {self.url}>"


def _secrets(secret: str | list[str]) -> list[str]:
    return [secret] if isinstance(secret, str) else secret
