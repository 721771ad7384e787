"""compat.dumps / compat.loads against the stdlib json module on realistic sessions.

Run: python bench/bench_codec.py. Both sides are timed in the same run, interleaved, and the
ratio is what counts (goal: at most 1.5x stdlib json).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from token_session.compat import dumps, loads

SESSIONS: dict[str, dict[str, Any]] = {
    "token-session": {"name": "jhon", "count": 0, "cookie": {"maxAge": 0}},
    "express login": {
        "cookie": {
            "originalMaxAge": 86400000,
            "expires": "2026-11-28T10:00:00.000Z",
            "httpOnly": True,
            "path": "/",
            "secure": True,
            "sameSite": "lax",
        },
        "passport": {"user": "5f1d7c3a9b1e8a0012345678"},
        "csrfSecret": "q8Zl0S3Wb3Yq0bH3tq8x2Q",
        "flash": {},
    },
    "shop cart": {
        "cookie": {
            "originalMaxAge": 3600000,
            "expires": "2026-11-27T12:00:00.000Z",
            "httpOnly": True,
            "path": "/",
        },
        "user": {"id": 1042, "email": "zoë@example.com", "roles": ["customer"], "verified": True},
        "cart": [
            {"sku": f"SKU-{i:05d}", "qty": i % 3 + 1, "title": f"Item número {i}", "gift": False}
            for i in range(25)
        ],
        "lastSeen": "2026-11-27T09:41:12.345Z",
        "prefs": {"lang": "es-AR", "currency": "ARS", "newsletter": None},
    },
    "with floats": {
        "cookie": {"originalMaxAge": None, "expires": None, "httpOnly": True, "path": "/"},
        "geo": {"lat": -34.6037, "lon": -58.3816},
        "scores": [0.5, 12.75, 99.9, 3.14159],
        "total": 149.97,
    },
}


def per_call(fn: Callable[[], object], rounds: int = 7, target: float = 0.05) -> float:
    """Median seconds per call over ``rounds`` rounds of about ``target`` seconds each."""
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        if time.perf_counter() - start >= target / 10:
            break
        calls *= 2
    calls = max(1, int(calls * (target / max(time.perf_counter() - start, 1e-9))))
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples)


def main() -> int:
    stdlib_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    print(f"python {sys.version.split()[0]}  {datetime.now(timezone.utc):%Y-%m-%d %H:%M}Z")
    print(
        f"{'payload':<15}{'bytes':>7}{'dumps µs':>10}{'json µs':>9}{'ratio':>7}"
        f"{'loads µs':>10}{'json µs':>9}{'ratio':>7}"
    )
    worst = 0.0
    for name, session in SESSIONS.items():
        text = dumps(session)
        ours_d = per_call(lambda s=session: dumps(s))
        std_d = per_call(lambda s=session: stdlib_dumps(s))
        ours_l = per_call(lambda t=text: loads(t))
        std_l = per_call(lambda t=text: json.loads(t))
        worst = max(worst, ours_d / std_d, ours_l / std_l)
        print(
            f"{name:<15}{len(text.encode()):>7}{ours_d * 1e6:>10.2f}{std_d * 1e6:>9.2f}"
            f"{ours_d / std_d:>7.2f}{ours_l * 1e6:>10.2f}{std_l * 1e6:>9.2f}{ours_l / std_l:>7.2f}"
        )
    print(f"worst ratio {worst:.2f} (goal <= 1.5)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
