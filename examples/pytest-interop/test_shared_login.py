"""Our Flask app and the real Express app (express-session 1.19.0 over connect-redis) share
one login on one Redis."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from conftest import REDIS_URL, SECRET

from token_session.testing import ExpressApp, NodeStore, cookie_sid, signed_cookie


@pytest.mark.parametrize("express", [4, 5])
def test_a_login_on_express_is_seen_by_flask_and_back(
    express_app: Callable[..., ExpressApp],
    flask_url: str,
    client: httpx.Client,
    prefix: str,
    express: int,
) -> None:
    node = express_app(
        "connect-redis",
        9,
        url=REDIS_URL,
        store_options={"prefix": prefix},
        express=express,
        secret=SECRET,
        cookie={"maxAge": 60_000},
    )
    login = client.post(f"{node.url}/session", json={"user": "ada"}).json()
    assert cookie_sid(client.cookies["connect.sid"], SECRET) == login["id"]

    assert client.get(f"{flask_url}/me").json() == {"user": "ada", "cart": []}
    client.post(f"{flask_url}/cart", params={"item": "apple"})
    assert client.get(f"{node.url}/session").json()["session"]["cart"] == ["apple"]


def test_a_logout_on_flask_ends_the_session_node_stored(
    node_store: Callable[..., NodeStore], flask_url: str, client: httpx.Client, prefix: str
) -> None:
    redis = node_store("connect-redis", 9, url=REDIS_URL, prefix=prefix)
    cookie = {"originalMaxAge": 60_000, "expires": "2099-01-01T00:00:00.000Z"}
    redis.set("sid-from-node", {"cookie": cookie, "user": "bo"})
    client.cookies.set("connect.sid", signed_cookie("sid-from-node", SECRET), "127.0.0.1")

    assert client.get(f"{flask_url}/me").json()["user"] == "bo"
    client.post(f"{flask_url}/logout")
    assert redis.get("sid-from-node") is None


@pytest.mark.parametrize("version", [6, 7, 9])
def test_flask_writes_what_every_connect_redis_reads(
    node_store: Callable[..., NodeStore],
    flask_url: str,
    client: httpx.Client,
    prefix: str,
    version: int,
) -> None:
    client.post(f"{flask_url}/cart", params={"item": "pear"})
    sid = cookie_sid(client.cookies["connect.sid"], SECRET)
    assert sid is not None
    redis = node_store("connect-redis", version, url=REDIS_URL, prefix=prefix)
    assert (redis.get(sid) or {})["cart"] == ["pear"]
    assert '"cart":["pear"]' in redis.raw(sid)  # the value on Redis, as connect-redis wrote it
