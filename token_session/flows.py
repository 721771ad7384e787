"""Sans-I/O flows: generators that yield the store calls they need and return their result.

A flow is written once; :func:`run` drives it against a blocking store and :func:`arun`
against an asyncio one. A store error goes back into the flow, which may handle it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Generator
from typing import Any, TypeVar

from .errors import TokenSessionError

__all__ = ["Flow", "StoreCall", "arun", "run"]

T = TypeVar("T")
# A store call: (method name, *arguments); the flow is sent back what the method returned.
StoreCall = tuple[Any, ...]
Flow = Generator[StoreCall, Any, T]


def run(store: Any, flow: Flow[T]) -> T:
    """Run ``flow`` against a blocking store."""
    try:
        call = next(flow)
        while True:
            try:
                answer = getattr(store, call[0])(*call[1:])
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
            pending: Awaitable[Any] = getattr(store, call[0])(*call[1:])
            try:
                answer = await pending
            except TokenSessionError as exc:
                call = flow.throw(exc)
            else:
                call = flow.send(answer)
    except StopIteration as done:
        result: T = done.value
        return result
