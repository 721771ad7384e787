"""Encrypted MongoDB sessions: the cost of one get and one set, ours (MongoStore) beside
connect-mongo's (6.0.0, and 4.6.0 over kruptein 3.0.8), for each kind of encryption, on one
server in one run, sequentially.

    python bench/bench_mongo_crypto.py [--url mongodb://127.0.0.1:27017/] [-n 300] [--rounds 3]

Key derivation is what costs: kruptein derives a key (PBKDF2-SHA512, 15,000 iterations)
from a new salt on every write and again on every read; we derive one per salt and keep it,
so only the first read of a record written elsewhere pays ("ours, first read": the key
cache emptied before each get). The WebCrypto adapter derives its key (PBKDF2-SHA256,
310,000 iterations) once, on both sides. Without --url (and MONGO_URL) it starts the test
suite's MongoDB-protocol server. The ratios are what counts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from typing import Any

import pymongo
from bench_mongo import server
from harness import NODE, session

from token_session.stores import MongoStore

DB = "token_session_bench_crypto"
SECRET = "Sq2-Kx9!bench secret"
SIDS = [f"bench-{i}" for i in range(200)]

# name: (Node store, its options, our options)
VARIANTS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "none": ("connect-mongo-6", {}, {}),
    "6.0.0 crypto (kruptein 3.0.8)": (
        "connect-mongo-6",
        {"crypto": {"secret": SECRET}},
        {"crypto": {"secret": SECRET}},
    ),
    "4.6.0 crypto (kruptein 3.0.8)": (
        "connect-mongo-4",
        {"crypto": {"secret": SECRET}, "kruptein": "3.0.8"},
        {"crypto": {"secret": SECRET}},
    ),
    "6.0.0 WebCrypto AES-GCM": (
        "connect-mongo-6",
        {"webcrypto": {"secret": SECRET}},
        {"crypto_adapter": {"adapter": "webcrypto", "secret": SECRET}},
    ),
    "6.0.0 WebCrypto AES-CBC": (
        "connect-mongo-6",
        {"webcrypto": {"secret": SECRET, "algorithm": "AES-CBC"}},
        {"crypto_adapter": {"adapter": "webcrypto", "secret": SECRET, "algorithm": "AES-CBC"}},
    ),
}


def ours(store: MongoStore, n: int, cold: bool = False) -> dict[str, float]:
    """Microseconds per set and per get (``cold``: per get with no derived key kept)."""
    sessions = [session(i) for i in range(len(SIDS))]
    start = time.perf_counter()
    for i in range(n):
        store.set(SIDS[i % len(SIDS)], sessions[i % len(SIDS)])
    set_us = (time.perf_counter() - start) / n * 1e6
    keys = getattr(store.codec.sealer.adapter, "_keys", None) if store.codec.sealer else None
    start = time.perf_counter()
    for i in range(n):
        if cold and keys is not None:
            keys.clear()
        assert store.get(SIDS[i % len(SIDS)]) is not None
    return {"set": set_us, "get": (time.perf_counter() - start) / n * 1e6}


def node(name: str, options: dict[str, Any], n: int) -> dict[str, float]:
    config = {
        "store": name,
        "options": options,
        "ops": ["set", "get"],
        "n": n,
        "inFlight": [1],
        "sids": len(SIDS),
        "warmup": min(n, 50),
    }
    out = subprocess.run(
        ["node", "bench-store.js", json.dumps(config)],
        cwd=NODE,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rates = json.loads(out)
    return {op: 1e6 / rates[f"{op}@1"] for op in ("set", "get")}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=os.environ.get("MONGO_URL"))
    parser.add_argument("-n", type=int, default=300, help="operations per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="median of this many rounds")
    args = parser.parse_args()
    with server(args.url) as url:
        client: pymongo.MongoClient[Any] = pymongo.MongoClient(url, tz_aware=True)
        node_url = f"{url.split('?')[0].rstrip('/')}/{DB}"
        print(f"MongoDB ({url}), n={args.n}, median of {args.rounds} rounds; us per operation")
        head = ["set ours", "set node", "node/ours", "get ours", "get node", "node/ours"]
        print(f"{'':<32}" + "".join(f"{h:>11}" for h in head) + f"{'get, first read':>17}")
        for variant, (store_name, node_options, our_options) in VARIANTS.items():
            collection = "c" + str(abs(hash(variant)))
            store = MongoStore(client, db_name=DB, collection_name=collection, **our_options)
            ours(store, 20)  # warm: the WebCrypto key derived, the connection made
            samples: dict[str, list[float]] = {}
            for _ in range(args.rounds):
                options = {"mongoUrl": node_url, "collectionName": collection + "n", **node_options}
                sides = [("ours", ours(store, args.n)), ("node", node(store_name, options, args.n))]
                if "kruptein" in variant:  # per-record keys: the first read derives one
                    sides.append(("cold", ours(store, max(args.n // 4, 10), cold=True)))
                for side, measured in sides:
                    for op, us in measured.items():
                        samples.setdefault(f"{op} {side}", []).append(us)
            m = {key: statistics.median(values) for key, values in samples.items()}
            cells = [
                m["set ours"],
                m["set node"],
                m["set node"] / m["set ours"],
                m["get ours"],
                m["get node"],
                m["get node"] / m["get ours"],
            ]
            print(
                f"{variant:<32}"
                + "".join(
                    f"{c:>11.1f}" if i % 3 != 2 else f"{c:>11.2f}" for i, c in enumerate(cells)
                )
                + (f"{m['get cold']:>17.1f}" if "get cold" in m else f"{'-':>17}")
            )
        client.drop_database(DB)
        client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
