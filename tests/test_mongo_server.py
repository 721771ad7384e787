"""The MongoDB server the tests start (tests/mongo_launcher.py over nx-27017 / neosqlite):
it behaves like mongod for every operation our MongoStore (pymongo, sync and async) and
connect-mongo 6.0.0 / 4.6.0 (through the real Node drivers 7.9.0 / 4.17.2) use.

The upstream release is started too, to show each defect the launcher fixes is real; the
launcher refuses to serve when any one fix is left out."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import math
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bson
import pymongo
import pytest
from bson import Binary, Code, Decimal128, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.int64 import Int64
from bson.raw_bson import RawBSONDocument
from pymongo import AsyncMongoClient, MongoClient, WriteConcern
from pymongo.errors import ProtocolError

from .mongo_launcher import FIXES
from .mongo_server import MongoServer, MongoServerError, start_mongo_server
from .node import NODE_PROJECT, NodeUnavailableError, ensure_node_project

HOUR = dt.timedelta(hours=1)
RAW = bson.CodecOptions(document_class=RawBSONDocument)


def utcnow() -> dt.datetime:
    """Now as pymongo decodes a BSON date: naive UTC, milliseconds."""
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def alive(now: dt.datetime) -> dict[str, Any]:
    """connect-mongo's filter for a session that has not expired."""
    return {"$or": [{"expires": {"$exists": False}}, {"expires": {"$gt": now}}]}


def raw_bytes(coll: Any, _id: Any) -> bytes:
    doc = coll.with_options(codec_options=RAW).find_one({"_id": _id})
    assert doc is not None, f"no document {_id!r}"
    return bytes(doc.raw)


def connect_mongo_update(sid: str, session: Any, expires: dt.datetime, now: dt.datetime) -> Any:
    """connect-mongo 6.0.0's ``set`` with ``touchAfter`` and ``timestamps`` on."""
    return {
        "$set": {"_id": sid, "session": session, "expires": expires, "lastModified": now},
        "$setOnInsert": {"createdAt": now},
        "$currentDate": {"updatedAt": True},
    }


@pytest.fixture(scope="module")
def server() -> Iterator[MongoServer]:
    try:
        with MongoServer.temporary(ttl_interval=1.0) as running:
            yield running
    except MongoServerError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def client(server: MongoServer) -> Iterator[MongoClient[dict[str, Any]]]:
    with MongoClient(server.url, serverSelectionTimeoutMS=5000) as mongo:
        yield mongo


@pytest.fixture
def db(client: MongoClient[dict[str, Any]]) -> Iterator[Any]:
    name = f"t_{uuid.uuid4().hex[:10]}"
    yield client[name]
    client.drop_database(name)


# --------------------------------------------------------------------------------------
# The harness
# --------------------------------------------------------------------------------------


def _process_gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"  # exited, not yet reaped


def test_starts_fast_on_loopback_and_leaves_nothing_behind() -> None:
    started = time.monotonic()
    with MongoServer.temporary() as running:
        elapsed = time.monotonic() - started
        pid = running.pid
        assert pid is not None
        with MongoClient(running.url, serverSelectionTimeoutMS=5000) as mongo:
            assert mongo.admin.command("ping")["ok"] == 1
        # Bound to 127.0.0.1 only: the same port on another loopback address is closed.
        with pytest.raises(OSError), socket.create_connection(("127.0.0.2", running.port), 1):
            pass
        root = running.root
    assert elapsed < 3, f"the server took {elapsed:.2f} s to start"
    assert _process_gone(pid)
    assert not root.exists()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", running.port), 1):
        pass


def test_start_mongo_server_yields_a_loopback_url() -> None:
    with start_mongo_server() as url:
        assert url.startswith("mongodb://127.0.0.1:") and url.endswith("/")
        with MongoClient(url, serverSelectionTimeoutMS=5000) as mongo:
            assert mongo.admin.command("ping")["ok"] == 1


