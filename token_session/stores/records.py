"""Sessions as they lie in a backend: the exact JSON text and the absolute expiry.

What the ``token-session`` command lists, copies between backends and checks. Each backend
module holds the rules (which bytes go where) in its codec, and a thin ``*Records`` class
that runs them on an open store; :func:`record_io` picks the one for a store.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, TypeVar

from ..errors import InvalidArgumentError, SessionDecodeError, TokenSessionError
from .base import decode_session

__all__ = [
    "Finding",
    "Page",
    "RawRecord",
    "RecordIO",
    "StoredSession",
    "WriteResult",
    "every_record",
    "plan_writes",
    "readable",
    "record_io",
]

Level = Literal["ok", "info", "warning", "error"]
T = TypeVar("T")


@dataclass(frozen=True)
class StoredSession:
    """One live session: its id, its stored JSON text as is, and when it expires.

    ``expires_ms`` is epoch milliseconds, None for a session stored without expiry.
    """

    sid: str
    text: str
    expires_ms: int | None

    def remaining_ms(self, now: int) -> int | None:
        return None if self.expires_ms is None else self.expires_ms - now


@dataclass(frozen=True)
class Page:
    """Sessions in storage order; ``cursor`` resumes after them, None after the last page.

    ``failed`` holds the ids of records that could not be read as text, with the reason.
    """

    records: list[StoredSession]
    cursor: str | None
    failed: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RawRecord:
    """What the backend holds for one id, expired or not: ``exact`` as it is stored (the
    value's text, the row or the document as JSON), ``fields`` the same as JSON data."""

    exact: str
    fields: dict[str, Any]


@dataclass
class WriteResult:
    written: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)  # expired before it could be written
    failed: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    """One result of ``doctor``: what was checked, what was found and how to fix it."""

    level: Level
    check: str
    message: str
    fix: str | None = None


class RecordIO(Protocol):
    """Record-level access to one open store."""

    def page(self, cursor: str | None, limit: int) -> Page:
        """Up to about ``limit`` live sessions after ``cursor`` (None: from the start)."""
        ...

    def read(self, sid: str) -> StoredSession | None:
        """The live session stored under ``sid``, or None."""
        ...

    def raw(self, sid: str) -> RawRecord | None:
        """What is stored under ``sid``, expired or not, or None."""
        ...

    def write(self, records: Sequence[StoredSession]) -> WriteResult:
        """Store each session's text with its expiry, as the Node store keeps it."""
        ...

    def delete(self, sid: str) -> bool:
        """Delete what is stored under ``sid``; whether there was anything."""
        ...

    def purge_expired(self) -> int | None:
        """Delete expired sessions now and say how many; None where the backend expires
        sessions itself (Redis)."""
        ...

    def doctor(self) -> list[Finding]:
        """Check the backend is set up as the Node store expects."""
        ...


# store class name -> (module, records class)
_RECORDS = {
    "MemoryStore": (".memory", "MemoryRecords"),
    "RedisStore": (".redis", "RedisRecords"),
    "MongoStore": (".mongo", "MongoRecords"),
    "MySQLStore": (".mysql", "MySQLRecords"),
    "PostgresStore": (".postgres", "PostgresRecords"),
}


def record_io(store: Any) -> RecordIO:
    """The record access for a blocking store made by ``from_url`` (or by hand)."""
    for cls in type(store).__mro__:
        if cls.__name__ in _RECORDS:
            module, name = _RECORDS[cls.__name__]
            records: RecordIO = getattr(importlib.import_module(module, __package__), name)(store)
            return records
    raise InvalidArgumentError(f"no record access for {type(store).__name__}")


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidArgumentError("limit must be an int >= 1")
    return limit


def readable(page: Page) -> Page:
    """The page with each record whose text is not a session (JSON text of an object, as
    ``get`` reads it) moved into ``failed`` with the reason."""
    records: list[StoredSession] = []
    failed = dict(page.failed)
    for record in page.records:
        try:
            decode_session(record.sid, record.text)
        except SessionDecodeError as exc:
            failed[record.sid] = exc.reason
        else:
            records.append(record)
    if len(records) == len(page.records):
        return page
    return replace(page, records=records, failed=failed)


def every_record(
    records: RecordIO, batch_size: int = 1000, failed: dict[str, str] | None = None
) -> Iterator[StoredSession]:
    """Every live session, page after page; unreadable ones (see :func:`readable`) go into
    ``failed``."""
    cursor: str | None = None
    while True:
        page = readable(records.page(cursor, batch_size))
        if failed is not None:
            failed.update(page.failed)
        yield from page.records
        cursor = page.cursor
        if cursor is None:
            return


def plan_writes(
    records: Sequence[StoredSession], build: Callable[[StoredSession], T | None]
) -> tuple[WriteResult, list[tuple[str, T]]]:
    """What to send for each record (``build``'s answer; None: it has expired), and a
    result that already holds the expired ones and those ``build`` refused."""
    result = WriteResult()
    planned: list[tuple[str, T]] = []
    for record in records:
        try:
            item = build(record)
        except TokenSessionError as exc:
            result.failed[record.sid] = str(exc)
            continue
        if item is None:
            result.expired.append(record.sid)
        else:
            planned.append((record.sid, item))
    return result, planned
