"""The harness finds the backends the store tests run against (and fails loudly if not)."""

from __future__ import annotations

import pymysql
import redis

from .backends import REDIS, mysql_connect_args


def test_redis_is_reachable(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    assert client.ping()
    assert client.info("server")["redis_version"]


def test_mysql_is_reachable(mysql_url: str) -> None:
    connection = pymysql.connect(**mysql_connect_args(mysql_url))
    with connection.cursor() as cursor:
        cursor.execute("SELECT VERSION()")
        row = cursor.fetchone()
    connection.close()
    assert row is not None and row[0]


def test_missing_backend_message_says_how_to_provide_one() -> None:
    message = REDIS.how_to_provide()
    assert "REDIS_URL" in message and "docker compose up" in message
