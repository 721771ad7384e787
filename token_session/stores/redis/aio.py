"""The asyncio shell: :class:`AsyncRedisStore` sends :class:`~.format.RedisCodec`'s commands
on the lean connection of ``lean.py`` where it can, else through ``redis.asyncio``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ...errors import TokenSessionError
from ...flows import arun
from ..base import Session
from ..spin import DEFAULT_SPIN, check_spin
from .format import Command, codec_of
from .lean import LeanConnection
from .options import DEFAULT_TIMEOUT, check_timeout, client_from_url
from .resp import lean_settings
from .senders import (
    AutoPipeline,
    ConnectionPipeline,
    Errors,
    Replies,
    decodes_replies,
    plain_pool,
    primaries_of,
    scan_step,
    timeout_after,
)
from .touching import UNSETTLED, GetAndTouch


class AsyncRedisStore:
    """:class:`RedisStore` over ``redis.asyncio`` (``Redis``, ``RedisCluster``, ...).

    Operations awaited concurrently go to Redis together, written in one go on one
    connection (on a cluster: in one pipeline per node per turn of the event loop);
    ``auto_pipeline=False`` sends each on its own through the client. Each get, set, touch
    and destroy answers or raises BackendUnavailableError within ``timeout`` seconds.
    ``spin`` is the blocking store's, accepted here so that one URL serves both.
    """

    def __init__(
        self,
        client: Any,
        *,
        owns_client: bool = False,
        auto_pipeline: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        spin: float = DEFAULT_SPIN,
        **options: Any,
    ) -> None:
        self.client = client
        self.codec = codec_of(**options)
        self.timeout = check_timeout(timeout)
        check_spin(spin)
        self._owns_client = owns_client
        self._cluster = hasattr(client, "get_primaries")
        self._errors = Errors()
        pool = plain_pool(client)
        settings = lean_settings(pool) if pool is not None and auto_pipeline else None
        self._lean: LeanConnection | None = None
        # each sends one command and gives its answer, errors already ours
        self._run: Callable[[Command], Awaitable[Any]]
        if not auto_pipeline:
            self._run = self._execute
        elif settings is not None:
            replies = Replies(self._errors)
            self._lean = LeanConnection(settings, self.timeout, replies.answer, replies.fail)
            self._run = self._lean
        elif pool is not None:
            self._run = ConnectionPipeline(pool, self.timeout, self._errors)
        else:
            self._run = AutoPipeline(client, self.timeout, self._errors)
        # the lean connection reads bytes whatever the client does
        decoded = self._lean is None and decodes_replies(client)
        self._get_and_touch = GetAndTouch(self.codec, decoded)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> AsyncRedisStore:
        """See :meth:`RedisStore.from_url`; ``?auto_pipeline=0`` too."""
        client, store_options = client_from_url(url, options, aio=True)
        return cls(client, owns_client=True, **store_options)

    async def _execute(self, command: Command) -> Any:
        try:
            async with timeout_after(self.timeout):
                return await self.client.execute_command(*command)
        except Exception as exc:
            raise self._errors.wrap(exc, command[0]) from exc

    async def get(self, sid: str) -> Session | None:
        return self.codec.decode(sid, await self._run(self.codec.get_command(sid)))

    async def set(self, sid: str, session: Mapping[str, Any]) -> None:
        await self._run(self.codec.set_command(sid, session))

    async def touch(self, sid: str, session: Mapping[str, Any]) -> None:
        command = self.codec.touch_command(sid, session)
        if command is not None:
            await self._run(command)

    async def get_and_touch(self, sid: str) -> Session | None:
        plan = self._get_and_touch
        if not plan.scripted:
            return await arun(self, plan.flow(sid))
        # the flow's first step, without running a generator for it
        command = plan.command(sid)
        try:
            reply = await self._run(command)
        except TokenSessionError as exc:
            return await arun(self, plan.after_error(sid, command, exc))
        found = plan.settled(sid, command, reply)
        if found is not UNSETTLED:
            return found  # type: ignore[no-any-return]
        return await arun(self, plan.after(sid, command, reply))

    async def destroy(self, sid: str) -> None:
        await self._run(self.codec.destroy_command(sid))

    async def ids(self) -> list[str]:
        return await arun(self, self.codec.ids_flow())

    async def length(self) -> int:
        return await arun(self, self.codec.length_flow())

    async def all(self) -> dict[str, Session]:
        return await arun(self, self.codec.all_flow())

    async def clear(self) -> None:
        await arun(self, self.codec.clear_flow())

    # -- the flows' calls: see RedisStore's

    async def _primaries(self) -> list[Any]:
        if self._cluster:  # redis.asyncio's cluster client learns its nodes on first use
            await self._await("CLUSTER SLOTS", self.client.initialize())
        return primaries_of(self.client)

    async def _scan(self, node: Any, cursor: int) -> tuple[int, list[bytes | str]]:
        if node is None:
            return scan_step(await self._run(self.codec.scan_command(cursor)))
        match, count = self.codec.match_pattern(), self.codec.scan_count
        pending = self.client.scan(cursor, match, count, target_nodes=node)
        return scan_step(await self._await("SCAN", pending), node)

    async def _mget(self, keys: list[str]) -> list[bytes | None]:
        if self._cluster:
            return await self._await("MGET", self.client.mget_nonatomic(keys))  # type: ignore[no-any-return]
        return await self._run(("MGET", *keys))  # type: ignore[no-any-return]

    async def _delete(self, keys: list[bytes | str]) -> int:
        if self._cluster:
            return await self._await("DEL", self.client.delete(*keys))  # type: ignore[no-any-return]
        return await self._run(("DEL", *keys))  # type: ignore[no-any-return]

    async def _await(self, name: str, pending: Any) -> Any:
        try:
            async with timeout_after(self.timeout):
                return await pending
        except Exception as exc:
            raise self._errors.wrap(exc, name) from exc

    async def close(self) -> None:
        """Close the store's own connection; close the client if this store made it."""
        if self._lean is not None:
            self._lean.close()
        if self._owns_client:
            await self.client.aclose()

    async def __aenter__(self) -> AsyncRedisStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
