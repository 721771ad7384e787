"""Network faults for the fault-injection tests: :class:`TcpProxy`, a loopback TCP forwarder
in front of a server that passes, stalls (the connections stay open, nothing moves: what a
SIGSTOPped or overloaded server looks like), cuts the open connections, or stops listening.

It runs on threads, so blocking and asyncio tests use it alike, and it only ever forwards
to a loopback address.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import threading
import time
from collections.abc import Iterator

__all__ = ["LOOPBACK", "TcpProxy", "elapsed", "sigstop"]

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


class TcpProxy:
    """Forwards ``127.0.0.1:port`` to ``target``; the port stays the same across
    :meth:`stop` and :meth:`start`.

    - :meth:`stall`: stop forwarding, both ways (or only the server's replies), on open and
      new connections (new ones are still accepted, as the kernel of a stopped server
      accepts them); :meth:`resume` forwards what was held back.
    - :meth:`cut`: close every open connection (``reset``: with a TCP RST), keep listening.
    - :meth:`stop`: cut, and refuse new connections until :meth:`start`.
    """

    def __init__(self, host: str, port: int) -> None:
        if host not in LOOPBACK:
            raise ValueError(f"the proxy forwards to loopback only, not {host!r}")
        self.target = (host, port)
        self.port = 0
        self.accepted = 0
        self._requests = threading.Event()  # client to server
        self._replies = threading.Event()  # server to client
        self._requests.set()
        self._replies.set()
        self._running = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None

    def __enter__(self) -> TcpProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.resume()
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._running.set()
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stall(self, replies_only: bool = False) -> None:
        """Hold back what flows; ``replies_only``: requests still reach the server."""
        self._replies.clear()
        if not replies_only:
            self._requests.clear()

    def resume(self) -> None:
        self._requests.set()
        self._replies.set()

    @contextlib.contextmanager
    def stalled(self, replies_only: bool = False) -> Iterator[None]:
        self.stall(replies_only)
        try:
            yield
        finally:
            self.resume()

    def cut(self, reset: bool = False) -> int:
        """Close the open connections; how many client connections there were."""
        with self._lock:
            opened, self._sockets = self._sockets, []
        for end in opened:
            if reset:
                with contextlib.suppress(OSError):
                    end.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
            end.close()
        return len(opened) // 2

    def stop(self) -> None:
        """Refuse new connections and cut the open ones."""
        self._running.clear()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self.cut()
        time.sleep(0.1)  # the accept thread sees it

    def _accept(self, listener: socket.socket) -> None:
        while self._running.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
                self.accepted += 1
            for source, sink, flowing in (
                (client, upstream, self._requests),
                (upstream, client, self._replies),
            ):
                threading.Thread(
                    target=self._pump, args=(source, sink, flowing), daemon=True
                ).start()
        listener.close()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, flowing: threading.Event) -> None:
        try:
            while data := source.recv(65536):
                while not flowing.wait(0.05):
                    if source.fileno() < 0:
                        return  # cut while stalled
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def elapsed() -> Iterator[list[float]]:
    """``with elapsed() as took:`` ... ``took[0]`` is the seconds the block took."""
    took: list[float] = []
    start = time.monotonic()
    try:
        yield took
    finally:
        took.append(time.monotonic() - start)


def _stopped(pid: int) -> bool:
    """Every thread of ``pid`` is stopped (or the process is gone)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return True
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/stat") as stat:
                state = stat.read().rpartition(")")[2].split()[0]
        except (FileNotFoundError, IndexError):
            continue
        if state not in ("T", "t", "Z", "X"):
            return False
    return True


def sigstop(pid: int, timeout: float = 5.0) -> None:
    """SIGSTOP ``pid`` and return once all its threads have stopped: the signal is delivered
    asynchronously, and a server on another core answers a few more requests meanwhile.
    One that does not stop in time is sent SIGCONT again, so the test's clean-up can end it."""
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + timeout
    while not _stopped(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGCONT)
            raise AssertionError(f"process {pid} did not stop within {timeout} s")
        time.sleep(0.001)
