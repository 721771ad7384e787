"""The store methods of a backend whose operations are flows (MySQL, PostgreSQL).

Such a backend's core builds each operation as a generator that yields the statements it
needs and returns the result (see :mod:`token_session.flows`). The methods here only pick
the core's flow; a blocking store runs it with its ``_run``, an asyncio store awaits its
``_run``. Nothing else differs between the two faces, so nothing else is written here.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any, Generic, Protocol, TypeVar

from .base import Session

__all__ = ["AsyncFlowStore", "FlowCore", "FlowStore"]

T = TypeVar("T")
S = TypeVar("S", bound="FlowStore[Any]")
A = TypeVar("A", bound="AsyncFlowStore[Any]")
Flow = Generator[Any, Any, T]
C = TypeVar("C", bound="FlowCore")


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
