"""Redis store, byte for byte what connect-redis 9.0.0 writes (and 7.1.1 and 6.1.3 wrote).

The rules live in :class:`RedisCodec` (``format.py``), which does no I/O: the key of a
session, the value bytes, the TTL, and the command each operation sends. :class:`RedisStore`
(redis-py, ``store.py``) and :class:`AsyncRedisStore` (``redis.asyncio``, ``aio.py``) only
send those commands. Either takes any client that speaks redis-py's API (``Redis``,
``RedisCluster``, a Sentinel master, their asyncio twins); nothing checks its class.

How the commands reach Redis: ``senders.py`` (through a redis-py client), ``held.py`` (the
blocking store's connections), ``lean.py`` (the asyncio store's own connection) and
``resp.py`` (RESP2's bytes); ``options.py`` reads the options of a URL and keywords.
``records.py`` is the token-session command's record access and ``doctor``.

When Redis fails (``timeout``: seconds, 5 by default, in the constructor, ``from_url`` and
``?timeout=``):

- each command (get, set, touch, destroy; each SCAN step, MGET and DEL batch of all, ids,
  length, clear) answers or raises BackendUnavailableError within ``timeout``, connecting
  and any retry included: a stalled server, one that is down, ``-LOADING``, ``-MASTERDOWN``,
  ``-CLUSTERDOWN``, ``-TRYAGAIN`` and ``-READONLY`` alike;
- after a lost connection, only a read is sent again; a write may have reached Redis, and
  sending it again could undo another client's newer write (a SET over a newer SET, an
  EXPIRE after a DEL and a new SET). A socket Redis closed while idle (a restart) is
  replaced before anything is written to it, so a restart the store did not see costs
  nothing. Clients made by ``from_url`` never retry by themselves; with a client you made,
  its own retry policy applies to what goes through it (a cluster, ``auto_pipeline=False``)
  and to the first connect of each of the store's connections;
- on a cluster, the asyncio store's batches go to each node on their own: a node that fails
  or stalls fails only its own commands;
- a key under the prefix that names no session (not UTF-8, the prefix alone, longer than
  the id limit) is skipped by ``all`` (with a warning naming it), ``ids`` and ``length``,
  listed in the record pages' ``failed`` (as is a value that is not UTF-8 text), and
  deleted by ``clear``; a value that is no session is skipped by ``all`` with a warning
  naming its id, and ``get`` of it raises SessionDecodeError and leaves it alone.
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
