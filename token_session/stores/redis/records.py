"""The token-session command's record access to a :class:`RedisStore` (see
:mod:`token_session.stores.records`), and its ``doctor`` checks."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from ...errors import InvalidArgumentError, SessionDecodeError
from ..records import (
    Finding,
    Page,
    RawRecord,
    StoredSession,
    WriteResult,
    check_limit,
    plan_writes,
)
from .format import Command, batches, text_of, unique
from .store import RedisStore


def _position(text: str, cursor: str | None) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidArgumentError(f"{cursor!r} is not a cursor this store gave") from None


class RedisRecords:
    """Record access to a :class:`RedisStore` (see :mod:`.records`), in SCAN order; the
    cursor is SCAN's."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self.codec = store.codec

    def _pipeline(self, commands: list[Command]) -> list[Any]:
        def run() -> list[Any]:
            pipe = self.store.client.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)
            results: list[Any] = pipe.execute(raise_on_error=False)
            return results

        return self.store._call("pipeline", run)  # type: ignore[no-any-return]

    def _records(self, sids: list[str], failed: dict[str, str]) -> list[StoredSession]:
        commands = [c for sid in sids for c in self.codec.record_commands(sid)]
        answers = self._pipeline(commands)
        now = self.codec.clock()
        records = []
        for index, sid in enumerate(sids):
            raw, pttl = answers[2 * index], answers[2 * index + 1]
            error = next((a for a in (raw, pttl) if isinstance(a, Exception)), None)
            if error is not None:
                failed[sid] = str(error)
                continue
            try:
                record = self.codec.record_of(sid, raw, pttl, now)
            except SessionDecodeError as exc:
                failed[sid] = exc.reason
                continue
            if record is not None:
                records.append(record)
        return records

    def page(self, cursor: str | None, limit: int) -> Page:
        check_limit(limit)
        if hasattr(self.store.client, "get_primaries"):  # a cluster (no Redis subclass)
            keys, cursor = self._scan_cluster(cursor, limit)
        else:
            keys, cursor = self._scan(cursor, limit)
        failed: dict[str, str] = {}
        records = self._records([self.codec.sid_of(key) for key in unique(keys)], failed)
        return Page(records, cursor, failed)

    def _scan(self, cursor: str | None, limit: int) -> tuple[list[Any], str | None]:
        """Keys from SCAN at ``cursor``, and the cursor after them (None at the end)."""
        position = _position(cursor or "0", cursor)
        keys: list[Any] = []
        while True:  # SCAN may answer a step with no keys: go on until some or the end
            position, found = self.store._call(
                "SCAN", self.store.client.scan, position, self.codec.match_pattern(), limit
            )
            keys += found
            if keys or position == 0:
                return keys, None if position == 0 else str(position)

    def _scan_cluster(self, cursor: str | None, limit: int) -> tuple[list[Any], str | None]:
        """:meth:`_scan` over a cluster's primaries, one after another in the order of their
        names; the cursor is ``host:port/position``, the primary and the SCAN cursor there."""
        client = self.store.client
        primaries = sorted(client.get_primaries(), key=lambda node: node.name)
        names = [node.name for node in primaries]
        index, position = 0, 0
        if cursor:
            name, _, at = cursor.rpartition("/")
            if name not in names:
                raise InvalidArgumentError(f"cursor {cursor!r} names no primary of this cluster")
            index, position = names.index(name), _position(at, cursor)
        keys: list[Any] = []
        while True:
            node = primaries[index]
            scan = functools.partial(client.scan, target_nodes=node)
            positions, found = self.store._call(
                "SCAN", scan, position, self.codec.match_pattern(), limit
            )
            keys += found
            position = positions[node.name]
            if position == 0:
                index, position = index + 1, 0
                if index == len(primaries):
                    return keys, None
            if keys:
                return keys, f"{names[index]}/{position}"

    def read(self, sid: str) -> StoredSession | None:
        failed: dict[str, str] = {}
        records = self._records([sid], failed)
        if failed:
            raise SessionDecodeError(sid, failed[sid])
        return records[0] if records else None

    def raw(self, sid: str) -> RawRecord | None:
        raw, pttl = self._pipeline(self.codec.record_commands(sid))
        if raw is None:
            return None
        text = raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else str(raw)
        return RawRecord(text, {"key": self.codec.key(sid), "value": text, "pttl": pttl})

    def write(self, records: Sequence[StoredSession]) -> WriteResult:
        now = self.codec.clock()
        result, planned = plan_writes(records, lambda r: self.codec.put_command(r, now))
        if planned:
            answers = self._pipeline([command for _, command in planned])
            for (sid, _), answer in zip(planned, answers, strict=True):
                if isinstance(answer, Exception):
                    result.failed[sid] = str(answer)
                else:
                    result.written.append(sid)
        return result

    def delete(self, sid: str) -> bool:
        return bool(self.store._run(self.codec.destroy_command(sid)))

    def purge_expired(self) -> None:
        return None  # Redis deletes expired keys itself

    def doctor(self) -> list[Finding]:
        from redis import exceptions

        try:
            policy = self.store.client.config_get("maxmemory-policy").get("maxmemory-policy")
            maxmemory = int(self.store.client.config_get("maxmemory").get("maxmemory") or 0)
        except exceptions.ResponseError:  # CONFIG renamed or refused (managed Redis)
            policy, maxmemory = None, None
        except Exception as exc:
            raise self.store._errors.wrap(exc, "CONFIG GET") from exc
        policy = text_of(policy) if policy is not None else None
        findings = [self.codec.eviction_finding(policy, maxmemory)]
        keys = self.store._keys()
        without_ttl: list[str] = []
        for batch in batches(keys):
            answers = self._pipeline([("PTTL", key) for key in batch])
            without_ttl += [k for k, ttl in zip(batch, answers, strict=True) if ttl == -1]
        findings.append(self.codec.ttl_finding(len(keys), without_ttl))
        return findings
