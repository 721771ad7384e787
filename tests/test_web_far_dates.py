"""The middleware on stored sessions whose expiry is far in time, against express-session
1.19.0 itself: a cookie expiring past year 9999 (originalMaxAge 1e15), and one whose touch
goes past JS's last date (an Invalid Date, stored as expires null, and no Set-Cookie)."""

from __future__ import annotations

import json
import logging
import subprocess
from typing import Any

import pytest

from token_session.compat import dumps, encode_cookie_value, js_iso_ms
from token_session.flows import run
from token_session.stores import MemoryStore
from token_session.web import Request, SessionOptions, commit_flow, load_flow

from .node import ensure_node_project
from .test_web_express_cases import NOW, SECRET, run_asgi, run_wsgi

pytestmark = pytest.mark.node

FAR = 10**15
BEYOND = 8_640_000_000_000_000 - NOW + 1_000  # now + it is past +275760-09-13

STORED = {
    "far": {
        "cookie": {
            "originalMaxAge": FAR,
            "expires": js_iso_ms(NOW + FAR - 30_000),
            "httpOnly": True,
            "path": "/",
        },
        "user": "ada",
    },
    "beyond": {
        "cookie": {
            "originalMaxAge": BEYOND,
            "expires": js_iso_ms(NOW + 30_000),
            "httpOnly": True,
            "path": "/",
        },
        "user": "ada",
    },
}
BASE = {"secret": SECRET, "resave": False, "saveUninitialized": False}
CASES = {
    f"{stored}, {name}": {
        "now": NOW,
        "options": {**BASE, **options},
        "stored": {stored: dumps(STORED[stored])},
        "request": {
            "path": "/",
            "headers": {"Cookie": "connect.sid=" + encode_cookie_value(stored, SECRET)},
        },
        "actions": actions,
    }
    for stored in STORED
    for name, options, actions in [
        ("untouched", {}, []),
        ("changed", {}, [["set", "user", "bo"]]),
        ("rolling", {"rolling": True}, []),
        ("resave", {"resave": True}, []),
        ("maxAge 1e15", {}, [["maxAge", FAR], ["set", "user", "bo"]]),
    ]
}


@pytest.fixture(scope="module")
def express_answers() -> dict[str, dict[str, Any]]:
    result = subprocess.run(
        ["node", "express-session-cases.js"],
        cwd=ensure_node_project(),
        input=json.dumps(list(CASES.values())),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return dict(zip(CASES, json.loads(result.stdout), strict=True))


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("runner", [run_asgi, run_wsgi], ids=["asgi", "wsgi"])
def test_sessions_far_in_time_go_as_in_express_session(
    name: str, runner: Any, express_answers: dict[str, dict[str, Any]]
) -> None:
    expected = express_answers[name]
    assert runner(CASES[name]) == {k: expected[k] for k in ("calls", "setCookie")}


def test_the_far_cookie_is_sent_with_its_year(express_answers: dict[str, dict[str, Any]]) -> None:
    (header,) = express_answers["far, changed"]["setCookie"]
    assert "; Expires=" in header and " 33715 " in header
    # past JS's last date: saved with expires null, and no cookie
    answer = express_answers["beyond, changed"]
    assert answer["setCookie"] == []
    assert '"expires":null' in answer["calls"][-1][2]


def test_an_invalid_expiry_is_logged_not_sent(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore(clock=lambda: NOW)
    store.set("beyond", STORED["beyond"])
    options = SessionOptions(secret=SECRET, clock=lambda: NOW)
    request = Request("/", {"cookie": "connect.sid=" + encode_cookie_value("beyond", SECRET)})
    session = run(store, load_flow(options, request))
    assert session is not None
    session["user"] = "bo"
    with caplog.at_level(logging.ERROR, "token_session.web"):
        assert run(store, commit_flow(options, session)) == []
    assert "option expires is invalid" in caplog.text
    assert session.cookie.expires is None and session.cookie.expires_ms != session.cookie.expires_ms
    # the store is handed the Invalid Date, written as null; like connect-redis (a NaN TTL)
    # the memory store drops a session whose expiry is one
    assert dumps(session.to_store()) == (
        '{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"user":"bo"}'
    )
    assert store.get("beyond") is None
