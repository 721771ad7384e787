"""Redis store, byte for byte what connect-redis 9.0.0 writes (and 7.1.1 and 6.1.3 wrote).

The rules live in :class:`RedisCodec` (``format.py``), which does no I/O: the key of a
session, the value bytes, the TTL, and the command each operation sends. :class:`RedisStore`
(redis-py, ``store.py``) and :class:`AsyncRedisStore` (``redis.asyncio``, ``aio.py``) only
send those commands. Either takes any client that speaks redis-py's API (``Redis``,
``RedisCluster``, a Sentinel master, their asyncio twins); nothing checks its class.

How the commands reach Redis: ``senders.py`` (through a redis-py client), ``lean.py`` (the
asyncio store's own connection) and ``resp.py`` (RESP2's bytes). ``records.py`` is the
token-session command's record access and ``doctor``.
"""

from .aio import AsyncRedisStore
from .format import BATCH as BATCH
from .format import TTL as TTL
from .format import Command as Command
from .format import RedisCodec
from .format import Serializer as Serializer
from .records import RedisRecords
from .store import RedisStore

__all__ = ["AsyncRedisStore", "RedisCodec", "RedisRecords", "RedisStore"]
