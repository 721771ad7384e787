"""Every store against its Node twin in one table: store (redis, mongo, mysql, postgres) x
operation (get, set, touch, get+touch) x mode (the blocking store against Node sequentially;
the asyncio store with 64 in flight against Node with 64 in flight): ops/s here and in Node,
their ratio, each side's CPU microseconds per operation, and the time per operation of the
store over the raw driver's doing the same (``+10%``: the store takes 10% longer). Every
store's ``get_and_touch`` gets a row too, against Node's get then touch. get+touch restarts
the cookie before the touch on every side, as express-session's ``touch()`` does.

    python bench/bench_all.py [--stores redis,mongo,mysql,postgres] [-n 2000] [--rounds 5]
                              [--runs 1] [--markdown] [--mongo-url mongodb://...]

Each store's bench (bench_<store>.py) runs in turn with its defaults for everything else;
within a store, every side runs in turn round after round and the median of each is kept.
``--runs K`` goes through every store K times and prints each cell's median over the runs,
with the lowest and highest ratio of the runs in a last column: a machine whose speed changes
from one quarter of an hour to the next shows as a wide range instead of as one run's cell.
Absolute numbers drift with the machine; the ratios are what counts (goals: at least 1.0 on
every operation, 1.3 on get+touch, the store within 15% of the raw driver).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import os
import statistics
import sys
from typing import Any, NamedTuple

from harness import IN_FLIGHT, OPS, Table

STORES = ("redis", "mongo", "mysql", "postgres")
MODES = (("blocking", ""), (f"asyncio@{IN_FLIGHT}", f"@{IN_FLIGHT}"))


async def run_store(name: str, n: int, rounds: int, mongo_url: str | None) -> tuple[Table, Table]:
    """One store's bench, as its main() runs it (with its get_and_touch columns, if any)."""
    module = importlib.import_module(f"bench_{name}")
    one_step = {"one_step": True} if "one_step" in inspect.signature(module.run).parameters else {}
    if name == "redis":
        return await module.run("redis://127.0.0.1:6379/0", n, n * 10, rounds, False, **one_step)
    if name == "mysql":
        args = module.connect_args("mysql://root@127.0.0.1:3306/test")
        return await module.run(args, n, rounds, **one_step)
    if name == "postgres":
        url = "postgresql://postgres@127.0.0.1:5432/test"
        return await module.run(url, n, rounds, False, **one_step)
    with module.server(mongo_url) as url:
        return await module.run(url, n, rounds, **one_step)


class Figures(NamedTuple):
    """One row's figures in one run: ops/s and CPU µs per operation."""

    ours: float
    node: float
    ours_cpu: float
    node_cpu: float
    raw: float | None  # the raw driver's ops/s; None where the bench has no raw side


def figures(tables: tuple[Table, Table]) -> dict[tuple[str, str], Figures]:
    """One store's figures by (operation label, mode)."""
    rates, cpu = tables
    out = {}
    # a store's get_and_touch (one step) measures as "1-step", against Node's get then touch
    steps = [(op, op, "ours") for op in OPS]
    if "1-step" in rates:
        steps.append(("get_and_touch", "get+touch", "1-step"))
    for label, op, column in steps:
        for mode, suffix in MODES:
            ours, node, raw = f"{column}{suffix}", f"node{suffix}", f"raw{suffix}"
            out[label, mode] = Figures(
                rates[ours][op],
                rates[node][op],
                cpu[ours][op],
                cpu[node][op],
                rates[raw][op] if raw in rates else None,
            )
    return out


def rows(store: str, runs: list[dict[tuple[str, str], Figures]]) -> list[list[str]]:
    """The table's rows for one store, cells formatted: each figure the median of the runs'."""
    out = []
    for label, mode in runs[0]:
        each = [run[label, mode] for run in runs]
        ours = statistics.median(f.ours for f in each)
        ratios = [f.ours / f.node for f in each]
        ratio = statistics.median(ratios)
        goal = 1.3 if label in ("get+touch", "get_and_touch") else 1.0
        raws = [raw for f in each if (raw := f.raw) is not None]
        over_raw = f"{statistics.median(raws) / ours - 1:+.0%}" if raws else "n/a"
        row = [
            store,
            label,
            mode,
            f"{ours:,.0f}",
            f"{statistics.median(f.node for f in each):,.0f}",
            f"{ratio:.2f}" + ("" if ratio >= goal else " *"),
            f"{statistics.median(f.ours_cpu for f in each):.0f}",
            f"{statistics.median(f.node_cpu for f in each):.0f}",
            over_raw,
        ]
        if len(runs) > 1:
            row.append(f"{min(ratios):.2f}-{max(ratios):.2f}")
        out.append(row)
    return out


HEADER = [
    "store",
    "operation",
    "mode",
    "ours ops/s",
    "Node ops/s",
    "ours/Node",
    "ours CPU µs/op",
    "Node CPU µs/op",
    "vs raw driver",
]


def render(table: list[list[str]], markdown: bool) -> str:
    header = [*HEADER, "ours/Node, runs"] if table and len(table[0]) > len(HEADER) else HEADER
    if markdown:
        right = ["---"] * 3 + ["--:"] * (len(header) - 3)
        lines = [header, right, *table]
        return "\n".join("| " + " | ".join(line) + " |" for line in lines)
    widths = [max(len(line[i]) for line in [header, *table]) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i < 3 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in [header, *table]
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stores", default=",".join(STORES), help="comma-separated")
    parser.add_argument("-n", type=int, default=2000, help="operations per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="median of this many rounds")
    parser.add_argument("--runs", type=int, default=1, help="every store this many times")
    parser.add_argument("--markdown", action="store_true", help="a Markdown table")
    parser.add_argument("--mongo-url", default=os.environ.get("MONGO_URL"))
    args = parser.parse_args()
    stores = [name.strip() for name in args.stores.split(",") if name.strip()]
    if unknown := set(stores) - set(STORES):
        parser.error(f"unknown stores: {', '.join(sorted(unknown))}")
    runs: dict[str, list[dict[tuple[str, str], Figures]]] = {name: [] for name in stores}
    for run in range(args.runs):
        for name in stores:
            print(f"{name}{f' (run {run + 1})' if args.runs > 1 else ''}...", file=sys.stderr)
            tables: Any = asyncio.run(run_store(name, args.n, args.rounds, args.mongo_url))
            runs[name].append(figures(tables))
    table = [row for name in stores for row in rows(name, runs[name])]
    print(render(table, args.markdown))
    over = f", the median of {args.runs} runs" if args.runs > 1 else ""
    print(
        f"\nn={args.n} per measurement (Redis: {args.n * 10}, MySQL and PostgreSQL: "
        f"{args.n * 2} with {IN_FLIGHT} in flight), median of {args.rounds} rounds{over}; "
        "* below the goal (1.0, get+touch 1.3); vs raw driver: time per operation over the "
        "raw driver's doing the same",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
