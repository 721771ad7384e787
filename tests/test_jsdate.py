"""JS dates over their whole range (compat.jsdate), against V8's own Date: time values, their
JSON and UTC text, Dates past year 9999 in cookies, and local date-times under TZ."""

from __future__ import annotations

import json
import math
import os
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from token_session.compat import Cookie, JsDate, dumps, expires_ms, js_iso_ms
from token_session.compat.cookie import js_date, js_date_ms, parse_js_date
from token_session.compat.jsdate import MAX_TIME_MS, js_utc_string, time_clip
from token_session.errors import InvalidArgumentError
from token_session.web.cookies import serialize

from .node import NodeOracle, ensure_node_project, number_text
from .python_ops import answer

NOW = 1_700_000_000_123
EDGES = [
    0,
    -1,
    1e15,
    -1e15,
    MAX_TIME_MS,
    -MAX_TIME_MS,
    MAX_TIME_MS + 1,
    -MAX_TIME_MS - 1,
    -62_198_755_200_000,  # -000001-01-01
    -62_167_219_200_001,  # the last millisecond of year -1
    -62_167_219_200_000,  # 0000-01-01
    -62_135_596_800_001,  # just before datetime.min
    253_402_300_799_999,  # datetime.max, to the millisecond
    253_402_300_800_000,  # +010000-01-01
    1e15 + 0.7,
    -0.5,
    -1.5,
    2**53,
    1e300,
    math.inf,
    -math.inf,
    math.nan,
]
time_values = st.one_of(
    st.sampled_from(EDGES),
    st.integers(-MAX_TIME_MS - 10**12, MAX_TIME_MS + 10**12),
    st.floats(-9e15, 9e15),
)


@given(time_values)
@settings(max_examples=300)
def test_time_values_are_written_as_v8_writes_them(node: NodeOracle, ms: float) -> None:
    value, to_json, utc = node.out("date", ms=number_text(ms))
    clipped = time_clip(ms)
    assert (None if math.isnan(clipped) else clipped) == value
    assert js_iso_ms(ms) == to_json
    assert js_utc_string(ms) == utc
    assert dumps({"at": JsDate(ms)}) == json.dumps({"at": to_json}, separators=(",", ":"))


@given(st.integers(-MAX_TIME_MS, MAX_TIME_MS))
def test_date_json_reads_back_to_its_time_value(ms: int) -> None:
    text = js_iso_ms(ms)
    assert text is not None
    assert js_date_ms(text) == ms


def test_dates_past_year_9999_are_js_dates_and_the_rest_datetimes() -> None:
    assert js_date(253_402_300_799_999) == datetime(9999, 12, 31, 23, 59, 59, 999000, timezone.utc)
    assert js_date(253_402_300_800_000) == JsDate(253_402_300_800_000)
    assert js_date(-62_135_596_800_001) == JsDate(-62_135_596_800_001)
    assert js_date(9e15) == JsDate(math.nan)
    assert not JsDate(math.nan).valid and JsDate(1e15).valid
    assert repr(JsDate(1e15)) == "JsDate(+033658-09-27T01:46:40.000Z)"
    assert parse_js_date("+033658-09-27T01:46:40.000Z") is None  # no datetime holds it
    assert expires_ms({"cookie": {"expires": JsDate(1e15)}}) == 1e15
    assert math.isnan(expires_ms({"cookie": {"expires": JsDate(math.nan)}}) or 0)


# -- the Cookie over a Date's whole range ---------------------------------------------------


@pytest.mark.parametrize(
    "request_",
    [
        {"options": {"o": [["maxAge", {"n": "1e15"}]]}},
        {"options": {"o": [["maxAge", {"n": "-1e15"}]]}},
        {"options": {"o": [["maxAge", {"n": "9e15"}]]}},  # an Invalid Date
        {"options": {"o": [["maxAge", {"n": "9e15"}]]}, "touch": True},  # touched again
        {"options": {"o": [["maxAge", {"n": "8638000000000000"}]]}},  # now + it: just past
        {"options": {"o": [["expires", {"d": 1e15}]]}},
        {"options": {"o": [["expires", {"d": NOW}], ["originalMaxAge", {"n": "1e15"}]]}},
        {
            "options": {"o": [["expires", {"d": NOW}], ["originalMaxAge", {"n": "1e15"}]]},
            "touch": True,
        },
        {
            "options": {"o": [["expires", {"d": NOW}], ["originalMaxAge", {"n": "8.64e15"}]]},
            "touch": True,
        },
        {"options": {"o": []}, "assign": [["expires", {"d": -1e15}]]},
        {"options": {"o": []}, "assign": [["expires", {"d": 1e15}], ["maxAge", {"n": "1000"}]]},
    ],
)
def test_cookie_dates_past_year_9999_match_express_session(
    node: NodeOracle, request_: dict[str, Any]
) -> None:
    request = {"op": "cookie", "now": NOW, **request_}
    assert answer(request) == node.ask(**request)


def test_a_far_cookie_keeps_its_expiry_in_milliseconds() -> None:
    cookie = Cookie.from_json(
        {"originalMaxAge": 10**15, "expires": "+033715-08-28T16:33:13.986Z"}, clock=lambda: NOW
    )
    assert cookie.expires is None  # past datetime's years
    assert cookie.expires_ms == 1_001_796_136_393_986
    assert cookie.max_age == 1_001_796_136_393_986 - NOW
    cookie.touch()
    assert cookie.expires_ms == NOW + 10**15
    assert cookie.to_json()["expires"] == JsDate(NOW + 10**15)
    cookie.expires = JsDate(1_700_000_000_000)  # within datetime's years: a datetime again
    assert cookie.expires == datetime.fromtimestamp(1_700_000_000, timezone.utc)
    with pytest.raises(TypeError):
        cookie.expires = "2030-01-01"  # type: ignore[assignment]


