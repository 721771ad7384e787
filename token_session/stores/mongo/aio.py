"""The asyncio store: pymongo's ``AsyncMongoClient`` running :class:`.MongoCodec`'s operations."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from ...errors import TokenSessionError
from ...flows import arun
from ..base import Session
from .crypto import DerivationNeeded, no_derivation
from .format import CURSORS as _CURSORS
from .format import Op
from .onestep import GetAndTouch
from .shell import MongoShell

__all__ = ["AsyncMongoStore"]

T = TypeVar("T")

# Python 3.11's asyncio.timeout: one timer an operation. pymongo's client-side operation
# timeout costs its asyncio client a timer per read and write and a wait_for per send: 6 to
# 15 % of the CPU of a get or touch with 64 in flight (bench/bench_mongo.py's server).
if sys.version_info >= (3, 11):
    from asyncio import timeout as _asyncio_timeout
else:
    _asyncio_timeout = None


class AsyncMongoStore(MongoShell):
    """:class:`MongoStore` over pymongo's ``AsyncMongoClient``.

    With encryption, a key derivation (the WebCrypto adapter's once, some 80 ms; kruptein's
    on the first read of each record written elsewhere and for each new salt it writes
    under, some 15 ms) runs in a worker thread (``asyncio.to_thread``), the event loop
    serving meanwhile; everything else costs tens of microseconds and runs on the loop. A
    ``crypto_adapter`` of your own is called on the loop, not awaited."""

    def __init__(self, client: Any, **options: Any) -> None:
        super().__init__(client, **options)
        self._remover: asyncio.Task[None] | None = None
        self._get_and_touch = GetAndTouch()

    @classmethod
    def from_url(cls, url: str, *, timeout: float | None = None, **options: Any) -> AsyncMongoStore:
        """See :meth:`MongoStore.from_url`."""
        from pymongo import AsyncMongoClient

        return cls._from_url(AsyncMongoClient, url, timeout, options)

    def _bound(self) -> AbstractAsyncContextManager[None]:
        """One deadline for everything inside; cancelled pymongo calls close their
        connection (a reply left unread never answers another call)."""
        if _asyncio_timeout is not None:
            return _asyncio_timeout(self.timeout)
        return self._pymongo_bound()

    @contextlib.asynccontextmanager
    async def _pymongo_bound(self) -> AsyncIterator[None]:
        with self._deadline():
            yield

    async def _run(self, op: Op[T]) -> T:
        starting = self._starting()
        if starting is None:
            return await self._call(op)
        try:
            async with self._bound():  # one deadline for both
                await self._call(starting)
                return await self._call(op)
        except TimeoutError as exc:  # the shared deadline ran out
            raise self._errors.wrap(exc, op.method) from exc

    async def _call(self, op: Op[T]) -> T:
        try:
            async with self._bound():
                result = getattr(self.collection, op.method)(*op.args, **op.kwargs)
                if op.method in _CURSORS:  # find() gives a cursor, list_indexes() an awaitable
                    cursor = await result if inspect.isawaitable(result) else result
                    result = await cursor.to_list()
                else:
                    result = await result
        except Exception as exc:
            raise self._errors.wrap(exc, op.method) from exc
        if self.codec.sealer is None:
            return op.done(result)
        return await self._off_loop(op.done, result)

    async def _off_loop(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` on the loop, unless it needs a key derivation: then all of it
        again in a worker thread (what ran before the derivation computes, nothing more)."""
        try:
            with no_derivation():
                return function(*args)
        except DerivationNeeded:
            pass
        return await asyncio.to_thread(function, *args)

    def _start_remover(self) -> None:
        self._remover = asyncio.get_running_loop().create_task(self._remove_expired())

    async def _remove_expired(self) -> None:
        while True:
            await asyncio.sleep(self.codec.auto_remove_interval * 60)
            try:
                await self._call(self.codec.expired_op())
            except TokenSessionError as exc:
                self._removal_failed(exc)

    async def get(self, sid: str) -> Session | None:
        return await self._run(self.codec.get_op(sid))

    async def set(self, sid: str, session: Mapping[str, Any]) -> None:
        if self.codec.sealer is None:
            await self._run(self.codec.set_op(sid, session))
        else:  # encrypting may draw a new salt, and derive its key
            await self._run(await self._off_loop(self.codec.set_op, sid, session))

    async def touch(self, sid: str, session: Mapping[str, Any]) -> None:
        op = self.codec.touch_op(sid, session)
        if op is not None:
            await self._run(op)

    async def get_and_touch(self, sid: str) -> Session | None:
        """See :meth:`MongoStore.get_and_touch`."""
        return await arun(self, self._get_and_touch.flow(self.codec, sid))

    async def destroy(self, sid: str) -> None:
        await self._run(self.codec.destroy_op(sid))

    async def all(self) -> dict[str, Session]:
        return await self._run(self.codec.all_op())

    async def ids(self) -> list[str]:
        return await self._run(self.codec.ids_op())

    async def length(self) -> int:
        return await self._run(self.codec.length_op())

    async def clear(self) -> None:
        await self._run(self.codec.clear_op())

    async def close(self) -> None:
        if self._remover is not None:
            self._remover.cancel()
            await asyncio.gather(self._remover, return_exceptions=True)
        if self._owns_client:
            with self._deadline():
                await self.client.close()

    async def __aenter__(self) -> AsyncMongoStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
