"""What the blocking and the asyncio store share: options, the core, URLs and the clean-up
schedule."""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Mapping
from typing import Any, TypeVar

from ...errors import InvalidArgumentError
from .core import PostgresCore
from .format import StoreFormat
from .options import parse_options, split_url
from .wire import StalledError

__all__ = ["PostgresShell"]

log = logging.getLogger(__package__)
_Shell = TypeVar("_Shell", bound="PostgresShell")


def check_conninfo(conninfo: object) -> str:
    """A libpq connection string or URL libpq can parse (no I/O), else InvalidArgumentError."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    if not isinstance(conninfo, str):
        raise InvalidArgumentError(f"conninfo must be a str, not {type(conninfo).__name__}")
    try:
        conninfo_to_dict(conninfo)
    except ProgrammingError as exc:
        raise InvalidArgumentError(f"bad PostgreSQL connection string: {exc}") from None
    return conninfo


class PostgresShell:
    """The options (checked before any I/O) and the :class:`PostgresCore` a store runs."""

    def __init__(
        self,
        connection: Any = None,
        *,
        conninfo: str = "",
        connect_args: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        self.options = parse_options(options)
        self.core = PostgresCore(self.options)
        self.conninfo = check_conninfo(conninfo)
        if connect_args is not None and not isinstance(connect_args, Mapping):
            raise InvalidArgumentError("connect_args must be a dict")
        self.connect_args = dict(connect_args or {})
        self.timeout = self.options.timeout
        self._closed = False
        self._setup(connection)

    def _setup(self, connection: Any) -> None:
        raise NotImplementedError

    @classmethod
    def from_url(cls: type[_Shell], url: str, **options: Any) -> _Shell:
        """``postgresql://user:password@host:5432/db`` (or ``postgres://``), with the store's
        options as query parameters or keywords; other query parameters go to libpq."""
        conninfo, url_options = split_url(url)
        return cls(conninfo=conninfo, **{**url_options, **options})

    @property
    def format(self) -> StoreFormat:
        return self.core.format

    def _prune_delay(self) -> float | None:
        """Seconds until the next clean-up (None: no clean-up); randomized to 50-150 % as
        connect-pg-simple 10.0.0's ``Math.ceil(delay / 2 + delay * Math.random())``."""
        interval = self.options.prune_interval
        if interval is None:
            return None
        if not self.options.randomize_prune:
            return interval
        ms = interval * 1000
        return math.ceil(ms / 2 + ms * random.random()) / 1000

    @staticmethod
    def _may_retry(exc: BaseException, reused: bool) -> bool:
        """Whether a statement whose connection failed runs again on a new one: only when
        that connection sat idle before this operation (the server dropped it: a restart,
        an idle timeout; likely the other idle ones with it), never after a stall. Every
        statement of these flows can run twice."""
        if not reused or isinstance(exc, StalledError):
            return False
        log.info("PostgreSQL connection lost while idle (%s); reconnecting", exc)
        return True

    @staticmethod
    def _prune_failed(exc: Exception) -> None:
        log.warning("deleting expired sessions failed: %s", exc)
