"""The MongoDB server the tests start when none is given: tests/mongo_launcher.py (nx-27017
with our fixes and its self-check) in a subprocess on a free 127.0.0.1 port.

    with start_mongo_server() as url:   # mongodb://127.0.0.1:PORT/
        ...

:class:`MongoServer` is the same thing with ``stop``/``start`` for tests that take the
server down mid-run: it comes back on the same port with the same data, as a restarted
mongod would. Nothing is left behind: the process is ended by its pid and the data and log
directory is removed.
"""

from __future__ import annotations

import contextlib
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

LAUNCHER = Path(__file__).resolve().with_name("mongo_launcher.py")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


class MongoServerError(RuntimeError):
    """The launcher did not come up (its self-check failed, or it died, or it hung)."""


class MongoServer:
    """One launcher process over a data directory; ``start`` waits for its ``READY`` line,
    printed only after the self-check passed."""

    def __init__(
        self,
        root: Path,
        *,
        ttl_interval: float = 60.0,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.log_path = root / "server.log"
        self.ttl_interval = ttl_interval
        self.extra_args = extra_args
        self.port = 0  # chosen by the launcher on the first start, kept for restarts
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        if not self.port:
            raise MongoServerError("the server has not been started")
        return f"mongodb://127.0.0.1:{self.port}/"

    @property
    def pid(self) -> int | None:
        """The launcher's process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def start(self, timeout: float = START_TIMEOUT) -> str:
        if self.running:
            raise MongoServerError("the server is already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            str(LAUNCHER),
            "--port",
            str(self.port),
            "--data",
            str(self.data_dir),
            "--ttl-interval",
            str(self.ttl_interval),
            "--exit-on-stdin-eof",  # should this process die, the server stops too
            *self.extra_args,
        ]
        with self.log_path.open("a", encoding="utf-8") as log:
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                encoding="utf-8",
            )
        lines: queue.Queue[str | None] = queue.Queue()
        proc = self._proc

        def read_stdout() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)

        self._reader = threading.Thread(target=read_stdout, name="mongo-launcher-out", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stop()
                raise MongoServerError(
                    f"the launcher did not report READY within {timeout:.0f} s:\n{self.log()}"
                )
            try:
                line = lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if line is None:
                code = proc.wait(timeout=STOP_TIMEOUT)
                self.stop()
                raise MongoServerError(
                    f"the launcher exited with status {code} before serving:\n{self.log()}"
                )
            if line.startswith("READY "):
                self.port = int(line.split()[1])
                return self.url

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM to the launcher's pid, then SIGKILL if it has not exited in ``timeout``."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        if proc.stdout is not None:
            proc.stdout.close()
        if self._reader is not None:
            self._reader.join(timeout=timeout)
            self._reader = None

    def restart(self) -> str:
        self.stop()
        return self.start()

    @classmethod
    @contextlib.contextmanager
    def temporary(
        cls, *, ttl_interval: float = 60.0, extra_args: tuple[str, ...] = ()
    ) -> Iterator[MongoServer]:
        """A started server over a fresh temporary directory, removed afterwards."""
        root = Path(tempfile.mkdtemp(prefix="token-session-mongo-"))
        server = cls(root, ttl_interval=ttl_interval, extra_args=extra_args)
        try:
            server.start()
            yield server
        finally:
            server.stop()
            shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def start_mongo_server(*, ttl_interval: float = 60.0) -> Iterator[str]:
    """Start the fixed server, yield its ``mongodb://127.0.0.1:PORT/`` URL, stop it.

    ``ttl_interval`` is the TTL monitor's period in seconds; the default is mongod's 60, so
    that tests meet the timing a real server has (a test of the monitor itself asks for 1)."""
    with MongoServer.temporary(ttl_interval=ttl_interval) as server:
        yield server.url
