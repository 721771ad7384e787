"""The blocking shell: :class:`RedisStore` sends :class:`~.format.RedisCodec`'s commands
through redis-py."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from typing import Any

from ...flows import run
from ..base import Session
from ..spin import DEFAULT_SPIN, check_spin
from .format import Command, codec_of
from .held import HeldConnections
from .options import DEFAULT_TIMEOUT, check_timeout, client_from_url
from .senders import Errors, decodes_replies, plain_pool, primaries_of, scan_step
from .touching import GetAndTouch


class RedisStore:
    """connect-redis over redis-py: ``RedisStore(client, prefix="sess:", ttl=86400, ...)``.

    Options keep connect-redis's names in snake_case: ``prefix``, ``ttl`` (seconds, or a
    function of the session), ``scan_count``, ``serializer`` (``stringify``/``parse`` or
    ``dumps``/``loads``; default: JSON exactly as Node writes it), ``disable_ttl``,
    ``disable_touch``; and ``timeout`` (seconds, default 5): get, set, touch and destroy
    each answer or raise BackendUnavailableError within it, connecting included; ``spin``
    (seconds, default 0.0001; 0: never): how long to poll for a reply before sleeping until
    it comes (see :mod:`token_session.stores.spin`). ``auto_pipeline`` is the asyncio
    store's, accepted here so that one URL serves both.
    """

    def __init__(
        self,
        client: Any,
        *,
        owns_client: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        auto_pipeline: bool = True,
        spin: float = DEFAULT_SPIN,
        **options: Any,
    ) -> None:
        self.client = client
        self.codec = codec_of(**options)
        self.timeout = check_timeout(timeout)
        spin = check_spin(spin)
        self._owns_client = owns_client
        self._errors = Errors()
        pool = plain_pool(client)
        # a cluster, or a client with a connection of its own: through the client, bounded
        # by its socket timeouts (from_url sets them to `timeout`)
        self._lane = HeldConnections(pool, self.timeout, spin) if pool is not None else None
        self._cluster = hasattr(client, "get_primaries")
        self._get_and_touch = GetAndTouch(self.codec, decodes_replies(client))

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisStore:
        """``redis://`` / ``rediss://`` / ``unix://`` URL; store options may go in its query
        (``?prefix=app:&ttl=3600&timeout=2``) or as keywords, and ``?cluster=1`` makes it
        a Redis Cluster's (any of its nodes). Other keywords and query options are
        redis-py's."""
        client, store_options = client_from_url(url, options, aio=False)
        return cls(client, owns_client=True, **store_options)

    def _run(self, command: Command) -> Any:
        try:
            if self._lane is not None:
                return self._lane(command, time.monotonic() + self.timeout)
            return self.client.execute_command(*command)
        except Exception as exc:
            raise self._errors.wrap(exc, command[0]) from exc

    def get(self, sid: str) -> Session | None:
        return self.codec.decode(sid, self._run(self.codec.get_command(sid)))

    def set(self, sid: str, session: Mapping[str, Any]) -> None:
        self._run(self.codec.set_command(sid, session))

    def touch(self, sid: str, session: Mapping[str, Any]) -> None:
        command = self.codec.touch_command(sid, session)
        if command is not None:
            self._run(command)

    def get_and_touch(self, sid: str) -> Session | None:
        """:meth:`get` and, for a session found, :meth:`touch` with its cookie restarted, in
        one command where Redis runs scripts (see ``touching.py``)."""
        return run(self, self._get_and_touch.flow(sid))

    def destroy(self, sid: str) -> None:
        self._run(self.codec.destroy_command(sid))

    def ids(self) -> list[str]:
        return run(self, self.codec.ids_flow())

    def length(self) -> int:
        return run(self, self.codec.length_flow())

    def all(self) -> dict[str, Session]:
        return run(self, self.codec.all_flow())

    def clear(self) -> None:
        run(self, self.codec.clear_flow())

    # -- the flows' calls, one command each; on a cluster, through redis-py's cluster client
    # (SCAN on one primary at a time, MGET and DEL split by slot)

    def _primaries(self) -> list[Any]:
        return primaries_of(self.client)

    def _scan(self, node: Any, cursor: int) -> tuple[int, list[bytes | str]]:
        if node is None:
            return scan_step(self._run(self.codec.scan_command(cursor)))
        match, count = self.codec.match_pattern(), self.codec.scan_count
        scan = functools.partial(self.client.scan, target_nodes=node)
        return scan_step(self._call("SCAN", scan, cursor, match, count), node)

    def _mget(self, keys: list[str]) -> list[bytes | None]:
        if self._cluster:
            return self._call("MGET", self.client.mget_nonatomic, keys)  # type: ignore[no-any-return]
        return self._run(("MGET", *keys))  # type: ignore[no-any-return]

    def _delete(self, keys: list[bytes | str]) -> int:
        if self._cluster:
            return self._call("DEL", self.client.delete, *keys)  # type: ignore[no-any-return]
        return self._run(("DEL", *keys))  # type: ignore[no-any-return]

    def _call(self, name: str, function: Callable[..., Any], *args: Any) -> Any:
        try:
            return function(*args)
        except Exception as exc:
            raise self._errors.wrap(exc, name) from exc

    def close(self) -> None:
        """Give back the store's connection; close the client if this store made it."""
        if self._lane is not None:
            self._lane.close()
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> RedisStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
