"""How a blocking store waits for a reply: :class:`ReplySpin` polls the socket for a short
while before the store's read sleeps in the kernel.

A thread that sleeps in ``recv`` until the reply comes pays for being woken: on the two-core
virtual machines this project is measured on, a Redis round trip on loopback took 63 µs
asleep and 25 µs polling, for the same CPU time per call (the wake-up costs what the polling
does). Node's stores pay it too: their event loop sleeps in ``epoll_wait``.

Where replies take longer than the polling lasts (a server across a network, a commit that
waits for the disk), the polling is CPU spent for nothing: after three misses in a row the
spin stops polling for 64 calls, twice as many after each further miss (at most 4,096), and a
reply caught in time starts it again. On a single CPU it never polls, nor while another
thread waits for an answer too: the server would need the CPU the polling takes.
"""

from __future__ import annotations

import os
import select
import time
from threading import get_ident

from ..errors import InvalidArgumentError

__all__ = ["DEFAULT_SPIN", "ReplySpin", "ReplySpins", "answered", "answering", "check_spin"]

DEFAULT_SPIN = 0.0001  # seconds: a loopback round trip here, with room
_MISSES_BEFORE_PAUSE = 3
_FIRST_PAUSE = 64
_LONGEST_PAUSE = 4096


def _cpus() -> int:
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        return len(affinity(0))
    return os.cpu_count() or 1


# select.poll: not on Windows
_NEVER = _cpus() < 2 or not hasattr(select, "poll")
# the threads between sending a command and reading its answer (see answering())
_ANSWERING: set[int] = set()
if hasattr(os, "register_at_fork"):  # a child has none of its parent's other threads
    os.register_at_fork(after_in_child=_ANSWERING.clear)


def check_spin(value: object) -> float:
    """``spin`` as seconds: a number from 0 (never poll) to 0.01."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 0.01:
        raise InvalidArgumentError(
            f"spin must be seconds from 0 (no polling) to 0.01, not {value!r}"
        )
    return float(value)


def answering() -> None:
    """The calling thread sends a command and waits for the answer: while another thread
    does too, no thread polls. Pair with :func:`answered`."""
    _ANSWERING.add(get_ident())


def answered() -> None:
    _ANSWERING.discard(get_ident())


class ReplySpin:
    """Polls a socket for up to ``seconds`` (see the module's text), for one kind of call
    (see :class:`ReplySpins`)."""

    __slots__ = ("misses", "pause", "paused", "seconds")

    def __init__(self, seconds: float = DEFAULT_SPIN) -> None:
        self.seconds = 0.0 if _NEVER else check_spin(seconds)
        self.misses = 0
        self.pause = 0  # calls left without polling
        self.paused = _FIRST_PAUSE  # how long the next pause is

    def wait(self, fileno: int) -> None:
        """Return once ``fileno`` is readable or the time is up; the caller then reads as
        it would have (blocking, within its own timeout)."""
        if not self.seconds:
            return
        if self.pause > 0:  # > 0: threads that raced to count it down may leave it below
            self.pause -= 1
            return
        if len(_ANSWERING) > 1:
            # another thread waits for an answer too: its server needs the CPU more (with
            # 4 threads polling, 35 % fewer gets a second than none)
            return
        poller = select.poll()
        poller.register(fileno, select.POLLIN)
        poll, clock = poller.poll, time.perf_counter
        until = clock() + self.seconds
        while not poll(0):
            if clock() >= until:
                self._missed()
                return
        self.misses = 0
        self.paused = _FIRST_PAUSE

    def _missed(self) -> None:
        self.misses += 1
        if self.misses >= _MISSES_BEFORE_PAUSE:
            self.pause = self.paused
            self.paused = min(self.paused * 2, _LONGEST_PAUSE)


_KINDS = 64  # a store sends a handful of statements; more kinds share one spin


class ReplySpins:
    """A store's spins, one per kind of call (a command's name, a statement's SQL): a read
    that Redis or MySQL answers at once is polled for while the commit of a write that
    waits for the disk is not."""

    __slots__ = ("by_kind", "seconds", "shared")

    def __init__(self, seconds: float = DEFAULT_SPIN) -> None:
        self.seconds = 0.0 if _NEVER else check_spin(seconds)
        self.by_kind: dict[str, ReplySpin] = {}
        self.shared = ReplySpin(self.seconds)

    def __getitem__(self, kind: str) -> ReplySpin:
        spin = self.by_kind.get(kind)
        if spin is None:
            if len(self.by_kind) >= _KINDS:
                return self.shared
            spin = self.by_kind[kind] = ReplySpin(self.seconds)
        return spin
