"""The record rules of each store's codec, without I/O: what is read back as a session's text
and expiry, what is written for one, and what ``doctor`` concludes from what it sees."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from token_session.errors import SessionDecodeError
from token_session.stores.mongo import MongoCodec
from token_session.stores.mysql import MySQLStoreCore, Statement
from token_session.stores.records import StoredSession, WriteResult
from token_session.stores.redis import RedisCodec

from .conftest import NOW, Clock

TEXT = '{"cookie":{"originalMaxAge":null},"n":1}'


def test_redis_records_keep_the_bytes_and_the_millisecond_ttl() -> None:
    codec = RedisCodec(prefix="p:")
    assert codec.record_commands("a") == [("GET", "p:a"), ("PTTL", "p:a")]
    assert codec.record_of("a", TEXT.encode(), 1500, NOW) == StoredSession("a", TEXT, NOW + 1500)
    assert codec.record_of("a", TEXT.encode(), -1, NOW) == StoredSession("a", TEXT, None)
    assert codec.record_of("a", None, -2, NOW) is None
    with pytest.raises(SessionDecodeError, match="not UTF-8"):
        codec.record_of("a", b"\xff\xfe", 10, NOW)
    record = StoredSession("a", TEXT, NOW + 1500)
    assert codec.put_command(record, NOW) == ("SET", "p:a", TEXT, "PX", 1500)
    assert codec.put_command(record, NOW + 1500) is None  # expired meanwhile
    assert codec.put_command(StoredSession("a", TEXT, None), NOW) == ("SET", "p:a", TEXT)
    assert RedisCodec(disable_ttl=True).put_command(record, NOW) == ("SET", "sess:a", TEXT)


def test_redis_eviction_findings() -> None:
    assert RedisCodec.eviction_finding("noeviction", 100).level == "ok"
    assert RedisCodec.eviction_finding("volatile-lru", 100).level == "error"
    assert RedisCodec.eviction_finding("allkeys-lru", 0).level == "warning"
    assert RedisCodec.eviction_finding(None, None).level == "info"
    assert RedisCodec(prefix="p:").ttl_finding(3, ["p:x"]).level == "warning"
    assert RedisCodec(prefix="p:").ttl_finding(3, []).level == "ok"


def test_mongo_records_upsert_connect_mongos_document(clock: Clock) -> None:
    codec = MongoCodec(clock=clock)
    expires = datetime.fromtimestamp((NOW + 60_000) / 1000, tz=timezone.utc)
    record = StoredSession("a", TEXT, NOW + 60_000)
    op = codec.put_op(record, NOW)
    assert op is not None
    assert op.args == (
        {"_id": "a"},
        {"$set": {"_id": "a", "session": TEXT, "expires": expires}},
    )
    assert op.kwargs == {"upsert": True}
    assert codec.record_of({"_id": "a", "session": TEXT, "expires": expires}) == record
    assert codec.put_op(record, NOW + 60_000) is None
    forever = codec.put_op(StoredSession("a", TEXT, None), NOW)
    assert forever is not None and forever.args[1]["$unset"] == {"expires": ""}
    documents = MongoCodec(stringify=False, clock=clock).put_op(record, NOW)
    assert documents is not None
    assert documents.args[1]["$set"]["session"]["n"] == 1  # a document, as stringify: false


def test_mongo_index_findings() -> None:
    codec = MongoCodec()
    ttl = {"key": {"expires": 1}, "expireAfterSeconds": 0}
    assert [f.level for f in codec.index_findings([{"key": {"_id": 1}}, ttl])] == ["ok"]
    assert codec.index_findings([{"key": {"_id": 1}}])[0].level == "warning"
    assert codec.index_findings([{"key": {"expires": 1}}])[0].level == "error"
    late = codec.index_findings([{**ttl, "expireAfterSeconds": 3600}])[0]
    assert late.level == "warning" and "3600" in late.message
    assert MongoCodec(auto_remove="interval").index_findings([])[0].level == "info"


def run_flow(flow: object, answers: list[object]) -> tuple[list[Statement], object]:
    statements: list[Statement] = []
    answer: object = None
    try:
        while True:
            statements.append(flow.send(answer))  # type: ignore[attr-defined]
            answer = answers.pop(0)
    except StopIteration as done:
        return statements, done.value


def test_mysql_records_upsert_many_rows_with_node_rounding(clock: Clock) -> None:
    core = MySQLStoreCore(clock=clock, create_database_table=False)
    records = [
        StoredSession("a", TEXT, NOW + 1_499),  # Math.round: down
        StoredSession("b", TEXT, NOW + 1_500),  # Math.round: up
        StoredSession("c" * 129, TEXT, NOW + 9_000),  # longer than varchar(128)
        StoredSession("d", TEXT, NOW - 1),
    ]
    statements, result = run_flow(core.put(records), [2])
    assert len(statements) == 1
    assert statements[0].sql.count("(%s, %s, %s)") == 2
    assert "ON DUPLICATE KEY UPDATE" in statements[0].sql
    second = NOW // 1000
    assert statements[0].params == ("a", second + 1, TEXT, "b", second + 2, TEXT)
    assert isinstance(result, WriteResult)
    assert result.written == ["a", "b"] and result.expired == ["d"]
    assert "128" in result.failed["c" * 129]


def test_mysql_column_findings_accept_mariadb_and_mysql_8_types() -> None:
    core = MySQLStoreCore()
    columns = [
        ("session_id", "varchar(128)", "utf8mb4_bin", "NO", "PRI"),
        ("expires", "int unsigned", None, "NO", ""),
        ("data", "mediumtext", "utf8mb4_bin", "YES", ""),
    ]
    assert {f.level for f in core.column_findings(columns)} == {"ok"}
    columns[1] = ("expires", "int(11)", None, "NO", "")
    columns[2] = ("data", "mediumtext", "utf8mb3_general_ci", "YES", "")
    found = {f.check: f for f in core.column_findings(columns)}
    assert found["column expires"].level == "error"
    assert found["column data"].fix == (
        "ALTER TABLE `sessions` MODIFY `data` mediumtext COLLATE utf8mb4_bin"
    )
    assert found["column session_id"].level == "ok"
