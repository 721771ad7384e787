"""What the store benchmarks share: the workload, the timing, the Node side, the table.

Every measurement is one side (our store, the raw driver, Node's store) running one
operation ``n`` times; :func:`compare` runs the sides in turn, round after round, so that the
machine's drift hits them alike, and keeps the median of each. Besides operations per second,
each side reports its own process's CPU time per operation: on a busy machine that is the
steadier figure, and with 64 in flight on an idle one it is what bounds the rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

NODE = Path(__file__).resolve().parent.parent / "fixtures" / "node"
OPS = ("get", "set", "touch", "get+touch")
# enough sessions that one is rarely written twice within a second: MySQL's expires is in
# seconds, and writing the value already there costs it no write at all
SIDS = [f"bench-{i}" for i in range(10_000)]
IN_FLIGHT = 64
# Each measurement goes on from the session after the last one any measurement used: two
# sides on one table (a store's get then touch, then its get_and_touch) would otherwise
# touch the same sessions within the same second, and the second side's writes would be
# the values already there (bench-store.js does the same on Node's side).
_cursor = 0


def _next_sessions(n: int) -> list[int]:
    """The indexes into SIDS of the next ``n`` operations."""
    global _cursor
    first, _cursor = _cursor, (_cursor + n) % len(SIDS)
    return [(first + i) % len(SIDS) for i in range(n)]


# One side's measurement of one operation: {column: (ops per second, CPU us per op)}.
Side = Callable[[str], Awaitable[dict[str, tuple[float, float]]]]
Op = Callable[[int], Any]
AsyncOp = Callable[[int], Awaitable[Any]]


_SECONDS: dict[int, str] = {}
_MILLIS = [f"{milli:03d}Z" for milli in range(1000)]


def expires_in(ms: int) -> str:
    """``new Date(Date.now() + ms).toISOString()``, as bench-store.js writes it: the text up to
    the second formatted once a second (Python's datetime takes ~6 µs, which would be counted
    against the store), the milliseconds each time."""
    second, milli = divmod(time.time_ns() // 1_000_000 + ms, 1000)
    head = _SECONDS.get(second)
    if head is None:
        _SECONDS.clear()
        head = _SECONDS[second] = datetime.fromtimestamp(second, timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%S."
        )
    return head + _MILLIS[milli]


def session(i: int) -> dict[str, Any]:
    """An express-session session as bench-store.js makes it on the Node side."""
    return {
        "cookie": {
            "originalMaxAge": 3600000,
            "expires": expires_in(3600000),
            "httpOnly": True,
            "path": "/",
        },
        "user": {"id": i, "name": f"user {i}", "roles": ["customer"]},
        "cart": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}],
    }


def restarted(found: dict[str, Any]) -> dict[str, Any]:
    """The session with its cookie restarted, as express-session's ``touch()`` (resetMaxAge)
    does on each request before the store's touch: what bench-store.js does on Node's side."""
    cookie = found["cookie"]
    return {**found, "cookie": {**cookie, "expires": expires_in(cookie["originalMaxAge"])}}


def store_ops(store: Any) -> dict[str, Op]:
    """The four operations on a blocking store, on a session made anew each time, as Node's
    side makes it (the same expiry again would spare MySQL its write); get+touch touches
    what get returned, restarted."""

    def get_touch(i: int) -> None:
        found = store.get(SIDS[i])
        assert found is not None
        store.touch(SIDS[i], restarted(found))

    return {
        "get": lambda i: store.get(SIDS[i]),
        "set": lambda i: store.set(SIDS[i], session(i)),
        "touch": lambda i: store.touch(SIDS[i], session(i)),
        "get+touch": get_touch,
    }


def async_store_ops(store: Any) -> dict[str, AsyncOp]:
    """:func:`store_ops` for an asyncio store."""

    async def get_touch(i: int) -> None:
        found = await store.get(SIDS[i])
        assert found is not None
        await store.touch(SIDS[i], restarted(found))

    return {
        "get": lambda i: store.get(SIDS[i]),
        "set": lambda i: store.set(SIDS[i], session(i)),
        "touch": lambda i: store.touch(SIDS[i], session(i)),
        "get+touch": get_touch,
    }


@contextlib.contextmanager
def _timer(n: int) -> Iterator[list[tuple[float, float]]]:
    """Yields a list that holds, once the block is done, (ops/s, CPU us per op) for ``n``."""
    result: list[tuple[float, float]] = []
    start, cpu = time.perf_counter(), time.process_time()
    yield result
    result.append((n / (time.perf_counter() - start), (time.process_time() - cpu) / n * 1e6))


def sequential(column: str, n: int, ops: Mapping[str, Op]) -> Side:
    """A side that runs each operation ``n`` times, one after the other."""

    async def measure(op: str) -> dict[str, tuple[float, float]]:
        run, indexes = ops[op], _next_sessions(n)
        with _timer(n) as result:
            for i in indexes:
                run(i)
        return {column: result[0]}

    return measure


def concurrent(column: str, n: int, ops: Mapping[str, AsyncOp], in_flight: int = IN_FLIGHT) -> Side:
    """A side that runs each operation ``n`` times with ``in_flight`` awaited at once."""

    async def measure(op: str) -> dict[str, tuple[float, float]]:
        run, counter = ops[op], iter(_next_sessions(n))

        async def worker() -> None:
            for i in counter:
                await run(i)

        with _timer(n) as result:
            await asyncio.gather(*(worker() for _ in range(in_flight)))
        return {column: result[0]}

    return measure


def node(
    column: str, store: str, options: Mapping[str, Any], n: int, n_in_flight: int | None = None
) -> Side:
    """Node's store through fixtures/node/bench-store.js: ``n`` operations sequentially and
    ``n_in_flight`` (default ``n``) with ``IN_FLIGHT`` at once, columns ``column`` and
    ``column@64``. As many operations run first, untimed, as the Python sides' first round
    does for them: each measurement is a new Node process, whose JIT starts cold. The
    first one writes the sessions, the others find them there (as the Python sides do)."""
    seeded = False

    async def measure(op: str) -> dict[str, tuple[float, float]]:
        nonlocal seeded
        config = {
            "store": store,
            "options": options,
            "ops": [op],
            "n": n,
            "nInFlight": n_in_flight or n,
            "warmup": n_in_flight or n,
            "inFlight": [1, IN_FLIGHT],
            "sids": len(SIDS),
            "seed": not seeded,
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
        seeded = True
        rates = json.loads(out)
        return {
            name: (rates[f"{op}@{in_flight}"], rates[f"{op}@{in_flight} cpu"])
            for name, in_flight in ((column, 1), (f"{column}@{IN_FLIGHT}", IN_FLIGHT))
        }

    return measure


Table = dict[str, dict[str, float]]


async def compare(sides: Sequence[Side], rounds: int) -> tuple[Table, Table]:
    """({column: {op: median ops/s}}, {column: {op: median CPU us per op}}), each operation
    measured ``rounds`` times on every side in turn (a first, untimed round warms every
    side up)."""
    rates: Table = {}
    cpu: Table = {}
    for op in OPS:
        samples: dict[str, list[tuple[float, float]]] = {}
        for round_ in range(rounds + 1):
            for side in sides:
                for column, sample in (await side(op)).items():
                    if round_:
                        samples.setdefault(column, []).append(sample)
        for column, values in samples.items():
            rates.setdefault(column, {})[op] = statistics.median(rate for rate, _ in values)
            cpu.setdefault(column, {})[op] = statistics.median(used for _, used in values)
    return rates, cpu


def report(title: str, tables: tuple[Table, Table], ratios: Sequence[str]) -> None:
    """Print ops/s and CPU us per op by column, then each ratio ``"a/b"`` of two columns
    (with its goal, if written ``"a/b >= goal"``): of their rates, and the inverse ratio of
    their CPU per operation (above 1: ``a`` costs less CPU than ``b``)."""
    rates, cpu = tables
    print(title)
    _print_table("ops/s", rates, "{:>11,.0f}")
    _print_table("CPU us/op", cpu, "{:>11.1f}")
    width = max(len(ratio) for ratio in ratios) + 12
    print(f"{'ratio':<{width}}" + "".join(f"{op:>11}" for op in OPS))
    for ratio in ratios:
        over, under = ratio.split(" ")[0].split("/")
        for label, table, flip in (("ops/s", rates, False), ("by CPU", cpu, True)):
            values = [table[over][op] / table[under][op] for op in OPS]
            cells = "".join(f"{1 / v if flip else v:>11.2f}" for v in values)
            print(f"{ratio + ', ' + label:<{width}}" + cells)


def _print_table(unit: str, table: Table, cell: str) -> None:
    width = max(len(column) for column in table) + 2
    print(f"{unit:<{width}}" + "".join(f"{op:>11}" for op in OPS))
    for column, values in table.items():
        print(f"{column:<{width}}" + "".join(cell.format(values[op]) for op in OPS))
    print()
