"""Token mode next to Node's token-session 1.0.0 on one Redis (connect-redis 9.0.0): a bearer
token either side hands out is a session the other one serves."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from werkzeug.test import Client

from token_session.compat import dumps, loads
from token_session.stores import RedisStore
from token_session.web.wsgi import SessionMiddleware

from .node import NodeStore, NodeStoreDriver
from .redis_servers import prefixed_client

pytestmark = pytest.mark.node


@pytest.fixture(scope="module")
def prefix() -> str:
    return f"web-token-{uuid.uuid4().hex[:8]}:"


@pytest.fixture(scope="module")
def node_store(node_stores: NodeStoreDriver, redis_url: str, prefix: str) -> Iterator[NodeStore]:
    store = node_stores.open("connect-redis-9", url=redis_url, prefix=prefix)
    yield store
    store.close()


@pytest.fixture(scope="module")
def keys(redis_url: str, prefix: str) -> Iterator[redis.Redis]:
    with prefixed_client(redis_url, prefix) as client:
        yield client


@pytest.fixture(scope="module")
def api(redis_url: str, prefix: str, keys: redis.Redis) -> Iterator[Client]:
    """A REST service that knows its callers by ``Authorization: Bearer <token>``."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session = environ["token_session"]
        path = environ["PATH_INFO"]
        if path == "/login":
            session.regenerate()
            session["user"] = "grace"
        elif path == "/cart":
            session["cart"] = [*session.get("cart", []), "apple"]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(dict(session)).encode()]

    with RedisStore(redis.Redis.from_url(redis_url), prefix=prefix) as store:
        middleware = SessionMiddleware(
            app,
            store=store,
            token_header="Authorization",
            resave=False,
            save_uninitialized=False,
        )
        yield Client(middleware)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + token}


def test_a_token_node_made_is_served_and_updated_by_python(
    api: Client, node_store: NodeStore, keys: redis.Redis, prefix: str
) -> None:
    token = node_store.token_session("new", data=dumps({"user": "ada"}))["sessionId"]
    assert api.get("/me", headers=bearer(token)).json == {"user": "ada"}
    response = api.post("/cart", headers=bearer(token))
    assert response.json == {"user": "ada", "cart": ["apple"]}
    assert "X-Session-Token" not in response.headers  # the caller keeps its token
    # written as express-session writes a token-session record back: Node reads it
    assert loads(node_store.token_session("get", sid=token)) == {
        "user": "ada",
        "cookie": {"httpOnly": True, "path": "/"},
        "cart": ["apple"],
    }
    assert keys.ttl(prefix + token) > 0
    node_store.token_session("destroy", sid=token)
    assert api.get("/me", headers=bearer(token)).json == {}


def test_a_token_python_hands_out_is_served_by_node(api: Client, node_store: NodeStore) -> None:
    response = api.post("/login")
    token = response.headers["X-Session-Token"]
    assert "Set-Cookie" not in response.headers
    assert loads(node_store.token_session("get", sid=token))["user"] == "grace"
    assert api.get("/me", headers=bearer(token)).json == {"user": "grace"}
