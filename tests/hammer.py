"""Node and Python writing the same sessions at once: store-driver.js's ``hammer`` in Node
while a thread here cycles through store operations on the same ids."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from token_session.compat import js_iso
from token_session.stores import Store

from .node import NodeStore


def python_session(n: int) -> dict[str, Any]:
    expires = js_iso(datetime.now(timezone.utc) + timedelta(minutes=1))
    return {"writer": "python", "n": n, "cookie": {"originalMaxAge": 60000, "expires": expires}}


def hammer_with_node(
    node: NodeStore,
    store: Store,
    sids: Sequence[str],
    steps: Sequence[str],
    *,
    ms: int,
    in_flight: int,
) -> tuple[dict[str, Any], Counter[str]]:
    """Node's hammer on ``sids`` for ``ms`` milliseconds while Python runs ``steps`` (store
    method names: set, touch, get, destroy) in turn on them. Returns Node's stats and how
    many of each step Python ran; what the Python side raised is raised here. Every session
    Python reads must be whole and written by one side or the other."""
    stop = threading.Event()
    errors: list[BaseException] = []
    counts: Counter[str] = Counter()

    def python_side() -> None:
        n = 0
        try:
            while not stop.is_set():
                sid, step = sids[n % len(sids)], steps[n % len(steps)]
                if step == "get":
                    session = store.get(sid)  # raises if a value were ever corrupt
                    assert session is None or session["writer"] in ("node", "python"), session
                elif step == "destroy":
                    store.destroy(sid)
                else:
                    getattr(store, step)(sid, python_session(n))
                counts[step] += 1
                n += 1
        except BaseException as exc:  # raised below, in the test's thread
            errors.append(exc)

    worker = threading.Thread(target=python_side)
    worker.start()
    try:
        stats: dict[str, Any] = node.call("hammer", sids=list(sids), ms=ms, inFlight=in_flight)
    finally:
        stop.set()
        worker.join()
    if errors:
        raise errors[0]
    return stats, counts