def test_an_invalid_date_reads_as_nan_and_touches_to_another() -> None:
    cookie = Cookie(max_age=9e15, clock=lambda: NOW)
    assert cookie.expires is None
    assert math.isnan(cookie.expires_ms or 0) and math.isnan(cookie.max_age or 0)
    assert dumps(cookie.touch().to_json()) == (
        '{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"}'
    )


@pytest.mark.parametrize("ms", [1e15, -1e15, 253_402_300_800_000, MAX_TIME_MS, 9e15])
def test_set_cookie_expires_past_year_9999_matches_cookie_serialize(
    node: NodeOracle, ms: float
) -> None:
    expected = node.out(
        "cookieSerialize", name="a", value="b", options={"o": [["expires", {"d": ms}]]}
    )
    if "error" in expected:
        with pytest.raises(InvalidArgumentError, match=expected["error"]):
            serialize("a", "b", {"expires": JsDate(ms)})
    else:
        assert serialize("a", "b", {"expires": JsDate(ms)}) == expected["header"]


# -- local date-times -------------------------------------------------------------------------

LOCAL_TEXTS = [
    "2030-06-15T10:20:30",
    "2030-01-15T10:20",
    "2030-06-15 10:20:30",
    "2030-06-15t10:20:30.5",
    "2030-06-15T24:00:00",
    "2026-03-08T02:30:00",  # skipped in New York
    "2026-11-01T01:30:00.250",  # twice in New York
    "2026-10-04T02:15:00",  # Lord Howe's half-hour step
    "2026-04-05T01:45:00",
    "1800-01-01T00:00:00",  # local mean time
    "1883-11-18T12:03:57",
    "+033658-09-27T01:46:40",  # the zone's last rule, far on
    "-000001-01-01T00:00:00",
    "+275760-09-12T20:00:00",
    "+275760-09-12T20:00:01",
    "+275760-09-13T09:00:00",
    "+275760-09-22T23:59:59",
    "+275760-09-23T00:00:01",
    "-271821-04-19T19:03:58",
    "-271821-04-19T19:03:57",
    "-271821-04-20T09:00:00",
    "-271821-04-10T00:00:00",
    # dates alone and explicit offsets stay UTC
    "2030-06-15",
    "2030-06-15T10:20:30Z",
    "2030-06-15T10:20:30.000Z",
    "2030-06-15T10:20:30+02:00",
    "Tue, 14 Nov 2023 22:13:20",
    "Tue, 14 Nov 2023 22:13",
    "Tue, 14 Nov 2023 22:13:20 GMT",
    "Tue, 14 Nov 2023 22:13:20 -0000",
    "Tue, 14 Nov 2023 22:13:20 +0100",
]
ZONES = ["America/New_York", "Asia/Tokyo", "Australia/Lord_Howe", "Europe/London", "UTC"]


def node_dates_in(zone: str, texts: list[str]) -> list[float | None]:
    """``Number(new Date(text))`` for each text, by a Node started with ``TZ=zone``."""
    script = (
        "let s='';process.stdin.on('data',c=>s+=c).on('end',()=>process.stdout.write("
        "JSON.stringify(JSON.parse(s).map(t=>{const v=Number(new Date(t));"
        "return Number.isNaN(v)?null:v}))))"
    )
    result = subprocess.run(
        ["node", "-e", script],
        cwd=ensure_node_project(),
        input=json.dumps(texts),
        env={**os.environ, "TZ": zone},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    values: list[float | None] = json.loads(result.stdout)
    return values


@pytest.fixture
def local_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Sets this process's local time zone (TZ and time.tzset), restored afterwards."""

    def use(zone: str) -> None:
        monkeypatch.setenv("TZ", zone)
        time.tzset()

    yield use
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("zone", ZONES)
def test_a_date_time_without_offset_is_local_time_as_node_reads_it(
    local_zone: Any, zone: str
) -> None:
    expected = node_dates_in(zone, LOCAL_TEXTS)
    local_zone(zone)
    got = [js_date_ms(text) for text in LOCAL_TEXTS]
    assert [None if math.isnan(ms) else ms for ms in got] == expected
    if zone == "America/New_York":
        assert js_date_ms("2030-06-15T10:20:30") == 1_907_763_630_000  # 14:20:30Z


def test_each_text_reads_as_node_reads_it_whatever_was_read_before(local_zone: Any) -> None:
    # the last Date#toJSON text read is remembered: repeats, and texts that share its
    # beginning or its form, must still read as V8 reads each of them
    texts = [
        "2030-06-15T10:20:30.000Z",
        "2030-06-15T10:20:30.000Z",
        "2030-06-15T10:20:30.001Z",
        "2030-06-15T10:20:30.000Z",
        "2030-02-30T10:20:30.000Z",  # runs on into March, past the fast path
        "2030-02-30T10:20:30.000Z",
        "2030-06-15T10:20:30.000",  # no offset: local time
        "2030-06-15T10:20:30.000Z ",
        "2030-06-15T10:20:30.000Z",
        "",
        "2030-06-15T10:20:30.000Z",
    ]
    expected = node_dates_in("Asia/Tokyo", texts)
    local_zone("Asia/Tokyo")
    got = [js_date_ms(text) for text in texts]
    assert [None if math.isnan(ms) else ms for ms in got] == expected
    assert got[0] == got[1] == got[3] == got[-1] == got[2] - 1 != got[6]
