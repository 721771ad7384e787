"""Record access for the ``token-session`` command: pages, reads, writes and ``doctor``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ...errors import SessionDecodeError, TokenSessionError
from ..records import Finding, Page, RawRecord, StoredSession, WriteResult, check_limit, plan_writes
from .format import Op
from .store import MongoStore

__all__ = ["MongoRecords"]


class MongoRecords:
    """Record access to a :class:`MongoStore` (see :mod:`..records`), in ``_id`` order.

    Reads never create the TTL index (so ``doctor`` sees the collection as it is); the
    first write does, as connect-mongo does when it starts.
    """

    def __init__(self, store: MongoStore) -> None:
        self.store = store
        self.codec = store.codec
        # (the cursor the next page starts after, the open server cursor that gives it):
        # paging through one server cursor rather than a query per page
        self._stream: tuple[str | None, Any] | None = None

    def _next_documents(self, cursor: str | None, limit: int) -> list[Any]:
        if self._stream is None or self._stream[0] != cursor:
            op = self.codec.stream_op(cursor, limit)
            # find() only builds the cursor: errors come when it is read, below
            self._stream = (
                cursor,
                getattr(self.store.collection, op.method)(*op.args, **op.kwargs),
            )
        try:
            with self.store._deadline():
                documents: list[Any] = self._stream[1].to_list(limit)
        except Exception as exc:
            self._stream = None
            raise self.store._errors.wrap(exc, "find") from exc
        return documents

    def page(self, cursor: str | None, limit: int) -> Page:
        check_limit(limit)
        documents = self._next_documents(cursor, limit)
        records: list[StoredSession] = []
        failed: dict[str, str] = {}
        for document in documents:
            try:
                records.append(self.codec.record_of(document))
            except SessionDecodeError as exc:
                failed[exc.sid] = exc.reason
        last = str(documents[-1]["_id"]) if len(documents) == limit else None
        self._stream = (last, self._stream[1]) if last is not None and self._stream else None
        return Page(records, last, failed)

    def read(self, sid: str) -> StoredSession | None:
        return self.store._call(self.codec.record_op(sid))

    def raw(self, sid: str) -> RawRecord | None:
        from bson import json_util

        document = self.store._call(self.codec.raw_op(sid))
        if document is None:
            return None
        exact = json_util.dumps(document, json_options=json_util.CANONICAL_JSON_OPTIONS)
        return RawRecord(exact, {"document": json.loads(exact)})

    def write(self, records: Sequence[StoredSession]) -> WriteResult:
        from pymongo import UpdateOne
        from pymongo.errors import BulkWriteError

        now = self.codec.clock()
        result, planned = plan_writes(records, lambda r: self.codec.put_op(r, now))
        if not planned:
            return result
        requests = [UpdateOne(*op.args, **op.kwargs) for _, op in planned]
        failed_at: dict[int, str] = {}
        try:
            self.store._run(Op("bulk_write", (requests,), {"ordered": False}))
        except TokenSessionError as exc:
            cause = exc.__cause__
            if not isinstance(cause, BulkWriteError):
                raise
            failed_at = {e["index"]: e.get("errmsg", "") for e in cause.details["writeErrors"]}
        for index, (sid, _) in enumerate(planned):
            if index in failed_at:
                result.failed[sid] = failed_at[index]
            else:
                result.written.append(sid)
        return result

    def delete(self, sid: str) -> bool:
        return self.store._call(self.codec.destroy_op(sid))

    def purge_expired(self) -> int:
        return self.store._call(self.codec.expired_op())

    def doctor(self) -> list[Finding]:
        indexes = self.store._call(Op[list[Any]]("list_indexes"))
        findings = self.codec.index_findings(indexes)
        findings.append(self.codec.expired_finding(self.store._call(self.codec.expired_count_op())))
        findings.append(self.store._call(self.codec.sample_op()))
        return findings
