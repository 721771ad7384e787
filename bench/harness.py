"""What the store benchmarks share: the workload, the timing, the Node side, the table.

Every measurement is one side (our store, the raw driver, Node's store) running one
operation ``n`` times; :func:`compare` runs the sides in turn, round after round, so that the
machine's drift hits them alike, and keeps the median of each.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from token_session.compat import js_iso

NODE = Path(__file__).resolve().parent.parent / "fixtures" / "node"
OPS = ("get", "set", "touch", "get+touch")
SIDS = [f"bench-{i}" for i in range(1000)]
IN_FLIGHT = 64

# One side's measurement of one operation: {column: ops per second}.
Side = Callable[[str], Awaitable[dict[str, float]]]
Op = Callable[[int], Any]
AsyncOp = Callable[[int], Awaitable[Any]]


def session(i: int) -> dict[str, Any]:
    """An express-session session as bench-store.js makes it on the Node side."""
    expires = js_iso(datetime.now(timezone.utc) + timedelta(hours=1))
    return {
        "cookie": {"originalMaxAge": 3600000, "expires": expires, "httpOnly": True, "path": "/"},
        "user": {"id": i, "name": f"user {i}", "roles": ["customer"]},
        "cart": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}],
    }


def store_ops(store: Any) -> dict[str, Op]:
    """The four operations on a blocking store; get+touch touches what get returned."""
    sessions = [session(i) for i in range(len(SIDS))]

    def get_touch(i: int) -> None:
        found = store.get(SIDS[i])
        assert found is not None
        store.touch(SIDS[i], found)

    return {
        "get": lambda i: store.get(SIDS[i]),
        "set": lambda i: store.set(SIDS[i], sessions[i]),
        "touch": lambda i: store.touch(SIDS[i], sessions[i]),
        "get+touch": get_touch,
    }


def async_store_ops(store: Any) -> dict[str, AsyncOp]:
    """:func:`store_ops` for an asyncio store."""
    sessions = [session(i) for i in range(len(SIDS))]

    async def get_touch(i: int) -> None:
        found = await store.get(SIDS[i])
        assert found is not None
        await store.touch(SIDS[i], found)

    return {
        "get": lambda i: store.get(SIDS[i]),
        "set": lambda i: store.set(SIDS[i], sessions[i]),
        "touch": lambda i: store.touch(SIDS[i], sessions[i]),
        "get+touch": get_touch,
    }


def sequential(column: str, n: int, ops: Mapping[str, Op]) -> Side:
    """A side that runs each operation ``n`` times, one after the other."""

    async def measure(op: str) -> dict[str, float]:
        run = ops[op]
        start = time.perf_counter()
        for i in range(n):
            run(i % len(SIDS))
        return {column: n / (time.perf_counter() - start)}

    return measure


def concurrent(column: str, n: int, ops: Mapping[str, AsyncOp], in_flight: int = IN_FLIGHT) -> Side:
    """A side that runs each operation ``n`` times with ``in_flight`` awaited at once."""

    async def measure(op: str) -> dict[str, float]:
        run = ops[op]
        counter = iter(range(n))

        async def worker() -> None:
            for i in counter:
                await run(i % len(SIDS))

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        return {column: n / (time.perf_counter() - start)}

    return measure


def node(column: str, store: str, options: Mapping[str, Any], n: int) -> Side:
    """Node's store through fixtures/node/bench-store.js: sequential and ``IN_FLIGHT`` at once,
    columns ``column`` and ``column@64``."""

    async def measure(op: str) -> dict[str, float]:
        config = {
            "store": store,
            "options": options,
            "ops": [op],
            "n": n,
            "inFlight": [1, IN_FLIGHT],
            "sids": len(SIDS),
        }
        process = await asyncio.create_subprocess_exec(
            "node",
            "bench-store.js",
            json.dumps(config),
            cwd=NODE,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await process.communicate()
        if process.returncode:
            raise RuntimeError(f"bench-store.js {store} failed (status {process.returncode})")
        rates = json.loads(out)
        return {column: rates[f"{op}@1"], f"{column}@{IN_FLIGHT}": rates[f"{op}@{IN_FLIGHT}"]}

    return measure


async def compare(sides: Sequence[Side], rounds: int) -> dict[str, dict[str, float]]:
    """{column: {op: median ops/s}}, each operation measured ``rounds`` times on every side
    in turn (a first, untimed round warms every side up)."""
    table: dict[str, dict[str, float]] = {}
    for op in OPS:
        samples: dict[str, list[float]] = {}
        for round_ in range(rounds + 1):
            for side in sides:
                for column, rate in (await side(op)).items():
                    if round_:
                        samples.setdefault(column, []).append(rate)
        for column, rates in samples.items():
            table.setdefault(column, {})[op] = statistics.median(rates)
    return table


def report(title: str, table: Mapping[str, Mapping[str, float]], ratios: Sequence[str]) -> None:
    """Print ops/s per column, then each ratio ``"a/b"`` of two columns (with its goal, if
    written ``"a/b >= goal"``)."""
    width = max(len(column) for column in table) + 2
    print(title)
    print(f"{'ops/s':<{width}}" + "".join(f"{op:>11}" for op in OPS))
    for column, rates in table.items():
        print(f"{column:<{width}}" + "".join(f"{rates[op]:>11,.0f}" for op in OPS))
    print()
    width = max(len(ratio) for ratio in ratios) + 2
    print(f"{'ratio':<{width}}" + "".join(f"{op:>11}" for op in OPS))
    for ratio in ratios:
        over, under = ratio.split(" ")[0].split("/")
        print(
            f"{ratio:<{width}}"
            + "".join(f"{table[over][op] / table[under][op]:>11.2f}" for op in OPS)
        )
