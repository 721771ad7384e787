"""Copy every live session from one store to another, text and expiry unchanged.

Each session keeps its exact JSON text and its absolute expiry (so its remaining TTL), and is
written as the target's Node store keeps it; a Node app pointed at the target sees the same
sessions. Writes are upserts, so running a migration again gives the same target (idempotent).
With a state file, progress is saved after each batch and an interrupted migration continues
where it stopped (resumable). A record that is not a session (not UTF-8, not JSON, not an
object, nested deeper than Python reads) is not copied: it is counted as read and reported in
``failed`` with the reason, and the migration carries on.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import BackendUnavailableError, InvalidArgumentError
from .stores.records import RecordIO, StoredSession, WriteResult, readable

__all__ = ["MigrationState", "migrate"]

log = logging.getLogger(__name__)

DEFAULT_BATCH = 1000


@dataclass
class MigrationState:
    """Where a migration is and what it did so far; saved as JSON between batches."""

    source: str
    target: str
    cursor: str | None = None
    done: bool = False
    read: int = 0
    copied: int = 0
    skipped: list[str] = field(default_factory=list)  # expired before they could be written
    failed: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load_or_new(cls, path: str | None, source: str, target: str) -> MigrationState:
        """The state saved in ``path`` if it is of an unfinished migration between the same
        stores; else a new one."""
        if not path or not Path(path).exists():
            return cls(source, target)
        try:
            saved = cls(**json.loads(Path(path).read_text("utf-8")))
        except OSError as exc:
            raise InvalidArgumentError(f"cannot read state file {path}: {exc.strerror}") from None
        except (ValueError, TypeError) as exc:
            raise InvalidArgumentError(
                f"state file {path} is not a migration state: {exc}"
            ) from None
        if (saved.source, saved.target) != (source, target):
            raise InvalidArgumentError(
                f"state file {path} is of a migration from {saved.source} to {saved.target}; "
                "use another file"
            )
        return cls(source, target) if saved.done else saved

    def save(self, path: str) -> None:
        temporary = f"{path}.tmp"
        try:
            Path(temporary).write_text(json.dumps(asdict(self)), "utf-8")
            os.replace(temporary, path)  # a crash mid-write leaves the previous state whole
        except OSError as exc:
            raise InvalidArgumentError(f"cannot write state file {path}: {exc.strerror}") from None


def _write(target: RecordIO, records: Sequence[StoredSession]) -> WriteResult:
    """Write a batch; if it fails as a whole, write its records one by one to find which
    fail. An unreachable target ends the migration (its state stays resumable)."""
    try:
        return target.write(records)
    except BackendUnavailableError:
        raise
    except Exception as exc:
        if len(records) == 1:
            return WriteResult(failed={records[0].sid: str(exc)})
        log.info("batch of %d failed (%s); writing one by one", len(records), exc)
    result = WriteResult()
    for record in records:
        one = _write(target, [record])
        result.written += one.written
        result.expired += one.expired
        result.failed.update(one.failed)
    return result


def migrate(
    source: RecordIO,
    target: RecordIO,
    state: MigrationState,
    *,
    batch_size: int = DEFAULT_BATCH,
    dry_run: bool = False,
    on_batch: Callable[[MigrationState, int], None] | None = None,
) -> MigrationState:
    """Copy the live sessions of ``source`` after ``state.cursor`` into ``target``.

    ``on_batch(state, n)`` is called after each batch of ``n`` sessions read (save the state
    there to make the migration resumable). With ``dry_run`` nothing is written: ``copied``
    counts what would be.
    """
    while not state.done:
        page = readable(source.page(state.cursor, batch_size))
        state.failed.update(page.failed)
        if dry_run:
            state.copied += len(page.records)
        elif page.records:
            result = _write(target, page.records)
            state.copied += len(result.written)
            state.skipped += result.expired
            state.failed.update(result.failed)
        state.read += len(page.records) + len(page.failed)
        state.cursor = page.cursor
        state.done = page.cursor is None
        if on_batch is not None:
            on_batch(state, len(page.records) + len(page.failed))
    return state
