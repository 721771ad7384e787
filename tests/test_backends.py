"""The harness finds the backends the store tests run against (and fails loudly if not)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pymysql
import pytest
import redis

from .backends import MONGO, MYSQL, POSTGRES, REDIS, mysql_connect_args, service_answers
from .faults import TcpProxy


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


@contextlib.contextmanager
def impostor(answer: bytes) -> Iterator[int]:
    """A loopback port where every connection gets ``answer`` (nothing if empty) and is
    then held open until the end."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = listener.accept()
                held.append(client)
                if answer:
                    client.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        for client in held:
            client.close()


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None, url
    return port


def test_each_service_check_knows_its_own_server(
    redis_url: str, mysql_url: str, postgres_url: str, mongo_url: str
) -> None:
    servers = [
        (REDIS, port_of(redis_url)),
        (MYSQL, port_of(mysql_url)),
        (POSTGRES, port_of(postgres_url)),
        (MONGO, port_of(mongo_url)),
    ]
    for backend, port in servers:
        assert service_answers(backend, port), backend.name
    for (backend, _), (other, port) in zip(servers, servers[1:] + servers[:1], strict=True):
        assert not service_answers(backend, port), (backend.name, other.name)


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
        b"\x0a\x00\x00\x00\x0a5.5.5",  # a MySQL greeting's start, and then nothing
        b"",  # a port that accepts and never answers (a stalled server)
    ],
)
def test_an_open_port_that_speaks_something_else_is_no_backend(answer: bytes) -> None:
    with impostor(answer) as port:
        for backend in (REDIS, MYSQL, POSTGRES, MONGO):
            started = time.monotonic()
            assert not service_answers(backend, port), backend.name
            assert time.monotonic() - started < 5, backend.name


def test_a_stalled_redis_is_no_backend(redis_url: str) -> None:
    """The check waits for PONG, not for the connection: a stopped server accepts too."""
    parts = urlsplit(redis_url)
    with TcpProxy(parts.hostname or "127.0.0.1", port_of(redis_url)) as proxy:
        assert service_answers(REDIS, proxy.port)
        with proxy.stalled():
            assert not service_answers(REDIS, proxy.port)
