"""The Redis stores' options, as keywords or in a store URL's query: the codec's
(``format.py``), the shells' own (``timeout``, ``auto_pipeline``, ``cluster``), and what is
left for the redis-py client, which :func:`client_from_url` makes. No I/O."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ...errors import InvalidArgumentError
from .format import STORE_OPTIONS

DEFAULT_TIMEOUT = 5.0

# set from `timeout`, which bounds the whole operation: two settings would disagree
_FROM_TIMEOUT = {"socket_timeout", "socket_connect_timeout", "retry"}
_INTS = {"ttl", "scan_count"}
_FLAGS = {"disable_ttl", "disable_touch", "auto_pipeline", "cluster"}
_SHELL_OPTIONS = {"timeout", "auto_pipeline", "spin"}


def check_timeout(value: object) -> float:
    """``timeout`` as seconds: a number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgumentError(f"timeout must be seconds (a number > 0), not {value!r}")
    if not (value > 0 and math.isfinite(value)):
        raise InvalidArgumentError(f"timeout must be seconds (a number > 0), not {value!r}")
    return float(value)


def _flag(name: str, value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off", ""):
        return False
    raise InvalidArgumentError(f"?{name}={value!r} in the store URL is not a yes/no (1 or 0)")


def _number(name: str, value: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(value)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise InvalidArgumentError(f"?{name}={value!r} in the store URL is not {what}") from None


@dataclass(frozen=True)
class Url:
    """A store URL and keyword options split: the client's URL (the store's options taken out
    of its query) and options (redis-py's), the store's options (``timeout`` included), and
    whether it names a cluster (``?cluster=1``)."""

    client_url: str
    store_options: dict[str, Any]
    client_options: dict[str, Any]
    cluster: bool
    timeout: float


def url_options(url: str, options: dict[str, Any]) -> Url:
    """Split a redis:// URL's query and the keyword options: keywords win over the URL."""
    if not isinstance(url, str):
        raise InvalidArgumentError(f"store URL must be a str, not {type(url).__name__}")
    parts = urlsplit(url)
    from_query: dict[str, Any] = {}
    client_query: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in _FROM_TIMEOUT:
            raise InvalidArgumentError(f"?{name}= is set from the store's ?timeout=SECONDS")
        if name in ("timeout", "spin"):
            from_query[name] = _number(name, value, float)
        elif name == "prefix":
            from_query[name] = value
        elif name in _INTS:
            from_query[name] = _number(name, value, int)
        elif name in _FLAGS:
            from_query[name] = _flag(name, value)
        else:  # redis-py's own (client_name, ...), escaped again as they came
            client_query.append((name, value))
    refused = _FROM_TIMEOUT & options.keys()
    if refused:
        raise InvalidArgumentError(f"{', '.join(sorted(refused))}: set timeout=SECONDS instead")
    ours = STORE_OPTIONS | _SHELL_OPTIONS | {"cluster"}
    merged = {**from_query, **{k: v for k, v in options.items() if k in ours}}
    cluster = bool(merged.pop("cluster", False))
    timeout = check_timeout(merged.get("timeout", DEFAULT_TIMEOUT))
    merged["timeout"] = timeout
    client_options = {k: v for k, v in options.items() if k not in ours}
    client_url = urlunsplit(parts._replace(query=urlencode(client_query)))
    if not parts.netloc and url.startswith(f"{parts.scheme}://"):
        # urlunsplit writes unix:///path as unix:/path, which redis-py refuses
        client_url = client_url.replace(":", "://", 1)
    return Url(client_url, merged, client_options, cluster, timeout)


def client_from_url(url: str, options: dict[str, Any], *, aio: bool) -> tuple[Any, dict[str, Any]]:
    """The redis-py client (``redis.asyncio``'s with ``aio``) of a store URL and options,
    and the store's own options; a ``RedisCluster`` for ``?cluster=1``.

    The client waits at most the store's ``timeout`` to connect and for each answer, and
    never retries by itself: it cannot tell a write that reached Redis from one that did
    not, and a retry would wait the timeout again."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    parsed = url_options(url, options)
    client_options = {
        **parsed.client_options,
        "socket_timeout": parsed.timeout,
        "socket_connect_timeout": parsed.timeout,
        "retry": Retry(NoBackoff(), 0),
    }
    if aio:
        import redis.asyncio
        import redis.asyncio.cluster

        client_class: Any = (
            redis.asyncio.cluster.RedisCluster if parsed.cluster else redis.asyncio.Redis
        )
    else:
        import redis
        import redis.cluster

        client_class = redis.cluster.RedisCluster if parsed.cluster else redis.Redis
    try:
        client = client_class.from_url(parsed.client_url, **client_options)
    except (ValueError, TypeError) as exc:  # a bad port, scheme or option value
        raise InvalidArgumentError(f"bad Redis store URL or option: {exc}") from exc
    except Exception as exc:  # a cluster client connects at once
        from .senders import Errors

        raise Errors().wrap(exc, "connecting") from exc
    return client, parsed.store_options
