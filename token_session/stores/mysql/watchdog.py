"""How the blocking store bounds a statement without socket timeouts: :class:`Watchdog`.

A socket with a timeout makes CPython poll it before every send and receive (a system call
each); the store's sockets block instead, and a thread shuts down the socket of a statement
still running when its operation's time is up: the blocked read or write returns at once,
and the operation fails as timed out.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import deque
from typing import Any

from .connections import Deadline

__all__ = ["BUSY", "Watchdog"]

# held while a statement's connection is marked busy or unmarked, and while the watchdog
# shuts one down: it never shuts down a connection given back (and maybe taken by another
# operation)
BUSY = threading.Lock()


class Watchdog:
    """The deadlines of a store's operations, watched by one thread (started when needed, it
    ends after a timeout with nothing to watch). Every operation has the same timeout, so
    they are due in the order they started: the thread sleeps until the first one not over."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        self._deadlines: deque[Deadline] = deque()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def watch(self, deadline: Deadline) -> None:
        # no lock: appends are atomic, and deadlines queued out of order by threads racing
        # here are microseconds apart
        self._deadlines.append(deadline)
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._stop = threading.Event()
                    self._thread = threading.Thread(
                        target=self._patrol,
                        args=(self._stop,),
                        name="token-session-mysql-watchdog",
                        daemon=True,
                    )
                    self._thread.start()

    def over(self, deadline: Deadline) -> None:
        deadline.at = 0.0
        deadlines = self._deadlines
        if len(deadlines) > 64:  # those over are dropped by the thread, or here in bulk
            with self._lock:
                while deadlines and deadlines[0].at == 0.0:
                    deadlines.popleft()

    def close(self) -> None:
        with self._lock:
            self._stop.set()
            self._thread = None

    def _patrol(self, stop: threading.Event) -> None:
        deadlines, pause = self._deadlines, self.timeout
        while not stop.wait(pause):
            with self._lock:
                now = time.monotonic()
                while deadlines and deadlines[0].at <= now:
                    _stop_statement(deadlines.popleft())
                if not deadlines and pause >= self.timeout and not stop.is_set():
                    # a timeout with nothing to watch: the next watch starts a thread again,
                    # unless one was queued (without the lock) before it could see this
                    self._thread = None
                    if not deadlines:
                        return
                    self._thread = threading.current_thread()
                pause = deadlines[0].at - now if deadlines else self.timeout


def _stop_statement(deadline: Deadline) -> None:
    with BUSY:
        connection: Any = deadline.busy
        sock = None if connection is None else connection._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
