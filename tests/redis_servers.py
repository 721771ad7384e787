"""Redis servers the tests start themselves on loopback ports: a lone one they may stop and
start again, and a 3-primary Redis Cluster."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from .backends import port_open


def free_port(also_free: int = 0) -> int:
    """A loopback port free now (and ``port + also_free`` too: a cluster's bus port)."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port + also_free < 65536 and not (also_free and port_open(port + also_free)):
            return port
    raise RuntimeError("no free loopback port")


def wait_for(condition: object, what: str, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


class RedisServer:
    """``redis-server`` on a port of its own, which a test may stop and start again."""

    def __init__(self, port: int, directory: Path, *extra: str) -> None:
        self.port = port
        self.directory = directory
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not on PATH (Debian package redis-server)")
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: port_open(self.port, timeout=0.2), f"redis-server on {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@contextlib.contextmanager
def lone_redis(*extra: str) -> Iterator[RedisServer]:
    """A redis-server of the test's own; ``extra`` are more command-line options."""
    with tempfile.TemporaryDirectory(prefix="ts-redis-") as directory:
        server = RedisServer(free_port(), Path(directory), *extra)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@contextlib.contextmanager
def redis_sentinel(master: RedisServer, name: str = "sessions", *settings: str) -> Iterator[int]:
    """A Redis Sentinel watching ``master`` under ``name``; yields the sentinel's port.
    ``settings`` are more lines of its configuration."""
    with tempfile.TemporaryDirectory(prefix="ts-sentinel-") as directory:
        port = free_port()
        config = Path(directory) / "sentinel.conf"
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
            f"sentinel monitor {name} 127.0.0.1 {master.port} 1\n"
            + "".join(line + "\n" for line in settings)
        )
        process = subprocess.Popen(
            ["redis-server", str(config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: port_open(port, timeout=0.2), f"redis-sentinel on {port}")
            yield port
        finally:
            process.kill()
            process.wait(timeout=10)


@contextlib.contextmanager
def redis_cluster(primaries: int = 3) -> Iterator[list[int]]:
    """A real Redis Cluster of ``primaries`` primaries (no replicas) on loopback ports."""
    with cluster_servers(primaries) as servers:
        yield [server.port for server in servers]


def cluster_ok(ports: list[int]) -> bool:
    """Whether every node of the cluster on ``ports`` says the cluster is ok."""
    for port in ports:
        info = subprocess.run(
            ["redis-cli", "-p", str(port), "cluster", "info"], capture_output=True, text=True
        ).stdout
        if "cluster_state:ok" not in info:
            return False
    return True


@contextlib.contextmanager
def cluster_servers(primaries: int = 3, *extra: str) -> Iterator[list[RedisServer]]:
    """:func:`redis_cluster`'s servers, which a test may stop and start again (each keeps its
    node configuration, and rejoins); ``extra`` are more command-line options."""
    with tempfile.TemporaryDirectory(prefix="ts-cluster-") as directory:
        servers = []
        try:
            for _ in range(primaries):
                port = free_port(also_free=10000)
                server = RedisServer(
                    port,
                    Path(directory),
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    f"nodes-{port}.conf",
                    "--cluster-node-timeout",
                    "5000",
                    "--appendfilename",
                    f"appendonly-{port}.aof",
                    "--appenddirname",
                    f"aof-{port}",
                    *extra,
                )
                server.start()
                servers.append(server)
            ports = [server.port for server in servers]
            subprocess.run(
                [
                    "redis-cli",
                    "--cluster",
                    "create",
                    *(f"127.0.0.1:{p}" for p in ports),
                    "--cluster-replicas",
                    "0",
                    "--cluster-yes",
                ],
                check=True,
                capture_output=True,
            )

            wait_for(lambda: cluster_ok(ports), "the cluster to agree", seconds=30)
            yield servers
        finally:
            for server in servers:
                server.stop()


@contextlib.contextmanager
def prefixed_client(url: str, prefix: str) -> Iterator[redis.Redis]:
    """A client of the Redis at ``url``; the keys under ``prefix`` are deleted afterwards."""
    client = redis.Redis.from_url(url)
    try:
        yield client
    finally:
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
        client.close()
