"""What the backends whose operations are flows (MySQL, PostgreSQL) share: the store
methods, and the bookkeeping of their blocking stores' connection pools (:class:`Slots`).

Such a backend's core builds each operation as a generator that yields the statements it
needs and returns the result (see :mod:`token_session.flows`). The methods here only pick
the core's flow; a blocking store runs it with its ``_run``, an asyncio store awaits its
``_run``. Nothing else differs between the two faces, so nothing else is written here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Mapping
from typing import Any, Generic, Protocol, TypeVar

from .base import Session

__all__ = ["AsyncFlowStore", "FlowCore", "FlowStore", "Slots"]

T = TypeVar("T")
S = TypeVar("S", bound="FlowStore[Any]")
A = TypeVar("A", bound="AsyncFlowStore[Any]")
Flow = Generator[Any, Any, T]
C = TypeVar("C", bound="FlowCore")
K = TypeVar("K")


class FlowCore(Protocol):
    """The operations every flow-based core provides, each a flow."""

    def get(self, sid: str) -> Flow[Session | None]: ...

    def set(self, sid: str, session: Mapping[str, Any]) -> Flow[None]: ...

    def touch(self, sid: str, session: Mapping[str, Any]) -> Flow[None]: ...

    def destroy(self, sid: str) -> Flow[object]: ...

    def all(self) -> Flow[dict[str, Session]]: ...

    def ids(self) -> Flow[list[str]]: ...

    def length(self) -> Flow[int]: ...

    def clear(self) -> Flow[None]: ...


class FlowStore(Generic[C]):
    """The blocking store's methods: each runs the core's flow for it."""

    core: C

    def _run(self, flow: Flow[T]) -> T:
        raise NotImplementedError

    def get(self, sid: str) -> Session | None:
        return self._run(self.core.get(sid))

    def set(self, sid: str, session: Mapping[str, Any]) -> None:
        self._run(self.core.set(sid, session))

    def touch(self, sid: str, session: Mapping[str, Any]) -> None:
        """Move the expiry as the Node store's touch does (nothing with ``disable_touch``)."""
        self._run(self.core.touch(sid, session))

    def destroy(self, sid: str) -> None:
        self._run(self.core.destroy(sid))

    def all(self) -> dict[str, Session]:
        return self._run(self.core.all())

    def ids(self) -> list[str]:
        return self._run(self.core.ids())

    def length(self) -> int:
        return self._run(self.core.length())

    def clear(self) -> None:
        self._run(self.core.clear())

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: S) -> S:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncFlowStore(Generic[C]):
    """The asyncio store's methods: each awaits the core's flow for it."""

    core: C

    async def _run(self, flow: Flow[T]) -> T:
        raise NotImplementedError

    async def get(self, sid: str) -> Session | None:
        return await self._run(self.core.get(sid))

    async def set(self, sid: str, session: Mapping[str, Any]) -> None:
        await self._run(self.core.set(sid, session))

    async def touch(self, sid: str, session: Mapping[str, Any]) -> None:
        """Move the expiry as the Node store's touch does (nothing with ``disable_touch``)."""
        await self._run(self.core.touch(sid, session))

    async def destroy(self, sid: str) -> None:
        await self._run(self.core.destroy(sid))

    async def all(self) -> dict[str, Session]:
        return await self._run(self.core.all())

    async def ids(self) -> list[str]:
        return await self._run(self.core.ids())

    async def length(self) -> int:
        return await self._run(self.core.length())

    async def clear(self) -> None:
        await self._run(self.core.clear())

    async def close(self) -> None:
        raise NotImplementedError

    async def _started(self) -> None:
        """What entering ``async with`` starts (a clean-up task); nothing by default."""

    async def __aenter__(self: A) -> A:
        await self._started()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class Slots(Generic[K]):
    """A thread-safe pool's idle connections and how many are open, at most ``limit``, as a
    Node driver's pool keeps them (mysql2's, node-postgres's): the pool opens and closes its
    driver's connections, this says when it may."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.idle: list[K] = []
        self.open = 0
        self.waiting = 0
        self.closed = False

    def take(self, left: Callable[[], float], closed: Callable[[], BaseException]) -> K | None:
        """An idle connection, or None where the caller is to open one (counted open
        already: :meth:`forget` it if that fails); while all are busy, waits for one at most
        ``left()`` seconds at a time (``left`` raises once no time is left). ``closed()`` is
        raised once the pool is closed."""
        with self.lock:  # the condition's lock, taken without its Python-level wrapper
            while True:
                if self.closed:
                    raise closed()
                if self.idle:
                    return self.idle.pop()
                if self.open < self.limit:
                    self.open += 1
                    return None
                self.waiting += 1
                try:
                    self.changed.wait(left())
                finally:
                    self.waiting -= 1

    def put(self, connection: K) -> None:
        """A connection back, idle."""
        with self.lock:
            self.idle.append(connection)
            if self.waiting:
                self.changed.notify()

    def forget(self) -> None:
        """One open connection less (closed, or never opened)."""
        with self.lock:
            self.open -= 1
            if self.waiting:
                self.changed.notify()

    def drain(self, close: bool = False) -> list[K]:
        """The idle connections, taken out for the caller to close (``close``: the pool
        too, and every waiter told)."""
        with self.lock:
            self.closed = self.closed or close
            idle, self.idle = self.idle, []
            self.open -= len(idle)
            if close:
                self.changed.notify_all()
            elif self.waiting:
                self.changed.notify(len(idle))
        return idle
