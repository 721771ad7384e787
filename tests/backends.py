"""Where the tests find each backend: an environment URL, else the local default port (if
what answers there speaks the backend's protocol), else a container started with the
``docker`` package, else (MongoDB only) the MongoDB-protocol server the test suite brings
(tests/mongo_server.py). If none works the run fails and says how to provide one; a
backend's tests are never skipped silently."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


class BackendMissingError(RuntimeError):
    pass


@dataclass(frozen=True)
class Backend:
    name: str
    env: str
    default_url: str
    port: int
    image: str
    container_env: dict[str, str]
    url_template: str  # formatted with the host port a container got

    def how_to_provide(self) -> str:
        return (
            f"No {self.name} server for the tests: none at {self.env} (unset), none on "
            f"127.0.0.1:{self.port}, and no Docker engine to start {self.image}. Start one "
            f"(`docker compose up -d` in the repository runs all three), or set {self.env}, "
            f"e.g. {self.env}={self.default_url}"
        )


REDIS = Backend(
    "Redis",
    "REDIS_URL",
    "redis://127.0.0.1:6379/0",
    6379,
    "redis:7",
    {},
    "redis://127.0.0.1:{port}/0",
)
MYSQL = Backend(
    "MySQL/MariaDB",
    "MYSQL_URL",
    "mysql://root@127.0.0.1:3306/test",
    3306,
    "mariadb:10.11",
    {"MARIADB_ALLOW_EMPTY_ROOT_PASSWORD": "1", "MARIADB_DATABASE": "test"},
    "mysql://root@127.0.0.1:{port}/test",
)
POSTGRES = Backend(
    "PostgreSQL",
    "POSTGRES_URL",
    "postgresql://postgres@127.0.0.1:5432/test",
    5432,
    "postgres:15",
    {"POSTGRES_HOST_AUTH_METHOD": "trust", "POSTGRES_DB": "test"},
    "postgresql://postgres@127.0.0.1:{port}/test",
)
MONGO = Backend(
    "MongoDB",
    "MONGO_URL",
    "mongodb://127.0.0.1:27017/",
    27017,
    "mongo:7",
    {},
    "mongodb://127.0.0.1:{port}/",
)


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def _recv(sock: socket.socket, size: int) -> bytes:
    answer = b""
    while len(answer) < size:
        chunk = sock.recv(size - len(answer))
        if not chunk:
            break
        answer += chunk
    return answer


def _exchange(port: int, request: bytes, size: int, timeout: float = 2.0) -> bytes:
    """What a server on 127.0.0.1:``port`` answers to ``request`` (its first ``size``
    bytes); b"" if it closes, stays silent or cannot be reached."""
    with (
        contextlib.suppress(OSError),
        socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock,
    ):
        sock.sendall(request)
        return _recv(sock, size)
    return b""


def _is_redis(port: int) -> bool:
    return _exchange(port, b"*1\r\n$4\r\nPING\r\n", 7) == b"+PONG\r\n"


def _is_mysql(port: int) -> bool:
    # the server speaks first: a packet (3 bytes length, sequence number 0) holding the
    # handshake: protocol version 10 (since MySQL 3.21), the server version ending in NUL,
    # a 4-byte connection id, 8 bytes of scramble and a NUL filler
    greeting = b""
    with (
        contextlib.suppress(OSError),
        socket.create_connection(("127.0.0.1", port), timeout=2.0) as sock,
    ):
        header = _recv(sock, 4)
        if len(header) == 4 and header[3] == 0:
            size = int.from_bytes(header[:3], "little")
            greeting = _recv(sock, size)
            greeting = greeting if len(greeting) == size else b""
    version_end = greeting.find(b"\0", 1)
    return (
        greeting[:1] == b"\x0a"
        and version_end > 1
        and greeting[version_end + 13 : version_end + 14] == b"\0"
    )


def _is_postgres(port: int) -> bool:
    # an SSLRequest (length 8, code 80877103) is answered by one byte: S or N
    return _exchange(port, (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big"), 1) in (
        b"S",
        b"N",
    )


def _is_mongo(port: int) -> bool:
    import pymongo

    try:
        with pymongo.MongoClient[dict[str, Any]](
            f"mongodb://127.0.0.1:{port}/",
            serverSelectionTimeoutMS=2000,
            connectTimeoutMS=2000,
            socketTimeoutMS=2000,
        ) as client:
            return bool(client.admin.command("hello").get("ok"))
    except pymongo.errors.PyMongoError:
        return False


_SERVICE_CHECKS: dict[str, Callable[[int], bool]] = {
    "REDIS_URL": _is_redis,
    "MYSQL_URL": _is_mysql,
    "POSTGRES_URL": _is_postgres,
    "MONGO_URL": _is_mongo,
}


def service_answers(backend: Backend, port: int | None = None) -> bool:
    """Whether what answers on 127.0.0.1:``port`` (the backend's default) speaks the
    backend's protocol, not merely accepts connections."""
    return _SERVICE_CHECKS[backend.env](backend.port if port is None else port)


@contextlib.contextmanager
def docker_container(backend: Backend, ready: Callable[[str], bool]) -> Iterator[str]:
    """Run the backend's image on a free host port for as long as the context lasts."""
    try:
        import docker  # type: ignore[import-untyped]

        client: Any = docker.from_env()
        client.ping()
    except Exception as exc:  # no package, no engine, no permission: all mean "no docker"
        raise BackendMissingError(backend.how_to_provide()) from exc
    container = client.containers.run(
        backend.image,
        detach=True,
        remove=True,
        environment=backend.container_env,
        ports={f"{backend.port}/tcp": ("127.0.0.1", None)},
    )
    try:
        container.reload()
        host_port = int(container.ports[f"{backend.port}/tcp"][0]["HostPort"])
        url = backend.url_template.format(port=host_port)
        deadline = time.monotonic() + 90
        while not ready(url):
            if time.monotonic() > deadline:
                raise BackendMissingError(f"{backend.image} did not become ready in 90 s")
            time.sleep(0.5)
        yield url
    finally:
        container.stop(timeout=5)


@contextlib.contextmanager
def provide(
    backend: Backend,
    ready: Callable[[str], bool],
    fallback: Callable[[], contextlib.AbstractContextManager[str]] | None = None,
) -> Iterator[str]:
    """The URL of a running server for ``backend``, in the order the module doc gives;
    ``fallback`` (a server of the test suite's own) comes last, where there is one."""
    url = os.environ.get(backend.env)
    if url:
        yield url
        return
    squatter = False  # something else listens on the backend's port
    if port_open(backend.port):
        if service_answers(backend):
            yield backend.default_url
            return
        squatter = True
    try:
        container = docker_container(backend, ready)
        url = container.__enter__()
    except BackendMissingError as exc:
        if fallback is None:
            if squatter:
                raise BackendMissingError(
                    f"{exc} (what answers on 127.0.0.1:{backend.port} is not {backend.name})"
                ) from exc
            raise
        with fallback() as url:
            yield url
        return
    try:
        yield url
    finally:
        container.__exit__(None, None, None)


def mysql_connect_args(url: str) -> dict[str, Any]:
    """PyMySQL ``connect`` keywords for a ``mysql://user:pass@host:port/db`` URL."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
        "database": parts.path.lstrip("/") or None,
    }
