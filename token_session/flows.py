"""Sans-I/O flows: generators that yield the store calls they need and return their result.

A flow is written once; :func:`run` drives it against a blocking store and :func:`arun`
against an asyncio one. A store error goes back into the flow, which may handle it, and so
does :class:`MissingStoreMethodError` for a call the store has no method for: a flow that yields an
optional call (``get_and_touch``) catches it and does without.
"""

from __future__ import annotations

from collections.abc import Awaitable, Generator
from typing import Any, TypeVar

from .errors import TokenSessionError

__all__ = ["Flow", "MissingStoreMethodError", "StoreCall", "arun", "run"]

T = TypeVar("T")
# A store call: (method name, *arguments); the flow is sent back what the method returned.
StoreCall = tuple[Any, ...]
Flow = Generator[StoreCall, Any, T]


class MissingStoreMethodError(AttributeError):
    """The store has no method of the call's name (thrown into the flow)."""

    def __init__(self, store: Any, name: str) -> None:
        super().__init__(f"{type(store).__name__!r} store has no method {name!r}", name=name)


def run(store: Any, flow: Flow[T]) -> T:
    """Run ``flow`` against a blocking store."""
    try:
        call = next(flow)
        while True:
            method = getattr(store, call[0], None)
            if method is None:
                call = flow.throw(MissingStoreMethodError(store, call[0]))
                continue
            try:
                answer = method(*call[1:])
            except TokenSessionError as exc:
                call = flow.throw(exc)
            else:
                call = flow.send(answer)
    except StopIteration as done:
        result: T = done.value
        return result


async def arun(store: Any, flow: Flow[T]) -> T:
    """Run ``flow`` against an asyncio store."""
    try:
        call = next(flow)
        while True:
            method = getattr(store, call[0], None)
            if method is None:
                call = flow.throw(MissingStoreMethodError(store, call[0]))
                continue
            pending: Awaitable[Any] = method(*call[1:])
            try:
                answer = await pending
            except TokenSessionError as exc:
                call = flow.throw(exc)
            else:
                call = flow.send(answer)
    except StopIteration as done:
        result: T = done.value
        return result
