"""PostgreSQL stores, row for row what connect-pg-simple 10.0.0 and connect-session-knex
5.0.0 write (:mod:`.format`, :mod:`.knex`), on psycopg 3.

connect-pg-simple's table (the default, ``session``)::

    sid    varchar NOT NULL          -- primary key
    sess   json NOT NULL             -- JSON.stringify(session), kept as written
    expire timestamp(6) NOT NULL     -- wall-clock time in the server's TimeZone

``expire`` is ``to_timestamp(ceil(cookie.expires / 1000))``, else
``ceil(now / 1000 + (ttl || 86400))``; ``get`` sees a row while
``expire >= to_timestamp(ceil(now / 1000))``; ``touch`` is an UPDATE (it makes an expired
row live again); ``prune_session_interval`` seconds (900, randomized to 50-150 %; 0 or False:
none) between deletions of expired rows. ``format="connect-session-knex"`` uses that
store's table instead (``sessions``: ``sid varchar(255)``, ``sess json``, ``expired
timestamptz`` in milliseconds), live while ``now <= expired``; ``cleanup_interval`` ms.

The sessions' JSON is written as text, exactly the bytes ``JSON.stringify`` writes, and
read back as text (``sess::text``): ``json`` keeps its input as it is.

**Time zones.** ``timestamp`` holds wall-clock time and Node's writes it in the TimeZone
node-postgres's connections get: the server's default (node-postgres sets none; libpq
honours ``PGTZ``, node-postgres does not). The store learns that zone on its first
connection (from the session when no client setting made it, else from the database and
role settings or the configuration file) and converts explicitly (``AT TIME ZONE``), so
its rows agree with Node's whatever ``TimeZone`` its own connections run in;
``time_zone=`` says which zone to use instead. ``token-session doctor`` warns about a
default that is not UTC (the hour repeated when clocks go back is ambiguous) and about
client settings that differ. connect-session-knex's ``timestamptz`` is zone-proof.

**connect-session-knex and a plain dict.** Node's ``set`` reads ``cookie.maxAge``, which
express-session's ``Cookie`` computes as ``expires - now``, so an Express app writes
``cookie.expires`` to the millisecond; a plain object (JSON, token-session) has no such
getter and gets now + ``maxAge``, or one day. A Python session is a plain dict, so the
store writes ``cookie.expires`` when it is there (what an Express app would write), else
now + a truthy numeric ``maxAge``, else one day (what a plain object gets from Node).

:class:`PostgresStore` (:mod:`.store`: a pool of its own, a psycopg_pool ``ConnectionPool``
or a ``psycopg.Connection``) and :class:`AsyncPostgresStore` (:mod:`.aio`: its own
connections in libpq pipeline mode, :mod:`.pipe`, or a psycopg async connection or pool)
run the same flows (:mod:`.core`). Each operation, retries and connecting included, ends
within ``timeout`` seconds (5): a server that is down or stalls gives
:class:`BackendUnavailableError`. A pooled connection the server dropped while idle is
replaced without an error. :class:`PostgresRecords` (:mod:`.records`) is the
``token-session`` command's record access and ``doctor``.

Where the Node stores are wrong we do better, on purpose:

- The table is created with a constraint and an index named after it (connect-pg-simple
  10.0.0 names them ``session_pkey`` and ``IDX_session_expire`` whatever the table, so a
  second session table in one schema fails), with ``IF NOT EXISTS`` (no race between two
  processes starting).
- A row whose ``sess`` is not a JSON object raises :class:`SessionDecodeError` naming the
  sid and is left alone (connect-pg-simple deletes it; both Node stores also parse a JSON
  string holding JSON a second time). JSON ``null`` reads as no session, as in Node.
- connect-session-knex's ``set`` is an ``INSERT ... ON CONFLICT`` (its CTE upsert fails
  with a duplicate key under concurrent first writes of one id); its ``length`` counts
  only live rows (Node counts expired ones too); ``all`` gives sessions by id.
- ``length``, ``all``, ``ids`` and ``clear`` exist for connect-pg-simple's table too.
- Table, schema and column names must be plain identifiers; an id that is not a sane
  ``str`` (or holds NUL, or is longer than knex's 255), and a ``cookie.expires`` Node reads
  as an Invalid Date (Node sends NaN and gets an SQL error) raise
  :class:`InvalidArgumentError` before any I/O. A session with no cookie gets the default
  lifetime with knex's format too (Node throws a TypeError).
- The table is checked (and created) on first use, so a server that is down when the
  store is made is no error; a failing clean-up is logged.
"""

from __future__ import annotations

from .aio import AsyncPostgresStore
from .format import KNEX, PG_SIMPLE, ConnectPgSimple, Statement
from .knex import ConnectSessionKnex
from .pool import PostgresPool
from .records import PostgresRecords
from .store import PostgresStore

__all__ = [
    "KNEX",
    "PG_SIMPLE",
    "AsyncPostgresStore",
    "ConnectPgSimple",
    "ConnectSessionKnex",
    "PostgresPool",
    "PostgresRecords",
    "PostgresStore",
    "Statement",
]
