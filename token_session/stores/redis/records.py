"""The token-session command's record access to a :class:`RedisStore` (see
:mod:`token_session.stores.records`), and its ``doctor`` checks."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ...errors import InvalidArgumentError, SessionDecodeError
from ...flows import run
from ..records import (
    Finding,
    Page,
    RawRecord,
    StoredSession,
    WriteResult,
    check_limit,
    plan_writes,
)
from .format import Command, batches, shown, text_of, unique
from .store import RedisStore


def _resume(text: str, cursor: str | None) -> tuple[int, bytes | None]:
    """A cursor's SCAN position, and the last key given from that SCAN step when the page
    ended inside it: ``position`` or ``position~hex``."""
    position, _, after = text.partition("~")
    try:
        return int(position), bytes.fromhex(after) if after else None
    except ValueError:
        raise InvalidArgumentError(f"{cursor!r} is not a cursor this store gave") from None


def _raw(key: bytes | str) -> bytes:
    return key if isinstance(key, bytes) else key.encode("utf-8", "surrogateescape")


def _step(
    start: int, found: list[Any], after: bytes | None, limit: int
) -> tuple[list[Any], str | None]:
    """One SCAN step's keys after ``after``, at most ``limit`` of them (SCAN's COUNT is a
    hint: a step may give twice as many), and where the next page starts inside the step,
    None when the step is done. Re-run from ``start``, the step gives its keys again."""
    keys = sorted((key for key in found if after is None or _raw(key) > after), key=_raw)
    if len(keys) <= limit:
        return keys, None
    return keys[:limit], f"{start}~{_raw(keys[limit - 1]).hex()}"


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
        good, failed = self.codec.split_keys(unique(keys))
        records = self._records([self.codec.sid_of(key) for key in good], failed)
        return Page(records, cursor, failed)

    def _scan(self, cursor: str | None, limit: int) -> tuple[list[Any], str | None]:
        """Up to ``limit`` keys from SCAN at ``cursor``, and the cursor after them (None at
        the end)."""
        start, after = _resume(cursor or "0", cursor)
        while True:  # SCAN may answer a step with no keys: go on until some or the end
            position, found = self.store._call(
                "SCAN", self.store.client.scan, start, self.codec.match_pattern(), limit
            )
            keys, inside = _step(start, found, after, limit)
            if inside is not None:
                return keys, inside
            if keys or position == 0:
                return keys, None if position == 0 else str(position)
            start, after = position, None

    def _scan_cluster(self, cursor: str | None, limit: int) -> tuple[list[Any], str | None]:
        """:meth:`_scan` over a cluster's primaries, one after another in the order of their
        names; the cursor is ``host:port/position``, the primary and the SCAN cursor there."""
        client = self.store.client
        primaries = sorted(client.get_primaries(), key=lambda node: node.name)
        names = [node.name for node in primaries]
        index, start, after = 0, 0, None
        if cursor:
            name, _, at = cursor.rpartition("/")
            if name not in names:
                raise InvalidArgumentError(f"cursor {cursor!r} names no primary of this cluster")
            index, (start, after) = names.index(name), _resume(at, cursor)
        while True:
            node = primaries[index]
            scan = functools.partial(client.scan, target_nodes=node)
            positions, found = self.store._call(
                "SCAN", scan, start, self.codec.match_pattern(), limit
            )
            keys, inside = _step(start, found, after, limit)
            if inside is not None:
                return keys, f"{names[index]}/{inside}"
            start, after = positions[node.name], None
            if start == 0:
                index += 1
                if index == len(primaries):
                    return keys, None
            if keys:
                return keys, f"{names[index]}/{start}"

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
        findings = self._eviction_findings()
        keys = run(self.store, self.codec.keys_flow())
        without_ttl: list[str] = []
        for batch in batches(keys):
            answers = self._pipeline([("PTTL", key) for key in batch])
            without_ttl += [shown(k) for k, ttl in zip(batch, answers, strict=True) if ttl == -1]
        findings.append(self.codec.ttl_finding(len(keys), without_ttl))
        return findings

    def _eviction_findings(self) -> list[Finding]:
        """The eviction policy of each primary (of the one server, or of every primary of a
        cluster, any of which may evict sessions): one finding where they all agree."""
        from redis import exceptions

        client = self.store.client
        nodes: list[Any] = client.get_primaries() if hasattr(client, "get_primaries") else [None]
        found: dict[str, Finding] = {}
        for node in sorted(nodes, key=lambda n: "" if n is None else n.name):
            where = {} if node is None else {"target_nodes": node}
            try:
                policy = client.config_get("maxmemory-policy", **where).get("maxmemory-policy")
                maxmemory = int(client.config_get("maxmemory", **where).get("maxmemory") or 0)
            except exceptions.ResponseError:  # CONFIG renamed or refused (managed Redis)
                policy, maxmemory = None, None
            except Exception as exc:
                raise self.store._errors.wrap(exc, "CONFIG GET") from exc
            policy = text_of(policy) if policy is not None else None
            found["" if node is None else node.name] = self.codec.eviction_finding(
                policy, maxmemory
            )
        if len(set(found.values())) == 1:
            return [next(iter(found.values()))]
        return [replace(f, message=f"{name}: {f.message}") for name, f in found.items()]
