"""The stores' options, checked before any I/O, and ``postgresql://`` URLs split into what
libpq gets and what the store takes. No I/O."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ...compat.cookie import now_ms
from ...errors import InvalidArgumentError
from ..spin import DEFAULT_SPIN, check_spin
from .format import FORMATS, KNEX, PG_SIMPLE, ConnectPgSimple, StoreFormat
from .knex import ConnectSessionKnex

__all__ = ["DEFAULT_TIMEOUT", "StoreOptions", "parse_options", "split_url"]

DEFAULT_TIMEOUT = 5.0
DEFAULT_PRUNE_INTERVAL_S = 900  # connect-pg-simple's pruneSessionInterval
DEFAULT_CLEANUP_INTERVAL_MS = 60_000  # connect-session-knex's cleanupInterval

# option -> the format it belongs to (None: both)
_OPTIONS: dict[str, str | None] = {
    "format": None,
    "table_name": None,
    "schema_name": None,
    "timeout": None,
    "spin": None,
    "time_zone": None,
    "pool_size": None,
    "ttl": PG_SIMPLE,
    "disable_touch": PG_SIMPLE,
    "create_table_if_missing": PG_SIMPLE,
    "prune_session_interval": PG_SIMPLE,
    "prune_session_randomized_interval": PG_SIMPLE,
    "sid_field_name": KNEX,
    "create_table": KNEX,
    "cleanup_interval": KNEX,
}
_NUMBERS = {"ttl", "timeout", "spin", "pool_size", "cleanup_interval"}
_FLAGS = {"disable_touch", "create_table_if_missing", "create_table"}
_TEXT = {"format", "table_name", "schema_name", "time_zone", "sid_field_name"}


@dataclass(frozen=True)
class StoreOptions:
    """The options in force, with the Node store's defaults filled in."""

    format: StoreFormat
    disable_touch: bool
    create_table: bool
    # seconds between clean-ups (None: none), and whether each delay is randomized to
    # 50-150 % as connect-pg-simple's pruneSessionRandomizedInterval does
    prune_interval: float | None
    randomize_prune: bool
    timeout: float
    # the blocking store's wait for each answer (..spin); the asyncio store's loop waits
    spin: float
    time_zone: str | None
    pool_size: int | None
    clock: Callable[[], int]


def _number(name: str, value: object, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgumentError(f"{name} must be a number, not {type(value).__name__}")
    if not math.isfinite(value) or value < minimum:
        raise InvalidArgumentError(f"{name} must be a finite number >= {minimum}")
    return value


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgumentError(f"{name} must be True or False")
    return value


def parse_options(options: Mapping[str, Any]) -> StoreOptions:
    """The store options among ``options`` (all of them must be), checked."""
    given = dict(options)
    clock = given.pop("clock", now_ms)
    if not callable(clock):
        raise InvalidArgumentError("clock must be a function returning epoch milliseconds")
    fmt = given.get("format", PG_SIMPLE)
    if fmt not in FORMATS:
        raise InvalidArgumentError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    for name in given:
        if name not in _OPTIONS:
            raise InvalidArgumentError(f"unknown PostgreSQL store option {name!r}")
        if _OPTIONS[name] not in (None, fmt):
            raise InvalidArgumentError(f"option {name!r} applies to the {_OPTIONS[name]} format")
    for name in _TEXT & given.keys():
        if given[name] is not None and not isinstance(given[name], str):
            raise InvalidArgumentError(f"{name} must be a str")
    timeout = _number("timeout", given.get("timeout", DEFAULT_TIMEOUT), 0.001)
    pool_size = given.get("pool_size")
    if pool_size is not None and (
        isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1
    ):
        raise InvalidArgumentError("pool_size must be an int >= 1")
    table_format: StoreFormat
    if fmt == PG_SIMPLE:
        ttl = given.get("ttl")
        table_format = ConnectPgSimple(
            given.get("table_name"),
            given.get("schema_name"),
            None if ttl is None else _number("ttl", ttl, -math.inf),
        )
        interval = given.get("prune_session_interval", DEFAULT_PRUNE_INTERVAL_S)
        if interval is not False:
            interval = _number("prune_session_interval", interval, 0)
        randomize = _flag(
            "prune_session_randomized_interval",
            given.get("prune_session_randomized_interval", True),
        )
        disable_touch = _flag("disable_touch", given.get("disable_touch", False))
        create = _flag("create_table_if_missing", given.get("create_table_if_missing", False))
    else:
        table_format = ConnectSessionKnex(
            given.get("table_name"), given.get("schema_name"), given.get("sid_field_name", "sid")
        )
        cleanup = _number(
            "cleanup_interval", given.get("cleanup_interval", DEFAULT_CLEANUP_INTERVAL_MS), 0
        )
        interval, randomize, disable_touch = cleanup / 1000, False, False
        create = _flag("create_table", given.get("create_table", True))
    zone = given.get("time_zone")
    return StoreOptions(
        format=table_format,
        disable_touch=disable_touch,
        create_table=create,
        prune_interval=float(interval) if interval else None,
        randomize_prune=randomize,
        timeout=float(timeout),
        spin=check_spin(given.get("spin", DEFAULT_SPIN)),
        time_zone=zone,
        pool_size=pool_size,
        clock=clock,
    )


def _from_text(name: str, value: str) -> Any:
    if name in _FLAGS or (name == "prune_session_interval" and value.lower() == "false"):
        if value.lower() not in ("true", "false", "1", "0"):
            raise InvalidArgumentError(f"{name} must be true or false, not {value!r}")
        return value.lower() in ("true", "1")
    if name in _NUMBERS or name == "prune_session_interval":
        try:
            number = float(value)
        except ValueError:
            raise InvalidArgumentError(f"{name} must be a number, not {value!r}") from None
        return int(number) if number.is_integer() and name == "pool_size" else number
    return value


def split_url(url: str) -> tuple[str, dict[str, Any]]:
    """``postgresql://user:password@host:port/db?options`` (or ``postgres://``) as the URL
    libpq gets (its own query parameters kept) and the store options found in the query."""
    if not isinstance(url, str):
        raise InvalidArgumentError(f"store URL must be a str, not {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise InvalidArgumentError(f"not a postgresql:// URL: {url!r}")
    options: dict[str, Any] = {}
    kept: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in _OPTIONS:
            options[name] = _from_text(name, value)
        else:
            kept.append((name, value))
    conninfo = urlunsplit(parts._replace(query=urlencode(kept)))
    return conninfo, options
