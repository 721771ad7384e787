"""MySQL / MariaDB store: the rows express-mysql-session 3.0.3 (and 2.1.8) reads and writes.

One table, as the Node store's ``schema.sql`` creates it::

    session_id varchar(128) COLLATE utf8mb4_bin NOT NULL   -- primary key
    expires    int(11) unsigned NOT NULL                   -- epoch seconds
    data       mediumtext COLLATE utf8mb4_bin              -- JSON.stringify(session)

:class:`MySQLStoreCore` (:mod:`.format`, the names and SQL of the table in :mod:`.schema`,
the ``token-session`` command's flows in :mod:`.records`) holds all of it without I/O: each
operation is a generator that yields the :class:`Statement` objects it needs and is sent
back their results; :mod:`.connections` runs those on connections, also without I/O.
:class:`MySQLStore` (:mod:`.store`: PyMySQL, a clean-up thread) and :class:`AsyncMySQLStore`
(:mod:`.aio`: asyncmy, a clean-up task) only carry that out, on a connection the user gave,
a pool the user gave, or a pool of their own (at most ``connection_limit`` connections, 10
as in mysql2: a :class:`MySQLPool`, or an asyncmy pool).

``timeout`` (seconds, 5 by default; also ``?timeout=`` in the URL) bounds each operation end
to end: the wait for a pooled connection, connecting and the handshake, each read and
write, and a retry, which only gets what is left. A server that cannot be reached, refuses
the login, lacks the database or the table, or does not answer in time (a stalled server,
a lost network) raises :class:`BackendUnavailableError` saying what to do; the next
operation connects again. A connection that the server closed while it sat idle (a restart,
``KILL``, ``wait_timeout``) costs no error: it is seen closed before anything is sent, the
idle connections are discarded and the statement runs on a new one. A connection lost
during a statement gets a read run again, never a write: the write may have reached the
server, and sending it again could undo another writer's newer one. A session larger than
the server's ``max_allowed_packet`` raises :class:`InvalidArgumentError`.

Where the Node store is wrong we do better, on purpose:

- ``all()`` reads the configured columns; Node reads ``row.session_id`` and ``row.data``
  whatever the schema says, so with custom column names it finds no session at all.
- Table and column names must be plain identifiers (letters, digits, ``_``, ``$``; a table
  may be ``database.table``); Node accepts any text and escapes it.
- Ids compare exactly: the column's collation ignores trailing spaces, so Node's
  ``get("victim ")`` reads victim's session and its ``destroy("victim  ")`` deletes it;
  ours read, touch and delete only the row of that very id (still a primary key lookup),
  and refuse to write an id ending in a space (the primary key would take it for another
  session's), which express-session's ids never do.
- An id that is not a ``str``, is empty, longer than the 128-character column, or not
  encodable as UTF-8, and an unknown ``schema`` key, raise :class:`InvalidArgumentError`
  before any I/O; a ``cookie.expires`` that ``new Date()`` reads as Invalid Date, for which
  Node sends ``NaN`` and gets a SQL error, does too.
- The table is created on the first operation, so a server that is down when the store is
  made is no error; Node creates it once, when constructed.
- A failing clean-up is logged; Node's rejection is unhandled.
"""

from __future__ import annotations

from .aio import AsyncMySQLStore
from .format import (
    DEFAULT_CHECK_EXPIRATION_INTERVAL,
    DEFAULT_CONNECTION_LIMIT,
    DEFAULT_EXPIRATION,
    MySQLStoreCore,
)
from .format import expires_seconds as expires_seconds
from .format import js_round as js_round
from .pool import MySQLPool
from .records import MySQLRecords
from .schema import SID_COLUMN_LENGTH, MySQLSchema, Statement
from .schema import Flow as Flow
from .schema import Rows as Rows
from .store import MySQLStore

__all__ = [
    "DEFAULT_CHECK_EXPIRATION_INTERVAL",
    "DEFAULT_CONNECTION_LIMIT",
    "DEFAULT_EXPIRATION",
    "SID_COLUMN_LENGTH",
    "AsyncMySQLStore",
    "MySQLPool",
    "MySQLRecords",
    "MySQLSchema",
    "MySQLStore",
    "MySQLStoreCore",
    "Statement",
]
