"""Where the tests find each backend: an environment URL, else the local default port, else
a container started with the ``docker`` package, else (MongoDB only) the MongoDB-protocol
server the test suite brings (tests/mongo_server.py). If none works the run fails and says how
to provide one; a backend's tests are never skipped silently."""

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
    if port_open(backend.port):
        yield backend.default_url
        return
    try:
        container = docker_container(backend, ready)
        url = container.__enter__()
    except BackendMissingError:
        if fallback is None:
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
