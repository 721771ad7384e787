"""Every live session of a store as its stored records, for checks after a copy."""

from __future__ import annotations

from token_session.stores import from_url
from token_session.stores.records import StoredSession, every_record, record_io


def snapshot(url: str) -> dict[str, StoredSession]:
    """The live sessions at ``url`` by id; AssertionError if one cannot be read."""
    failed: dict[str, str] = {}
    with from_url(url) as store:
        found = {r.sid: r for r in every_record(record_io(store), 2000, failed)}
    assert not failed, list(failed)[:5]
    return found