@pytest.mark.parametrize("fix", sorted(FIXES))
def test_the_self_check_refuses_a_server_missing_any_fix(fix: str) -> None:
    with (
        pytest.raises(
            MongoServerError, match=r"(?s)status 3 before serving:.*self-check failed, refusing"
        ),
        MongoServer.temporary(extra_args=("--without-fix", fix)),
    ):
        pass


def test_the_server_stops_when_its_harness_dies() -> None:
    harness = (
        "import os, sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
        "from tests.mongo_server import MongoServer;"
        "server = MongoServer(Path(sys.argv[2])); server.start();"
        "print(server.pid, flush=True); os._exit(0)"
    )
    project = Path(__file__).resolve().parent.parent
    root = Path(tempfile.mkdtemp(prefix="token-session-mongo-orphan-"))
    try:
        result = subprocess.run(
            [sys.executable, "-c", harness, str(project), str(root)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        pid = int(result.stdout)
        deadline = time.monotonic() + 15
        while not _process_gone(pid):
            assert time.monotonic() < deadline, f"launcher {pid} outlived its harness"
            time.sleep(0.1)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_restarted_server_keeps_its_port_and_data() -> None:
    with (
        MongoServer.temporary(ttl_interval=1.0) as running,
        MongoClient(running.url, serverSelectionTimeoutMS=10000) as mongo,
    ):
        coll = mongo.restart_check.sessions
        coll.create_index([("expires", 1)], expireAfterSeconds=0)
        expires = utcnow() + HOUR
        coll.update_one(
            {"_id": "sid"}, {"$set": {"session": "{}", "expires": expires}}, upsert=True
        )
        coll.insert_one({"_id": "expired", "expires": utcnow() - HOUR})
        url = running.url
        running.stop()
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", running.port), 1):
            pass
        assert running.start() == url
        assert coll.find_one({"_id": "sid"}) == {"_id": "sid", "expires": expires, "session": "{}"}
        assert any(i.get("expireAfterSeconds") == 0 for i in coll.index_information().values())
        _wait_until(  # the monitor runs again
            lambda: coll.find_one({"_id": "expired"}) is None, "an expiry after the restart"
        )


# --------------------------------------------------------------------------------------
# The upstream release, as shipped: each defect the launcher fixes
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def upstream_server() -> Iterator[str]:
    """nx-27017 0.8.1 exactly as released, on a free loopback port."""
    root = Path(tempfile.mkdtemp(prefix="nx27017-upstream-"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable,
        "-c",
        "import sys; from nx_27017.nx_27017 import main; sys.exit(main())",
        "--host=127.0.0.1",
        f"--port={port}",
        f"--data-dir={root / 'data'}",
        f"--log-file={root / 'log'}",
        f"--pid-file={root / 'pid'}",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"mongodb://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            assert proc.poll() is None, "the upstream server exited"
            assert time.monotonic() < deadline, "the upstream server did not start"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


def test_the_upstream_release_has_the_defects_the_launcher_fixes() -> None:
    with upstream_server() as url, MongoClient(url, serverSelectionTimeoutMS=5000) as mongo:
        db = mongo.upstream
        now = utcnow()
        later = now + HOUR

        # 1. {_id: X, $or: [...]} returns another document (its SQL lacks parentheses).
        db.s.insert_many([{"_id": "a", "expires": later}, {"_id": "b", "expires": later}])
        assert sorted(d["_id"] for d in db.s.find({"_id": "a", **alive(now)})) == ["a", "b"]

        # 2. A date in $set without _id (connect-mongo's touch) is stored as a string, and
        #    a boolean as an integer.
        db.s.update_one({"_id": "a"}, {"$set": {"expires": later, "flag": True}})
        assert db.s.find_one({"_id": "a"}) == {
            "_id": "a",
            "expires": later.isoformat(" "),
            "flag": 1,
        }

        # 5. $type "date" matches no date.
        assert db.s.find_one({"_id": "b", "expires": {"$type": "date"}}) is None

        # 4. No TTL monitor: the expired document disappears at the next read instead.
        db.ttl.create_index([("expires", 1)], expireAfterSeconds=0)
        db.ttl.insert_one({"_id": "old", "expires": now - dt.timedelta(seconds=5)})
        assert db.ttl.find_one({}) is None

        # Also: an integer _id taken for a row id updates another document.
        db.ints.insert_many([{"_id": 2, "v": "two"}, {"_id": 1, "v": "one"}])
        db.ints.update_one({"_id": 2, "v": {"$type": "string"}}, {"$set": {"hit": 1}})
        assert db.ints.find_one({"hit": 1}) == {"_id": 1, "v": "one", "hit": 1}

    # 3. A w:0 write is lost and the reply it should not get breaks the next command.
    with upstream_server() as url, MongoClient(url, maxPoolSize=1) as mongo:
        mongo.upstream.w.insert_one({"_id": 1})
        mongo.upstream.w.with_options(write_concern=WriteConcern(w=0)).delete_one({"_id": 1})
        time.sleep(0.2)
        with pytest.raises(ProtocolError, match="Got response id"):
            mongo.upstream.w.find_one({})
    with upstream_server() as url, MongoClient(url) as mongo, MongoClient(url) as other:
        mongo.upstream.w.with_options(write_concern=WriteConcern(w=0)).insert_one({"_id": 2})
        time.sleep(0.2)
        assert other.upstream.w.find_one({"_id": 2}) is None


# --------------------------------------------------------------------------------------
# What connect-mongo and our store do, with pymongo
# --------------------------------------------------------------------------------------


def test_get_filter_matches_that_id_only(db: Any) -> None:
    now = utcnow()
    db.s.insert_many(
        [
            {"_id": "a", "session": "A", "expires": now + HOUR},
            {"_id": "b", "session": "B", "expires": now + HOUR},
            {"_id": "expired", "session": "X", "expires": now - dt.timedelta(seconds=1)},
            {"_id": "no-expires", "session": "N"},
        ]
    )
    assert db.s.find_one({"_id": "a", **alive(now)})["session"] == "A"
    assert [d["_id"] for d in db.s.find({"_id": "b", **alive(now)})] == ["b"]
    assert db.s.find_one({"_id": "missing", **alive(now)}) is None
    assert db.s.find_one({"_id": "expired", **alive(now)}) is None
    assert db.s.find_one({"_id": "no-expires", **alive(now)})["session"] == "N"
    # The same filter in every command that takes one.
    assert db.s.count_documents({"_id": "a", **alive(now)}) == 1
    assert db.s.update_one({"_id": "missing", **alive(now)}, {"$set": {"x": 1}}).matched_count == 0
    assert db.s.delete_one({"_id": "expired", **alive(now)}).deleted_count == 0
    assert db.s.delete_many({"_id": "a", **alive(now)}).deleted_count == 1
    assert sorted(d["_id"] for d in db.s.find({})) == ["b", "expired", "no-expires"]
    # all(): the filter alone.
    assert sorted(d["_id"] for d in db.s.find(alive(now))) == ["b", "no-expires"]


@pytest.mark.parametrize("stringify", [True, False], ids=["stringify", "document"])
def test_set_upserts_the_document_mongod_would_store(db: Any, stringify: bool) -> None:
    now = utcnow()
    expires = now + HOUR
    session: Any = (
        '{"cookie":{"originalMaxAge":3600000},"user":"alice"}'
        if stringify
        else {
            "cookie": {"originalMaxAge": 3600000, "expires": expires, "httpOnly": True},
            "user": "alice",
            "visits": 3,
            "ratio": 0.5,
        }
    )
    first = db.sessions.update_one(
        {"_id": "sid"}, connect_mongo_update("sid", session, expires, now), upsert=True
    )
    assert (first.upserted_id, first.matched_count) == ("sid", 0)
    stored = db.sessions.find_one({"_id": "sid"})
    updated_at = stored["updatedAt"]
    assert isinstance(updated_at, dt.datetime) and abs(updated_at - utcnow()) < dt.timedelta(
        seconds=30
    )
    # mongod 5.0+ applies an update's new fields in lexicographic order, after _id.
    expected = {
        "_id": "sid",
        "createdAt": now,
        "expires": expires,
        "lastModified": now,
        "session": session,
        "updatedAt": updated_at,
    }
    assert raw_bytes(db.sessions, "sid") == bson.encode(expected)

    later = now + dt.timedelta(seconds=1)
    again = db.sessions.update_one(
        {"_id": "sid"}, connect_mongo_update("sid", session, expires + HOUR, later), upsert=True
    )
    assert (again.upserted_id, again.matched_count) == (None, 1)
    stored = db.sessions.find_one({"_id": "sid"})
    assert stored["createdAt"] == now  # $setOnInsert only on insert
    assert (stored["expires"], stored["lastModified"]) == (expires + HOUR, later)
    assert stored["updatedAt"] >= updated_at


def test_touch_keeps_bson_types(db: Any) -> None:
    now = utcnow()
    session = {"cookie": {"expires": now + HOUR, "secure": False}, "n": Int64(5)}
    db.sessions.update_one(
        {"_id": "sid"},
        {"$set": {"_id": "sid", "session": session, "expires": now + HOUR}},
        upsert=True,
    )
    touched = now + 2 * HOUR
    result = db.sessions.update_one(
        {"_id": "sid"}, {"$set": {"lastModified": now, "expires": touched}}
    )
    assert result.matched_count == 1
    expected = {"_id": "sid", "expires": touched, "session": session, "lastModified": now}
    assert raw_bytes(db.sessions, "sid") == bson.encode(expected)
    # A nested $set into the document form keeps types too.
    db.sessions.update_one({"_id": "sid"}, {"$set": {"session.cookie.secure": True}})
    assert db.sessions.find_one({"_id": "sid"})["session"]["cookie"]["secure"] is True
    # touch of a session that is not there matches nothing (connect-mongo raises then).
    assert db.sessions.update_one({"_id": "gone"}, {"$set": {"expires": now}}).matched_count == 0


def test_unacknowledged_writes_are_applied_in_order(server: MongoServer, db: Any) -> None:
    with MongoClient(server.url, maxPoolSize=1) as single:
        coll = single[db.name].w0
        unacked = coll.with_options(write_concern=WriteConcern(w=0))
        now = utcnow()
        assert not unacked.insert_one({"_id": "x", "n": 0}).acknowledged
        for n in range(1, 51):
            unacked.update_one({"_id": "x"}, {"$set": {"n": n}})
        unacked.insert_many([{"_id": f"old{i}", "expires": now - HOUR} for i in range(3)])
        unacked.update_one({"_id": "new"}, {"$set": {"expires": now + HOUR}}, upsert=True)
        unacked.delete_many({"expires": {"$lt": now}})  # connect-mongo's interval removal
        unacked.delete_one({"_id": "nothing"})
        assert list(coll.find({}, sort=[("_id", 1)])) == [
            {"_id": "new", "expires": now + HOUR},
            {"_id": "x", "n": 50},
        ]


@pytest.mark.parametrize(
    "concern",
    [{"w": 1}, {"w": 1, "j": True}, {"w": "majority", "wtimeout": 1000}, {"j": False}],
    ids=["w1", "journal", "majority", "nojournal"],
)
def test_write_concern_options_are_accepted(db: Any, concern: dict[str, Any]) -> None:
    coll = db.get_collection("wc", write_concern=WriteConcern(**concern))
    assert coll.update_one({"_id": "s"}, {"$set": {"v": 1}}, upsert=True).upserted_id == "s"
    assert coll.update_one({"_id": "s"}, {"$set": {"v": 2}}).modified_count == 1
    assert coll.delete_one({"_id": "s"}).deleted_count == 1
    coll.create_index([("expires", 1)], expireAfterSeconds=0)


def _insert_ttl_cases(db: Any, now: dt.datetime) -> None:
    db.sessions.create_index([("expires", 1)], expireAfterSeconds=0)
    db.sessions.create_index([("expires", 1)], expireAfterSeconds=0)  # every store start
    db.grace.create_index([("at", 1)], expireAfterSeconds=3600)
    db.sessions.insert_many(
        [
            {"_id": "expired", "expires": now - dt.timedelta(seconds=2)},
            {"_id": "live", "expires": now + HOUR},
            {"_id": "no-field"},
            {"_id": "not-a-date", "expires": "2000-01-01T00:00:00Z"},
            {"_id": "number", "expires": 0},
            {"_id": "array", "expires": [now + HOUR, now - HOUR]},
        ]
    )
    db.grace.insert_many(
        [
            {"_id": "in-grace", "at": now - dt.timedelta(minutes=5)},
            {"_id": "past", "at": now - 2 * HOUR},
        ]
    )


def _wait_until(done: Callable[[], bool], what: str, seconds: float = 30) -> None:
    """Polls: generous, as a monitor pass may come late on a busy machine."""
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"{what} within {seconds:.0f} s"
        time.sleep(0.2)


def test_reads_never_remove_expired_documents() -> None:
    # on a server whose monitor never runs during the test, so that only a read could
    # remove anything (as neosqlite does, defect 4)
    with (
        MongoServer.temporary(ttl_interval=3600) as running,
        MongoClient(running.url, serverSelectionTimeoutMS=10000) as mongo,
    ):
        db = mongo.reads_check
        _insert_ttl_cases(db, utcnow())
        assert db.sessions.count_documents({}) == 6
        assert len(list(db.sessions.find({}))) == 6
        assert db.sessions.find_one({"_id": "expired"}) is not None
        assert db.grace.estimated_document_count() == 2
        assert db.grace.find_one({"_id": "past"}) is not None
        assert db.sessions.count_documents({}) == 6


def test_ttl_monitor_removes_expired_documents(db: Any) -> None:
    _insert_ttl_cases(db, utcnow())
    _wait_until(
        lambda: db.sessions.count_documents({}) <= 4 and db.grace.count_documents({}) <= 1,
        "the TTL monitor removed the expired documents",
    )
    assert sorted(d["_id"] for d in db.sessions.find({})) == [
        "live",
        "no-field",
        "not-a-date",
        "number",
    ]
    assert [d["_id"] for d in db.grace.find({})] == ["in-grace"]
    # Dropping the collection drops its TTL index, as in mongod: once the monitor has
    # removed a later expired document elsewhere, it has passed over "back" too
    db.sessions.drop()
    db.sessions.insert_one({"_id": "back", "expires": utcnow() - HOUR})
    db.grace.insert_one({"_id": "witness", "at": utcnow() - 2 * HOUR})
    _wait_until(
        lambda: db.grace.find_one({"_id": "witness"}) is None, "a monitor pass after the drop"
    )
    assert db.sessions.find_one({"_id": "back"}) is not None


def test_type_queries(db: Any) -> None:
    now = utcnow()
    db.t.insert_many(
        [
            {"_id": "date", "v": now},
            {"_id": "iso-string", "v": now.isoformat() + "Z"},
            {"_id": "bool", "v": False},
            {"_id": "int", "v": 7},
            {"_id": "long", "v": Int64(7)},
            {"_id": "big", "v": 2**40},
            {"_id": "double", "v": 7.0},
            {"_id": "null", "v": None},
            {"_id": "object", "v": {"a": now}},
            {"_id": "array", "v": ["x", now]},
            {"_id": "missing"},
        ]
    )

    def ids(spec: Any) -> list[str]:
        return sorted(d["_id"] for d in db.t.find({"v": {"$type": spec}}))

    assert ids("date") == ids(9) == ["array", "date"]
    assert ids("string") == ids(2) == ["array", "iso-string"]
    assert ids("bool") == ["bool"]
    assert ids("int") == ids(16) == ["int"]
    assert ids("long") == ids(18) == ["big", "long"]
    assert ids("double") == ids(1) == ["double"]
    assert ids("number") == ["big", "double", "int", "long"]
    assert ids("null") == ["null"]
    assert ids("object") == ["object"]
    assert ids("array") == ["array"]
    assert ids(["date", "bool"]) == ["array", "bool", "date"]


def test_dates_compare_to_the_millisecond_and_only_with_dates(db: Any) -> None:
    now = utcnow()
    soon = now + dt.timedelta(milliseconds=250)
    db.s.insert_many(
        [
            {"_id": "soon", "expires": soon},
            {"_id": "string", "expires": "9999-12-31T00:00:00Z"},
            {"_id": "null", "expires": None},
        ]
    )
    assert db.s.find_one({"_id": "soon", **alive(now)}) is not None
    assert db.s.find_one({"expires": {"$gt": soon}}) is None
    assert [d["_id"] for d in db.s.find({"expires": {"$gte": soon}})] == ["soon"]
    assert [
        d["_id"] for d in db.s.find({"expires": {"$lt": soon + dt.timedelta(milliseconds=1)}})
    ] == ["soon"]
    # A string is never compared with a date, and a null expires exists.
    assert db.s.find_one({"_id": "string", **alive(now)}) is None
    assert db.s.count_documents({"expires": {"$lt": "9999"}}) == 0
    assert db.s.find_one({"_id": "null", **alive(now)}) is None
    assert sorted(d["_id"] for d in db.s.find({"expires": {"$gte": None}})) == ["null"]
    # Timezone-aware query values are the same instant.
    aware = soon.replace(tzinfo=dt.timezone.utc).astimezone(dt.timezone(dt.timedelta(hours=5)))
    assert [d["_id"] for d in db.s.find({"expires": aware})] == ["soon"]


def bson_zoo(now: dt.datetime) -> dict[str, Any]:
    return {
        "_id": "zoo",
        "int32": 2**31 - 1,
        "int32_min": -(2**31),
        "int64_from_int": 2**31,
        "int64_small": Int64(7),
        "int64_max": Int64(2**63 - 1),
        "double": 7.0,
        "double_big": 2.0**60,
        "neg_zero": -0.0,
        "fraction": 0.1,
        "nan": math.nan,
        "inf": math.inf,
        "string": "x ü 😀 \u2028",
        "nul_inside": "a\x00b",
        "iso_like": "2026-01-01T00:00:00.000Z",
        "date": now,
        "date_1960": dt.datetime(1960, 1, 1, 0, 0, 0, 1000),
        "date_9999": dt.datetime(9999, 12, 31, 23, 59, 59, 999000),
        "true": True,
        "null": None,
        "nested": {"id": 0, "flag": {"id": False}, "list": [1, "a", {"d": now}], "empty": {}},
        "id": 0,
        "array": [],
        "ünïcode key": 1,
        "bytes": b"\x00\xff",
        "uuid": Binary(uuid.UUID(int=1).bytes, 4),
        "oid": ObjectId("0123456789abcdef01234567"),
        "decimal": Decimal128("1.10"),
        "regex": Regex("^a", "i"),
        "timestamp": Timestamp(5, 1),
        "code": Code("x"),
        "keys": [MinKey(), MaxKey()],
        # user documents shaped like the storage's own markers stay documents
        "marker_like": [
            {"$date": "2020-01-01"},
            {"$date": 5, "x": 1},
            {"$numberLong": "5"},
            {"$numberDouble": "NaN"},
            {"$code": "x"},
            {"$binary": {"base64": "", "subType": "00"}},
            {"__neosqlite_binary__": True},
            {"$nxLiteralDocument": []},
        ],
    }


def test_bson_types_round_trip_byte_for_byte(db: Any) -> None:
    now = utcnow()
    doc = bson_zoo(now)
    db.t.insert_one(doc)
    assert raw_bytes(db.t, "zoo") == bson.encode(doc)
    db.t.update_one({"_id": "zoo"}, {"$set": {"string": "y", "date": now + HOUR}})
    doc.update(string="y", date=now + HOUR)
    assert raw_bytes(db.t, "zoo") == bson.encode(doc)
    replacement = {k: v for k, v in doc.items() if k != "_id"}
    db.t.replace_one({"_id": "zoo"}, replacement)
    assert raw_bytes(db.t, "zoo") == bson.encode(doc)
    upserted = {"_id": "up", **replacement}
    db.t.update_one({"_id": "up"}, {"$set": replacement}, upsert=True)
    expected = {"_id": "up", **dict(sorted(replacement.items()))}
    assert raw_bytes(db.t, "up") == bson.encode(expected)
    assert bson.decode(raw_bytes(db.t, "up")).keys() == upserted.keys()


def test_all_length_destroy_and_clear(db: Any) -> None:
    now = utcnow()
    db.s.insert_many([{"_id": f"s{i:03}", "expires": now + HOUR} for i in range(150)])
    db.s.insert_one({"_id": "old", "expires": now - HOUR})
    found = list(db.s.find(alive(now)))  # past the first batch of 101: getMore
    assert len(found) == 150 and len({d["_id"] for d in found}) == 150
    assert db.s.count_documents({}) == 151
    assert db.s.estimated_document_count() == 151
    assert db.s.delete_one({"_id": "s000"}).deleted_count == 1
    assert db.s.delete_one({"_id": "s000"}).deleted_count == 0
    assert db.s.delete_many({"expires": {"$lt": now}}).deleted_count == 1
    assert db.s.delete_many({}).deleted_count == 149
    assert db.s.count_documents({}) == 0
    db.s.insert_one({"_id": "x"})
    db.s.drop()  # connect-mongo 4.6.0's clear
    assert "s" not in db.list_collection_names()
    assert db.s.count_documents({}) == 0


def test_indexes_and_replace(db: Any) -> None:
    assert db.s.create_index([("expires", 1)], expireAfterSeconds=0)
    db.s.create_index([("expires", 1)], expireAfterSeconds=0)
    ttl = [i for i in db.s.index_information().values() if "expireAfterSeconds" in i]
    assert len(ttl) == 1 and ttl[0]["expireAfterSeconds"] == 0
    assert ttl[0]["key"] == [("expires", 1)]
    db.s.insert_one({"a": 1, "_id": "r"})
    assert list(db.s.find_one({"_id": "r"})) == ["_id", "a"]
    db.s.replace_one({"_id": "r"}, {"b": 2})
    assert list(db.s.find_one({"_id": "r"})) == ["_id", "b"]
    assert db.s.replace_one({"_id": "u"}, {"c": 3}, upsert=True).upserted_id == "u"
    assert db.s.find_one({"_id": "u"}) == {"_id": "u", "c": 3}
    with pytest.raises(pymongo.errors.WriteError):
        db.s.update_one({"_id": "u"}, {"$set": {"_id": "changed"}})
    assert db.s.find_one({"_id": "u"}) == {"_id": "u", "c": 3}


def test_projection_and_integer_ids(db: Any) -> None:
    db.p.insert_one({"_id": "p", "b": 1, "c": {"x": 1, "y": 2, "z": 3}, "d": 4})
    got = db.p.find_one({"_id": "p"}, projection={"session": 1, "d": 1, "c.x": 1})
    assert list(got.items()) == [("_id", "p"), ("c", {"x": 1}), ("d", 4)]
    assert db.p.find_one({"_id": "p"}, projection={"_id": 0, "c": 0}) == {"b": 1, "d": 4}
    db.ints.insert_many([{"_id": 2, "v": "two"}, {"_id": 1, "v": "one"}])
    filtered = {"_id": 2, "v": {"$type": "string"}}
    assert db.ints.update_one(filtered, {"$set": {"hit": True}}).matched_count == 1
    assert db.ints.find_one({"hit": True}) == {"_id": 2, "v": "two", "hit": True}
    assert db.ints.delete_one(filtered).deleted_count == 1
    assert list(db.ints.find({})) == [{"_id": 1, "v": "one"}]
    db.ints.insert_one({"_id": 3})
    db.ints.update_one({}, {"$set": {"first": True}})  # the first in natural order
    assert db.ints.find_one({"first": True}) == {"_id": 1, "v": "one", "first": True}


def test_concurrent_clients_on_the_same_ids(server: MongoServer, db: Any) -> None:
    errors: list[BaseException] = []
    now = utcnow()

    def work(worker: int) -> None:
        try:
            with MongoClient(server.url, maxPoolSize=2) as mine:
                coll = mine[db.name].sessions
                for n in range(40):
                    sid = f"sid{n % 5}"
                    update = connect_mongo_update(sid, f"{worker}:{n}", now + HOUR, now)
                    coll.update_one({"_id": sid}, update, upsert=True)
                    # Another worker may have destroyed it since; it is never another one.
                    found = coll.find_one({"_id": sid, **alive(now)})
                    assert found is None or found["_id"] == sid
                    if n % 7 == 0:
                        coll.delete_one({"_id": sid})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    for doc in db.sessions.find({}):
        assert list(doc) == ["_id", "createdAt", "expires", "lastModified", "session", "updatedAt"]


# --------------------------------------------------------------------------------------
# pymongo's AsyncMongoClient
# --------------------------------------------------------------------------------------


async def test_async_client_store_operations(server: MongoServer) -> None:
    name = f"a_{uuid.uuid4().hex[:10]}"
    async with AsyncMongoClient(server.url, serverSelectionTimeoutMS=5000, maxPoolSize=1) as mongo:
        coll = mongo[name].sessions
        try:
            now = utcnow()
            await coll.create_index([("expires", 1)], expireAfterSeconds=0)
            updates = [
                coll.update_one(
                    {"_id": f"sid{i}"},
                    connect_mongo_update(f"sid{i}", f"s{i}", now + HOUR, now),
                    upsert=True,
                )
                for i in range(20)
            ]
            results = await asyncio.gather(*updates)
            assert sorted(r.upserted_id for r in results) == sorted(f"sid{i}" for i in range(20))
            doc = await coll.find_one({"_id": "sid3", **alive(now)})
            assert doc is not None and doc["session"] == "s3"
            assert await coll.find_one({"_id": "nope", **alive(now)}) is None
            touched = await coll.update_one(
                {"_id": "sid3"}, {"$set": {"expires": now + 2 * HOUR, "lastModified": now}}
            )
            assert touched.matched_count == 1
            doc = await coll.find_one({"_id": "sid3"})
            assert doc is not None and doc["expires"] == now + 2 * HOUR
            assert len(await coll.find(alive(now)).to_list()) == 20
            assert await coll.count_documents({}) == 20
            assert (await coll.delete_one({"_id": "sid0"})).deleted_count == 1
            await coll.update_one({"_id": "sid1"}, {"$set": {"expires": now - HOUR}})
            unacked = coll.with_options(write_concern=WriteConcern(w=0))
            await unacked.delete_many({"expires": {"$lt": now}})
            assert await coll.count_documents({}) == 18
            raw = await coll.with_options(codec_options=RAW).find_one({"_id": "sid2"})
            assert raw is not None and isinstance(bson.decode(raw.raw)["expires"], dt.datetime)
            assert (await coll.delete_many({})).deleted_count == 18
        finally:
            await mongo.drop_database(name)


# --------------------------------------------------------------------------------------
# The real Node driver, and connect-mongo on it
# --------------------------------------------------------------------------------------

NODE_CHECK = Path(__file__).resolve().with_name("mongo_node_check.js")


@pytest.mark.node
@pytest.mark.parametrize(
    ("modules", "driver", "connect_mongo"),
    [
        (NODE_PROJECT / "node_modules", "7.9.0", "6.0.0"),
        (NODE_PROJECT / "legacy" / "node_modules", "4.17.2", "4.6.0"),
    ],
    ids=["mongodb-7.9.0", "mongodb-4.17.2"],
)
def test_node_driver_and_connect_mongo(
    server: MongoServer, modules: Path, driver: str, connect_mongo: str
) -> None:
    try:
        ensure_node_project()
    except NodeUnavailableError as exc:
        pytest.fail(str(exc), pytrace=False)
    db_name = f"node_{uuid.uuid4().hex[:10]}"
    result = subprocess.run(
        ["node", str(NODE_CHECK), server.url, str(modules), db_name],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["driver"], report["connectMongo"]) == (driver, connect_mongo)
    failed = [f"{r['name']}:\n{r['error']}" for r in report["results"] if not r["ok"]]
    assert not failed, "\n\n".join(failed)
    assert len(report["results"]) == 11
