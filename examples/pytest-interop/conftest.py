from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator

import httpx
import pytest
from app import create_app
from werkzeug.serving import make_server

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = "the Express app's secret"


@pytest.fixture
def prefix() -> str:
    """A key prefix of the test's own on the shared Redis."""
    return f"interop-{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def flask_url(prefix: str) -> Iterator[str]:
    """Our Flask app on a loopback port."""
    server = make_server("127.0.0.1", 0, create_app(REDIS_URL, prefix, SECRET), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """One browser: one cookie jar for both apps (cookies ignore ports)."""
    with httpx.Client(timeout=10) as opened:
        yield opened
