"""Cookie, signatures and ids against express-session, cookie-signature and uid-safe, live."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from token_session.compat import (
    Cookie,
    decode_cookie_value,
    encode_cookie_value,
    expires_ms,
    generate_sid,
    sign,
    unsign,
)

from .node import NodeOracle, tag
from .python_ops import answer

NOW = 1_700_000_000_123

cookie_values = {
    "maxAge": st.one_of(st.none(), st.integers(-(10**9), 10**12), st.floats(0, 10**9)),
    "expires": st.datetimes(
        min_value=datetime(1990, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.just(timezone.utc),
    ),
    "originalMaxAge": st.one_of(st.none(), st.integers(0, 10**10)),
    "httpOnly": st.booleans(),
    "secure": st.one_of(st.booleans(), st.just("auto")),
    "path": st.sampled_from(["/", "/app"]),
    "domain": st.sampled_from(["example.com", ".example.org"]),
    "sameSite": st.sampled_from(["lax", "strict", "none", True]),
    "partitioned": st.booleans(),
    "priority": st.sampled_from(["low", "medium", "high"]),
}
cookie_options = st.lists(st.sampled_from(sorted(cookie_values)), unique=True, max_size=6).flatmap(
    lambda names: st.tuples(*(st.tuples(st.just(n), cookie_values[n]) for n in names))
)


@given(cookie_options, st.booleans())
@settings(max_examples=300)
def test_cookie_to_json_matches_express_session(
    node: NodeOracle, options: tuple[tuple[str, Any], ...], touch: bool
) -> None:
    request = {"op": "cookie", "now": NOW, "options": tag(dict(options)), "touch": touch}
    assert answer(request) == node.ask(**request)


def test_cookie_keyword_options_and_defaults() -> None:
    cookie = Cookie(max_age=60_000, secure=True, same_site="lax", clock=lambda: NOW)
    assert cookie.to_json() == {
        "originalMaxAge": 60_000,
        "expires": datetime.fromtimestamp((NOW + 60_000) / 1000, timezone.utc),
        "secure": True,
        "httpOnly": True,
        "path": "/",
        "sameSite": "lax",
    }
    assert cookie.max_age == 60_000
    assert Cookie(clock=lambda: NOW).to_json() == {
        "originalMaxAge": None,
        "expires": None,
        "httpOnly": True,
        "path": "/",
    }


def test_cookie_touch_restarts_expiry_from_original_max_age() -> None:
    clock = [NOW]
    cookie = Cookie(max_age=10_000, clock=lambda: clock[0])
    clock[0] += 4_000
    assert cookie.max_age == 6_000
    cookie.touch()
    assert cookie.max_age == 10_000
    assert cookie.expires == datetime.fromtimestamp((NOW + 14_000) / 1000, timezone.utc)


def test_cookie_from_json_revives_a_stored_cookie() -> None:
    stored = {
        "originalMaxAge": 3_600_000,
        "expires": "2023-11-14T23:13:20.123Z",
        "httpOnly": True,
        "path": "/",
    }
    cookie = Cookie.from_json(stored, clock=lambda: NOW)
    assert cookie.max_age == 3_600_000
    assert cookie.original_max_age == 3_600_000
    assert cookie.to_json()["expires"] == datetime(2023, 11, 14, 23, 13, 20, 123000, timezone.utc)


def test_cookie_rejects_bad_options() -> None:
    with pytest.raises(TypeError):
        Cookie(max_age="soon")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unknown cookie option"):
        Cookie(maxAge=5)


@given(st.text(max_size=40), st.text(min_size=1, max_size=20))
@settings(max_examples=200)
def test_sign_matches_cookie_signature(node: NodeOracle, value: str, secret: str) -> None:
    signed = sign(value, secret)
    assert signed == node.out("sign", value=value, secret=secret)
    assert unsign(signed, secret) == value
    assert node.out("unsign", value=signed, secret=secret) == value


def test_unsign_rejects_tampering_and_accepts_rotated_secrets() -> None:
    signed = sign("tok", "new")
    assert unsign(signed, ["new", "old"]) == "tok"
    assert unsign(sign("tok", "old"), ["new", "old"]) == "tok"
    assert unsign(sign("tok", "other"), ["new", "old"]) is None
    assert unsign(signed[:-1] + ("A" if signed[-1] != "A" else "B"), "new") is None
    assert unsign("tok", "new") is None
    with pytest.raises(ValueError):
        unsign(signed, [])


@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=20))
@settings(max_examples=200)
def test_cookie_value_matches_express_session(node: NodeOracle, sid: str, secret: str) -> None:
    header = node.out("setCookie", name="connect.sid", sid=sid, secret=secret)
    assert header == f"connect.sid={encode_cookie_value(sid, secret)}"
    assert decode_cookie_value(header.split("=", 1)[1], [secret]) == sid


def test_decode_cookie_value_ignores_unsigned_and_forged() -> None:
    assert decode_cookie_value("plain-sid", "s") is None
    assert decode_cookie_value("s%3Aabc.forged", "s") is None
    assert decode_cookie_value("%E0%A4%A", "s") is None


def test_generate_sid_is_uid_safe_24() -> None:
    sids = {generate_sid() for _ in range(2000)}
    assert len(sids) == 2000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32}", sid) for sid in sids)
    # every character of the alphabet shows up: it is base64url, not hex or a subset
    assert set("".join(sids)) == set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )


def test_cookie_expires_naive_datetime_rejected() -> None:
    cookie = Cookie(clock=lambda: NOW)
    with pytest.raises(TypeError):
        cookie.expires = datetime(2030, 1, 1)
    cookie.expires = datetime(2030, 1, 1, tzinfo=timezone(timedelta(hours=2)))
    assert cookie.to_json()["expires"] == datetime(2029, 12, 31, 22, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "expires",
    [
        "2030-01-01T00:00:00.000Z",
        "2030-01-01T00:00:00Z",
        "2030-01-01T02:00:00.123+02:00",
        "2030-01-01",
        "2030-06-15T10:20:30",
        "Tue, 14 Nov 2023 22:13:20 GMT",
        "Fri, 27 Nov 2026 09:29:27 +0100",
        "not a date",
        # where V8's reading is unusual: runs on, 24:00, offsets, years, ranges
        "2026-02-30T00:00:00.000Z",
        "2026-04-31",
        "2026-11-32",
        "2026-13-01",
        "2026-11-27T24:00:00.000Z",
        "2026-11-27T24:00:00.001Z",
        "2026-11-27t09:29:27z",
        "2026-11-27 09:29:27Z",
        "2026-11-27T09:29Z",
        "2026-11-27Z",
        "2026-11-27T09:29:27.1234Z",
        "2026-11-27T09:29:27.123+0100",
        "2026-11-27T09:29:27.123-05:30",
        "2026-11-27T09:29:27.123+24:00",
        "2026-11",
        "2026",
        "+002026-11-27T00:00:00.000Z",
        "-000000-01-01T00:00:00Z",
        "-000001-01-01T00:00:00Z",
        "+275760-09-13T00:00:00.000Z",
        "+275760-09-13T00:00:00.001Z",
        "1900-02-29T00:00:00Z",
        "2026-11-27T09:60:00Z",
        "2026-11-27T9:29:27Z",
        " 2026-11-27T09:29:27.123Z",
        "",
        None,
        0,
        1_700_000_000_000,
        True,
        {"o": []},
        [],
    ],
)
def test_expires_ms_reads_cookie_expires_as_node_stores_do(node: NodeOracle, expires: Any) -> None:
    session = {"o": [["cookie", {"o": [["expires", expires]]}]]}
    python_session = {"cookie": {"expires": {} if isinstance(expires, dict) else expires}}
    if isinstance(expires, int) and not isinstance(expires, bool):
        session = {"o": [["cookie", {"o": [["expires", {"n": str(expires)}]]}]]}
    node_ms = node.out("expiresMs", session=session)
    ours = expires_ms(python_session)
    if node_ms == "none":
        assert ours is None
    elif node_ms == "NaN":
        assert ours is not None and math.isnan(ours)
    else:
        assert ours == node_ms


@pytest.mark.parametrize("falsy", [math.nan, 0.0, -0.0, "", None, False])
def test_expires_ms_takes_js_falsy_values_as_no_expiry(falsy: Any) -> None:
    assert expires_ms({"cookie": {"expires": falsy}}) is None


def test_a_stored_cookie_without_original_max_age_touches_to_undefined() -> None:
    # token-session's records hold cookie {maxAge: 0}: express-session revives them with
    # originalMaxAge undefined, and a touch leaves neither originalMaxAge nor expires
    cookie = Cookie.from_json({"maxAge": 0}, clock=lambda: NOW)
    assert cookie.touch().to_json() == {"httpOnly": True, "path": "/"}
    assert cookie.expires is None
