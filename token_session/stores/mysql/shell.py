"""What the blocking and the asyncio store share: the options they take, checked once, the
core they run, and ``mysql://`` URLs read into options."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from ...compat.cookie import now_ms
from ...errors import InvalidArgumentError
from ..spin import DEFAULT_SPIN, check_spin
from .connections import DEFAULT_TIMEOUT, check_timeout
from .format import (
    DEFAULT_CHECK_EXPIRATION_INTERVAL,
    DEFAULT_CONNECTION_LIMIT,
    DEFAULT_EXPIRATION,
    MySQLStoreCore,
    check_connection_limit,
    check_flag,
)
from .schema import MySQLSchema

__all__ = ["StoreBase", "url_options"]

C = TypeVar("C")
S = TypeVar("S", bound="StoreBase[Any]")


def url_options(url: str) -> dict[str, Any]:
    """Store keywords from ``mysql://user:password@host:port/database?option=value``."""
    if not isinstance(url, str):
        raise InvalidArgumentError(f"store URL must be a str, not {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme != "mysql":
        raise InvalidArgumentError(f"not a mysql:// URL: {url!r}")
    try:
        port = parts.port
    except ValueError:
        raise InvalidArgumentError(f"bad port in {url!r}") from None
    options: dict[str, Any] = {
        "host": parts.hostname or "localhost",
        "port": port or 3306,
        "user": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password or ""),
        "database": unquote(parts.path.lstrip("/")) or None,
    }
    numbers = {"expiration", "check_expiration_interval", "connection_limit"}
    seconds = {"connect_timeout", "timeout"}
    flags = {"clear_expired", "create_database_table", "disable_touch", "end_connection_on_close"}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in numbers or name in seconds:
            try:
                number = float(value) if name in seconds else int(value)
            except ValueError:
                raise InvalidArgumentError(f"{name} must be a number, not {value!r}") from None
            options[name] = check_timeout(number, name) if name in seconds else number
        elif name == "spin":
            try:
                options[name] = check_spin(float(value))
            except ValueError:
                raise InvalidArgumentError(f"spin must be a number, not {value!r}") from None
        elif name in flags:
            if value.lower() not in ("true", "false", "1", "0"):
                raise InvalidArgumentError(f"{name} must be true or false, not {value!r}")
            options[name] = value.lower() in ("true", "1")
        elif name == "table_name":
            options["schema"] = {"table_name": value}
        else:
            raise InvalidArgumentError(f"unknown mysql store option {name!r} in URL")
    if "connect_timeout" in options:
        options["connect_args"] = {"connect_timeout": options.pop("connect_timeout")}
    return options


def _connect_args(
    host: str,
    port: int,
    user: str | None,
    password: str,
    database: str | None,
    extra: Mapping[str, Any] | None,
) -> dict[str, Any]:
    return {
        "host": host,
        "port": port,
        "user": user,
        "password": password,
        "database": database,
        "charset": "utf8mb4",
        # each statement commits at once, as on mysql2's connections (server default)
        "autocommit": True,
        **(extra or {}),
    }


class StoreBase(Generic[C]):
    """The options both stores take, checked once, and the core they share."""

    def __init__(
        self,
        connection: C | None = None,
        *,
        host: str = "localhost",
        port: int = 3306,
        user: str | None = None,
        password: str = "",
        database: str | None = None,
        connection_limit: int = DEFAULT_CONNECTION_LIMIT,
        connect_args: Mapping[str, Any] | None = None,
        expiration: float = DEFAULT_EXPIRATION,
        clear_expired: bool = True,
        check_expiration_interval: float = DEFAULT_CHECK_EXPIRATION_INTERVAL,
        create_database_table: bool = True,
        end_connection_on_close: bool | None = None,
        disable_touch: bool = False,
        schema: Mapping[str, Any] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        spin: float = DEFAULT_SPIN,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.timeout = check_timeout(timeout)
        # the blocking store's wait for each answer (..spin); the asyncio store's loop waits
        self.spin = check_spin(spin)
        self.core = MySQLStoreCore(
            expiration=expiration,
            clear_expired=clear_expired,
            check_expiration_interval=check_expiration_interval,
            create_database_table=create_database_table,
            disable_touch=disable_touch,
            schema=schema,
            clock=clock,
        )
        # as in Node: by default a store ends only the connections it made itself
        if end_connection_on_close is None:
            end_connection_on_close = connection is None
        self.end_connection_on_close = check_flag(
            "end_connection_on_close", end_connection_on_close
        )
        self._closed = False
        self._setup(
            connection,
            check_connection_limit(connection_limit),
            _connect_args(host, port, user, password, database, connect_args),
        )

    def _setup(self, connection: C | None, limit: int, connect_args: dict[str, Any]) -> None:
        raise NotImplementedError

    @property
    def schema(self) -> MySQLSchema:
        return self.core.schema

    @classmethod
    def from_url(cls: type[S], url: str, **options: Any) -> S:
        """``mysql://user:password@host:port/database``, with store options as query
        parameters (``?expiration=MS&table_name=NAME&connection_limit=N``...) or keywords."""
        return cls(**{**url_options(url), **options})
