"""A MongoDB wire-protocol server for the test suite: nx-27017 over neosqlite, with the upstream
defects that matter to a session store fixed at import time, and a self-check that must pass
before the server announces itself.

    python tests/mongo_launcher.py --port N --data DIR [--ttl-interval SECONDS]

``--port 0`` picks a free port. When the self-check passes the launcher prints one line,
``READY <port>``, on stdout and serves until SIGTERM/SIGINT; when it fails it prints what
failed on stderr and exits with status 3 without serving. It listens on 127.0.0.1 only.

The packages as released (nx-27017 0.8.1, neosqlite 1.17.2; the patches refuse other
versions) have these defects, each reproduced in tests/test_mongo_server.py:

1. ``{_id: X, $or: [...]}`` can match another document: neosqlite's SQL translator joins the
   ``$or`` arms without enclosing parentheses, so the WHERE clause reads
   ``_id = ? AND (a) OR (b)``. connect-mongo's ``get`` sends exactly this filter.
2. ``$set`` without ``_id`` (connect-mongo's ``touch``) stores dates as strings and booleans
   as integers: neosqlite's SQL update fast path binds Python values straight into
   ``json_set``, and sqlite3 turns a datetime into ``'YYYY-MM-DD HH:MM:SS'``.
3. Unacknowledged writes (w:0) are lost and desynchronise the connection: nx-27017 reads
   OP_MSG flag bit 1 (moreToCome) as checksumPresent, so the message fails to parse, and it
   answers it anyway; the driver then takes that answer for the reply to its next command
   (``ProtocolError: Got response id X but expected Y``).
4. There is no TTL monitor: neosqlite deletes expired documents at the start of every read
   instead, so a read hides what mongod would still return, and nothing is removed while
   nobody reads.
5. ``$type`` knows no ``date`` (9), counts booleans as ``int`` and any number as ``double``
   or ``long``. Close to it: the SQL tier compares dates through SQLite's ``datetime()``
   (whole seconds; an ISO-looking *string* compares equal to a date).

Found on the way and fixed as well: ``$currentDate`` stores an aware microsecond datetime
that no longer compares with the naive dates pymongo decodes; BSON values JSON cannot hold
are lost (a small int64 comes back as int32, a UUID binary as subtype 0, ``Code`` as a
string) or rejected (NaN, Infinity, Decimal128, Regex, Timestamp, MinKey/MaxKey); a user
document shaped like a storage marker (``{"$date": "2020-01-01"}``) comes back as a date; a
field named ``id`` holding 0 or false comes back as int64; fields an update adds are not in
mongod's order (lexicographic, 5.0+); ``replaceOne`` moves ``_id`` last and its upsert
ignores the filter's ``_id``; projections reorder fields and mangle dotted paths; a dropped
collection keeps its TTL index; an integer ``_id`` is taken for a row id by neosqlite's
fallback update/delete paths.

How: every filter is evaluated by neosqlite's Python matcher, whose range and ``$type``
operators are replaced by BSON-ordered ones here; neosqlite's SQL never decides a match, it
selects all rows, the row of a string ``_id`` (a prefilter: the whole filter is then applied
in Python), or the exact row ids the matcher chose. Updates take neosqlite's Python path.
The server loop is our own (the upstream one answers w:0 messages); the command handling is
nx-27017's.

Differences that remain, none of them used by the stores: equality follows Python
(``true == 1``; an ObjectId equals its hex string), neosqlite rewrites a filter on a field
named ``id`` (``{"id": "5"}`` looks for the number 5), dotted paths through arrays of
documents are only partly traversed, ``$currentDate: {$type: "timestamp"}`` stores a date,
``distinct`` is neosqlite's (``true`` and ``1`` collapse; ``distinct("_id")`` fails), index
names are not mongod's, code with scope is refused, and dates outside Python's years 1-9999
cannot be decoded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import functools
import importlib.metadata
import json
import logging
import math
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

PINNED = {"nx-27017": "0.8.1", "neosqlite": "1.17.2"}

OP_QUERY_CODE = 2004
OP_MSG_CODE = 2013
CHECKSUM_PRESENT = 1 << 0
MORE_TO_COME = 1 << 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

SELF_CHECK_DB = "nx_launcher_selfcheck"
EXIT_SELF_CHECK_FAILED = 3

logger = logging.getLogger("mongo_launcher")


class LauncherError(RuntimeError):
    """The launcher cannot run as built (wrong versions, a patch target moved)."""


def check_versions() -> None:
    """The patches target exact upstream versions; anything else must be re-verified first."""
    for dist, wanted in PINNED.items():
        try:
            found = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError as exc:
            raise LauncherError(f"{dist}=={wanted} is not installed") from exc
        if found != wanted:
            raise LauncherError(
                f"{dist} {found} is installed but the launcher's patches were verified "
                f"against {dist}=={wanted}; install that version"
            )


# --------------------------------------------------------------------------------------
# BSON-aware helpers shared by the patches
# --------------------------------------------------------------------------------------


def utc_naive_ms(value: dt.datetime) -> dt.datetime:
    """A datetime as pymongo decodes a BSON date: naive UTC, millisecond precision."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def bson_type_name(value: Any) -> str:
    """The ``$type`` alias of a value as it was decoded from BSON (or loaded from storage)."""
    from bson import Binary, Code, Decimal128, ObjectId, Regex, Timestamp
    from bson.int64 import Int64
    from bson.max_key import MaxKey
    from bson.min_key import MinKey
    from neosqlite.binary import Binary as NeoBinary
    from neosqlite.objectid import ObjectId as NeoObjectId

    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Int64):
        return "long"
    if isinstance(value, int):
        return "int" if INT32_MIN <= value <= INT32_MAX else "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, (Decimal128, Decimal)):
        return "decimal"
    if isinstance(value, Code):  # a str subclass
        return "javascript"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dt.datetime):
        return "date"
    if isinstance(value, (ObjectId, NeoObjectId)):
        return "objectId"
    if isinstance(value, (bytes, Binary, NeoBinary)):
        return "binData"
    if isinstance(value, (Regex, re.Pattern)):
        return "regex"
    if isinstance(value, Timestamp):
        return "timestamp"
    if isinstance(value, MinKey):
        return "minKey"
    if isinstance(value, MaxKey):
        return "maxKey"
    return "unknown"


_TYPE_CODES = {
    1: "double",
    2: "string",
    3: "object",
    4: "array",
    5: "binData",
    7: "objectId",
    8: "bool",
    9: "date",
    10: "null",
    11: "regex",
    13: "javascript",
    16: "int",
    17: "timestamp",
    18: "long",
    19: "decimal",
    -1: "minKey",
    127: "maxKey",
}
_NUMBER_TYPES = frozenset({"double", "int", "long", "decimal"})

# MongoDB's cross-type comparison classes: a range operator only compares values of one class.
_COMPARE_CLASS = {
    "int": "number",
    "long": "number",
    "double": "number",
    "decimal": "number",
    "string": "string",
    "date": "date",
    "bool": "bool",
    "objectId": "objectId",
}


def _comparable(value: Any) -> tuple[str, Any] | None:
    """(class, key) for a range comparison, or None for types the stores never range over."""
    name = bson_type_name(value)
    cls = _COMPARE_CLASS.get(name)
    if cls is None:
        return None
    if cls == "date":
        return cls, utc_naive_ms(value)
    if cls == "number":
        return cls, Decimal(str(value)) if name == "decimal" else value
    if cls == "objectId":
        return cls, bytes(value.binary)
    return cls, value


def _leaf_values(document: dict[str, Any], field: str) -> tuple[bool, list[Any]]:
    """(exists, values) at a dotted path; an array contributes itself and its elements."""
    current: list[Any] = [document]
    exists = False
    for depth, part in enumerate(field.split(".")):
        nxt: list[Any] = []
        found = False
        for node in current:
            if isinstance(node, dict) and part in node:
                found = True
                nxt.append(node[part])
            elif isinstance(node, list) and depth > 0:
                for item in node:
                    if isinstance(item, dict) and part in item:
                        found = True
                        nxt.append(item[part])
        if not found:
            return False, []
        exists = True
        current = nxt
    values: list[Any] = []
    for value in current:
        values.append(value)
        if isinstance(value, list):
            values.extend(value)
    return exists, values


def _range_operator(op: Callable[[Any, Any], bool], null_matches: bool) -> Callable[..., bool]:
    """A Python-tier ``$gt``/``$gte``/``$lt``/``$lte`` with MongoDB's type bracketing."""

    def operator(field: str, value: Any, document: dict[str, Any]) -> bool:
        exists, candidates = _leaf_values(document, field)
        if value is None:
            # {$gte: null} / {$lte: null} match null and missing; {$gt,$lt: null} nothing.
            return null_matches and (not exists or any(c is None for c in candidates))
        wanted = _comparable(value)
        if wanted is None:
            return False
        for candidate in candidates:
            got = _comparable(candidate)
            if got is not None and got[0] == wanted[0]:
                with contextlib.suppress(TypeError):
                    if op(got[1], wanted[1]):
                        return True
        return False

    return operator


def _type_operator(field: str, value: Any, document: dict[str, Any]) -> bool:
    """Python-tier ``$type`` (upstream bug 5: no ``date``, bool counted as int, and so on)."""
    from neosqlite.exceptions import MalformedQueryException

    wanted: set[str] = set()
    for spec in value if isinstance(value, list) else [value]:
        if isinstance(spec, bool):
            raise MalformedQueryException(f"invalid $type {spec!r}")
        if isinstance(spec, (int, float)) and int(spec) in _TYPE_CODES:
            wanted.add(_TYPE_CODES[int(spec)])
        elif isinstance(spec, str) and spec == "number":
            wanted |= _NUMBER_TYPES
        elif isinstance(spec, str) and spec in _TYPE_CODES.values():
            wanted.add(spec)
        else:
            raise MalformedQueryException(f"unknown $type {spec!r}")
    exists, candidates = _leaf_values(document, field)
    if not exists:
        return False
    return any(bson_type_name(candidate) in wanted for candidate in candidates)


def _compare_field_names(a: str, b: str) -> int:
    """mongod 5.0+ applies an update's fields in this order: two all-digit names by their
    numeric value, anything else by bytes (UTF-8 order is code point order)."""
    if a.isdigit() and b.isdigit() and int(a) != int(b):
        return -1 if int(a) < int(b) else 1
    return (a > b) - (a < b)


def _updated_paths(update: dict[str, Any]) -> list[list[str]]:
    paths: list[list[str]] = []
    for op, spec in update.items():
        if not isinstance(spec, dict):
            continue
        for key, target in spec.items():
            paths.append(key.split("."))
            if op == "$rename" and isinstance(target, str):
                paths.append(target.split("."))
    return paths


def reorder_like_mongod(
    before: dict[str, Any], after: dict[str, Any], paths: list[list[str]]
) -> dict[str, Any]:
    """Fields that existed keep their place; fields an update adds follow in mongod's order.
    Only sub-documents reached through a dotted path are re-ordered inside: a value given
    whole (``$set: {a: {...}}``) keeps the order it was sent in."""
    kept = [key for key in before if key in after]
    added = sorted(
        (key for key in after if key not in before), key=functools.cmp_to_key(_compare_field_names)
    )
    result: dict[str, Any] = {}
    for key in kept + added:
        value = after[key]
        deeper = [path[1:] for path in paths if len(path) > 1 and path[0] == key]
        if deeper and isinstance(value, dict):
            old = before.get(key)
            value = reorder_like_mongod(old if isinstance(old, dict) else {}, value, deeper)
        result[key] = value
    if "_id" in result:
        result = {"_id": result.pop("_id"), **result}
    return result


def normalize_dates(value: Any) -> Any:
    """Every datetime as BSON holds it (naive UTC, milliseconds), recursively."""
    if isinstance(value, dt.datetime):
        return utc_naive_ms(value)
    if isinstance(value, dict):
        return {key: normalize_dates(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalize_dates(item) for item in value]
    return value


def _plain_string_id(query: Any) -> str | None:
    """The ``_id`` of a filter whose top level says ``_id: "<string>"`` (else None)."""
    if isinstance(query, dict):
        value = query.get("_id")
        if isinstance(value, str):
            return value
    return None


# --------------------------------------------------------------------------------------
# The patches
# --------------------------------------------------------------------------------------

_applied: set[str] | None = None
_narrowing = threading.local()


def apply_patches(without: frozenset[str] = frozenset()) -> None:
    """Install the fixes into the imported upstream modules (once per process). ``without``
    leaves some out: only the tests use that, to see the self-check refuse such a server."""
    global _applied
    if _applied is not None:
        if _applied != set(FIXES) - without:
            raise LauncherError("patches were already applied with another selection")
        return
    unknown = without - set(FIXES)
    if unknown:
        raise LauncherError(f"unknown fixes {sorted(unknown)}; known: {sorted(FIXES)}")
    check_versions()
    for name, patch in FIXES.items():
        if name not in without:
            patch()
    # With the SQL tiers switched off on purpose, neosqlite logs a warning per aggregation.
    logging.getLogger("neosqlite.collection.query_engine").setLevel(logging.ERROR)
    _applied = set(FIXES) - without


def _patch_wire_protocol() -> None:
    """Bug 3 (parsing half): OP_MSG flag bit 0 is checksumPresent and bit 1 moreToCome;
    nx-27017 0.8.1 tests bit 1 for the checksum, so every w:0 message (moreToCome) loses its
    last 4 bytes and fails to parse. Re-encode the flags so the upstream parser sees the
    checksum bit where it looks, then give back the real flags. (The other half, not replying
    to moreToCome, is in ``serve_connection``.)

    Also replaces the reply converter, which turns *any* field named ``id`` whose value
    equals 0 (so also ``0.0`` and ``false``) into an int64, in every returned document;
    only a cursor id must be an int64."""
    from nx_27017 import wire_protocol

    original_parse = wire_protocol.OP_MSG.parse

    def parse(message_bytes: bytes) -> dict[str, Any]:
        (flags,) = struct.unpack_from("<I", message_bytes, 16)
        as_upstream_reads = (flags & ~(CHECKSUM_PRESENT | MORE_TO_COME)) | (
            MORE_TO_COME if flags & CHECKSUM_PRESENT else 0
        )
        patched = message_bytes[:16] + struct.pack("<I", as_upstream_reads) + message_bytes[20:]
        parsed: dict[str, Any] = original_parse(patched)
        parsed["flags"] = flags
        return parsed

    wire_protocol.OP_MSG.parse = staticmethod(parse)
    wire_protocol._convert_objectids = to_bson_reply


def to_bson_reply(document: Any) -> Any:
    """neosqlite values back to BSON-encodable ones; cursor ids as int64."""
    from bson import Binary, Decimal128
    from bson import ObjectId as BsonObjectId
    from bson.int64 import Int64
    from neosqlite.binary import Binary as NeoBinary
    from neosqlite.objectid import ObjectId as NeoObjectId

    def convert(value: Any) -> Any:
        if isinstance(value, NeoObjectId):
            return BsonObjectId(value.binary)
        if isinstance(value, NeoBinary):
            return Binary(bytes(value), value.subtype)
        if isinstance(value, Decimal):
            return Decimal128(value)
        if isinstance(value, dict):
            return {key: convert(item) for key, item in value.items()}
        if isinstance(value, list):
            return [convert(item) for item in value]
        return value

    converted = convert(document)
    if isinstance(converted, dict):
        cursor = converted.get("cursor")
        if isinstance(cursor, dict) and isinstance(cursor.get("id"), int):
            cursor["id"] = Int64(cursor["id"])
    return converted


def _patch_or_parentheses() -> None:
    """Bug 1: ``SQLClauseBuilder._build_logical_condition`` returns ``(a) OR (b)`` without
    outer parentheses; ``build_where_clause`` then ANDs it with the other fields, and SQL's
    precedence turns ``{_id: X, $or: [a, b]}`` into ``(_id = X AND a) OR b``. Wrap the
    result. (After ``_patch_query_routing`` no data command reaches this translator, but it
    stays fixed at the source for anything else in neosqlite that calls it.)"""
    from neosqlite.collection.sql_translator_unified import SQLClauseBuilder

    original = SQLClauseBuilder._build_logical_condition

    @functools.wraps(original)
    def build(self: Any, operator: str, conditions: Any, context: str = "direct") -> Any:
        sql, params = original(self, operator, conditions, context)
        if sql and operator in ("$and", "$or"):
            sql = f"({sql})"
        return sql, params

    SQLClauseBuilder._build_logical_condition = build


def matching_row_ids(collection: Any, query: dict[str, Any]) -> list[int]:
    """The SQLite row ids of the documents ``query`` matches, evaluated in Python (a string
    ``_id`` at the top level selects its row first)."""
    from neosqlite._sqlite import sqlite3
    from neosqlite.collection.jsonb_support import json_data_column
    from neosqlite.sql_utils import quote_table_name

    helpers = collection.query_engine.helpers
    data = json_data_column(collection.query_engine.jsonb.jsonb_supported)
    sql = f"SELECT id, _id, {data} FROM {quote_table_name(collection.name)}"
    params: tuple[Any, ...] = ()
    sid = _plain_string_id(query)
    if sid is not None:
        sql += f" WHERE {helpers._id_column_ref()} = ?"
        params = (sid,)
    try:
        rows = collection.db.execute(sql + " ORDER BY id", params).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    return [
        row[0]
        for row in rows
        if helpers._apply_query(query, collection._load_with_stored_id(row[0], row[2], row[1]))
    ]


def _patch_query_routing() -> None:
    """One evaluator for every filter (see the module docstring).

    * ``set_force_fallback(True)`` is neosqlite's own switch that makes the aggregation and
      update code use its Python implementations instead of the SQL translations (the SQL
      update path is bug 2's cause).
    * ``SQLTranslator.translate_match`` is what update/delete/replace/count/distinct use to
      pick rows. It now evaluates the filter in Python and answers ``WHERE id IN (...)``
      with the exact row ids, so no translated SQL decides a match, and the callers never
      take their own fallback branches, which look a document up by ``_id`` through
      ``_get_integer_id_for_oid`` and mistake an integer ``_id`` for a row id.
    * ``QueryHelper._build_simple_where_clause`` (find, cursors) translates ``{}`` only; for
      anything else the cursor filters in Python. The date-specific
      ``DateTimeQueryProcessor`` (second-resolution ``datetime()`` comparisons, ISO strings
      treated as dates) is bypassed.
    * A cursor whose filter names a string ``_id`` at the top level first selects that row
      by the ``_id`` column, then applies the whole filter in Python: connect-mongo's ``get``
      stays a single-row read instead of a table scan.
    """
    from neosqlite.collection.cursor import Cursor
    from neosqlite.collection.query_engine import QueryEngine
    from neosqlite.collection.query_helper import QueryHelper
    from neosqlite.collection.query_helper.utils import set_force_fallback
    from neosqlite.collection.sql_translator_unified import SQLTranslator

    set_force_fallback(True)

    def build_simple_where_clause(self: Any, query: dict[str, Any]) -> Any:
        if not query:
            return "", [], []
        narrowed = getattr(_narrowing, "sid", None)
        if narrowed is not None and query == {"_id": narrowed}:
            return f"WHERE {self._id_column_ref()} = ?", [narrowed], []
        return None

    QueryHelper._build_simple_where_clause = build_simple_where_clause

    original_engine_init = QueryEngine.__init__

    @functools.wraps(original_engine_init)
    def engine_init(self: Any, collection: Any) -> None:
        original_engine_init(self, collection)
        self.sql_translator.nx_collection = collection

    QueryEngine.__init__ = engine_init

    @functools.wraps(SQLTranslator.translate_match)
    def translate_match(self: Any, match_spec: Any, context: str = "direct") -> Any:
        if isinstance(match_spec, dict) and not match_spec:
            # Not "": several callers read an empty clause as "untranslatable" and take
            # the fallback branch with the integer-_id confusion described above.
            return "WHERE 1", []
        collection = getattr(self, "nx_collection", None)
        if collection is None or context != "direct" or not isinstance(match_spec, dict):
            return None, []
        ids = matching_row_ids(collection, match_spec)
        # Inlined integers from our own table: no bound-parameter limit for large matches.
        return f"WHERE id IN ({','.join(str(int(i)) for i in ids)})", []

    SQLTranslator.translate_match = translate_match

    Cursor._contains_datetime_operations = lambda self, query: False

    original_filtered = Cursor._get_filtered_documents

    @functools.wraps(original_filtered)
    def get_filtered_documents(self: Any) -> Any:
        full = self._filter
        sid = _plain_string_id(full)
        if sid is None or "$text" in full or "$expr" in full:
            return original_filtered(self)
        self._filter = {"_id": sid}
        _narrowing.sid = sid
        try:
            rows = original_filtered(self)
        finally:
            _narrowing.sid = None
            self._filter = full
        # At most one row has this _id, so SQL's LIMIT/OFFSET before the re-check is exact.
        apply = self._query_helpers._apply_query
        return (doc for doc in rows if apply(full, doc))

    Cursor._get_filtered_documents = get_filtered_documents


def _patch_query_operators() -> None:
    """Bug 5 and the date comparisons: neosqlite's Python ``$type`` has no ``date``, counts
    booleans as ``int`` and every number as ``double``; its ``$gt``/``$lt`` compare across
    types (``True > 0``) and raise on an aware-vs-naive datetime (``$currentDate`` stores
    aware ones), which then counts as "no match". The matcher looks operators up by name in
    ``neosqlite.query_operators`` at call time, so replacing them there is enough."""
    from neosqlite import query_operators

    query_operators._gt = _range_operator(lambda a, b: a > b, null_matches=False)
    query_operators._gte = _range_operator(lambda a, b: a >= b, null_matches=True)
    query_operators._lt = _range_operator(lambda a, b: a < b, null_matches=False)
    query_operators._lte = _range_operator(lambda a, b: a <= b, null_matches=True)
    query_operators._type = _type_operator


def _project(doc: Any, tree: dict[str, Any], include: bool) -> Any:
    """mongod's inclusion/exclusion projection of one (sub)document; ``tree`` maps a field
    to True (the whole field) or to the tree of the paths below it."""
    if isinstance(doc, list):
        # Through an array the paths apply to each element; inclusion drops the scalars.
        return [
            _project(item, tree, include)
            for item in doc
            if not include or isinstance(item, (dict, list))
        ]
    if not isinstance(doc, dict):
        return doc
    result: dict[str, Any] = {}
    for key, value in doc.items():
        sub = tree.get(key)
        if sub is None:
            if not include:
                result[key] = value
        elif sub is True:
            if include:
                result[key] = value
        elif isinstance(value, (dict, list)):
            result[key] = _project(value, sub, include)
        elif not include:
            result[key] = value
    return result


def _patch_projection() -> None:
    """neosqlite's projection puts ``_id`` last and fields in the projection's order instead
    of the document's, and turns ``{"a.b": 1}`` into a top-level field named ``"a.b"``.
    Plain inclusion/exclusion projections (0/1 values, dotted paths) are done here as mongod
    does them; projections with operators still go to neosqlite."""
    from neosqlite.collection.query_helper import QueryHelper

    original = QueryHelper._apply_projection

    @functools.wraps(original)
    def apply_projection(self: Any, projection: Any, document: dict[str, Any]) -> Any:
        if not projection or not isinstance(projection, dict):
            return original(self, projection, document)
        if not all(isinstance(v, (bool, int, float)) for v in projection.values()):
            return original(self, projection, document)
        show_id = bool(projection.get("_id", True))
        fields = {k: bool(v) for k, v in projection.items() if k != "_id"}
        if len(set(fields.values())) > 1:
            return original(self, projection, document)  # mixed: mongod refuses; so does it
        # {_id: 1} alone keeps only _id; {_id: 0} alone drops only _id.
        include = next(iter(fields.values())) if fields else show_id
        tree: dict[str, Any] = {}
        for path in fields:
            node = tree
            parts = path.split(".")
            for part in parts[:-1]:
                child = node.setdefault(part, {})
                if child is True:
                    break
                node = child
            else:
                node[parts[-1]] = True
        if include and show_id:
            tree["_id"] = True
        result = _project(document, tree, include)
        if not show_id:
            result.pop("_id", None)
        return result

    QueryHelper._apply_projection = apply_projection


def _patch_updates() -> None:
    """Bug 2 is fixed by the Python update path (force fallback above); this wraps that path
    so that, before the row is written, the result is what mongod would store:

    * ``$currentDate`` stores ``datetime.now(timezone.utc)``: timezone-aware, microseconds.
      Dates are normalised to naive UTC milliseconds, as every other stored date is.
    * New fields are ordered as mongod 5.0+ applies them; ``_id`` stays first.
    * Changing ``_id`` is refused (a write error; mongod's code is 66, this server's 8)
      instead of leaving the ``_id`` column and the document disagreeing.

    The upstream method writes the row itself unless called for an upsert (``doc_id == 0``),
    and applies ``$setOnInsert`` only then. So it is called as for an upsert (without
    ``$setOnInsert`` when updating) and the wrapper writes the row.

    ``replace_one``: the replacement keeps ``_id`` first (upstream appends it), and an upsert
    takes ``_id`` from the filter's equality like mongod (upstream inserts a new ObjectId).
    ``_internal_insert``: ``_id`` first, as mongod stores every document."""
    from neosqlite.collection.json_helpers import neosqlite_json_dumps
    from neosqlite.collection.query_engine import QueryEngine
    from neosqlite.collection.query_helper import QueryHelper
    from neosqlite.exceptions import MalformedQueryException
    from neosqlite.objectid import ObjectId as NeoObjectId
    from neosqlite.sql_utils import quote_table_name

    original_update = QueryHelper._perform_python_update

    @functools.wraps(original_update)
    def perform_python_update(
        self: Any,
        doc_id: Any,
        update_spec: dict[str, Any],
        original_doc: dict[str, Any],
        array_filters: Any = None,
        query_filter: Any = None,
    ) -> tuple[dict[str, Any], bool]:
        upsert = doc_id == 0
        spec = (
            update_spec if upsert else {k: v for k, v in update_spec.items() if k != "$setOnInsert"}
        )
        updated, _ = original_update(self, 0, spec, original_doc, array_filters, query_filter)
        updated = normalize_dates(reorder_like_mongod(original_doc, updated, _updated_paths(spec)))
        if not upsert:
            if "_id" in original_doc and updated.get("_id") != original_doc["_id"]:
                raise MalformedQueryException(
                    "Performing an update on the path '_id' would modify the immutable field '_id'"
                )
            int_id = self._get_integer_id_for_oid(doc_id)
            self.collection.db.execute(
                f"UPDATE {quote_table_name(self.collection.name)} SET data = ? WHERE id = ?",
                (neosqlite_json_dumps(updated), int_id),
            )
        return updated, updated != original_doc

    QueryHelper._perform_python_update = perform_python_update

    original_replace = QueryHelper._internal_replace

    @functools.wraps(original_replace)
    def internal_replace(self: Any, doc_id: Any, replacement: dict[str, Any]) -> None:
        row = self.collection.db.execute(
            f"SELECT id, _id, data FROM {quote_table_name(self.collection.name)} WHERE id = ?",
            (self._get_integer_id_for_oid(doc_id),),
        ).fetchone()
        if row is not None:
            current = self.collection._load_with_stored_id(row[0], row[2], row[1])
            if "_id" in replacement and replacement["_id"] != current["_id"]:
                raise MalformedQueryException("The _id field cannot be changed by a replacement")
            replacement = {
                "_id": current["_id"],
                **{k: v for k, v in replacement.items() if k != "_id"},
            }
        original_replace(self, doc_id, replacement)

    QueryHelper._internal_replace = internal_replace

    original_replace_one = QueryEngine.replace_one

    @functools.wraps(original_replace_one)
    def replace_one(
        self: Any,
        filter: dict[str, Any],
        replacement: dict[str, Any],
        upsert: bool = False,
        session: Any = None,
    ) -> Any:
        if upsert and "_id" not in replacement and "_id" in filter:
            equal = filter["_id"]
            if not (isinstance(equal, dict) and any(str(k).startswith("$") for k in equal)):
                replacement = {"_id": equal, **replacement}
        return original_replace_one(self, filter, replacement, upsert=upsert, session=session)

    QueryEngine.replace_one = replace_one

    original_insert = QueryHelper._internal_insert

    @functools.wraps(original_insert)
    def internal_insert(self: Any, document: dict[str, Any]) -> Any:
        if "_id" in document:
            ordered = {"_id": document["_id"], **document}
        else:
            ordered = {"_id": NeoObjectId(), **document}
            document["_id"] = ordered["_id"]
        return original_insert(self, ordered)

    QueryHelper._internal_insert = internal_insert


# Canonical extended JSON markers (bson.json_util) used for values JSON cannot carry.
_EXT_JSON_MARKERS = frozenset(
    {"$numberDecimal", "$binary", "$regularExpression", "$timestamp", "$minKey", "$maxKey"}
)
_NON_FINITE = ("NaN", "Infinity", "-Infinity")
_LITERAL = "$nxLiteralDocument"
_ALL_MARKERS = _EXT_JSON_MARKERS | {"$numberLong", "$numberDouble", "$code", _LITERAL}


def _ext_json_hook(document: dict[str, Any]) -> Any:
    """The value a marker object stands for, or None when ``document`` is no marker."""
    from bson import Code, json_util
    from bson.int64 import Int64

    if len(document) == 1:
        key, value = next(iter(document.items()))
        if key == _LITERAL and isinstance(value, list):
            return {pair[0]: pair[1] for pair in value}
        if key == "$numberLong" and isinstance(value, str):
            return Int64(int(value))
        if key == "$numberDouble" and value in _NON_FINITE:
            return float(value)
        if key == "$code" and isinstance(value, str):
            return Code(value)
        if key in _EXT_JSON_MARKERS:
            return json_util.object_hook(document, json_util.CANONICAL_JSON_OPTIONS)
    return None


class _JsonWithBsonTypes:
    """Stands in for the ``json`` module inside ``neosqlite.collection.json_helpers`` so that
    its loader turns the markers ``_tag_for_json`` writes back into BSON values."""

    def __getattr__(self, name: str) -> Any:
        return getattr(json, name)

    @staticmethod
    def loads(s: Any, **kwargs: Any) -> Any:
        hook = kwargs.get("object_hook")

        def object_hook(document: dict[str, Any]) -> Any:
            value = _ext_json_hook(document)
            if value is not None:
                return value
            return hook(document) if hook is not None else document

        kwargs["object_hook"] = object_hook
        return json.loads(s, **kwargs)


def _looks_like_a_marker(document: dict[str, Any]) -> bool:
    """Would a loader take this user document for a typed value? (neosqlite's own markers:
    ``$date``, ``__neosqlite_binary__``, ``__neosqlite_objectid__``; ours above.)"""
    if _LITERAL in document or "__neosqlite_binary__" in document:
        return True
    if "__neosqlite_objectid__" in document or "$date" in document:
        return True
    return len(document) == 1 and next(iter(document)) in _ALL_MARKERS


def _tag_for_json(value: Any) -> Any:
    """``value`` with every BSON value JSON would lose replaced by its marker object, and
    every user document that looks like a marker stored as a list of pairs, so that no
    loader reinterprets it."""
    from bson import Code, Decimal128, Regex, Timestamp, json_util
    from bson.int64 import Int64
    from bson.max_key import MaxKey
    from bson.min_key import MinKey
    from neosqlite.binary import Binary as NeoBinary

    if isinstance(value, dict):
        if _looks_like_a_marker(value):
            return {_LITERAL: [[key, _tag_for_json(item)] for key, item in value.items()]}
        return {key: _tag_for_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_tag_for_json(item) for item in value]
    if isinstance(value, Int64):
        # Larger ones need no marker: BSON encodes any int beyond 32 bits as int64.
        return {"$numberLong": str(int(value))} if INT32_MIN <= value <= INT32_MAX else value
    if isinstance(value, float) and not math.isfinite(value):
        text = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        return {"$numberDouble": text}
    if isinstance(value, Code):
        if value.scope is not None:
            raise TypeError("code with scope is not supported by this server")
        return {"$code": str(value)}
    if isinstance(value, (Decimal128, Regex, Timestamp, MinKey, MaxKey)):
        return json.loads(json_util.dumps(value, json_options=json_util.CANONICAL_JSON_OPTIONS))
    if isinstance(value, NeoBinary):
        return value  # neosqlite's own storage form keeps the subtype
    return value


def _to_neo_binary(value: Any) -> Any:
    """Every binary as neosqlite's own ``Binary``, which JSON-encodes with its subtype (its
    Python update path has no conversion and fails on plain bytes)."""
    from neosqlite.binary import Binary as NeoBinary

    if isinstance(value, bytes) and not isinstance(value, NeoBinary):
        return NeoBinary(bytes(value), getattr(value, "subtype", 0))
    if isinstance(value, dict):
        return {key: _to_neo_binary(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_neo_binary(item) for item in value]
    return value


def _patch_storage_types() -> None:
    """neosqlite stores documents as JSON and loses what JSON cannot say: an int64 that fits
    in 32 bits comes back as int32, a ``Code`` as a string, a binary's subtype (a UUID,
    subtype 4) as 0, and NaN/±Infinity, Decimal128, Regex, Timestamp, MinKey/MaxKey make the
    insert fail. Such values are stored as canonical extended JSON objects
    (``{"$numberLong": "7"}``, ``{"$numberDouble": "NaN"}``, ...; neosqlite's own binary form
    keeps the subtype once a binary is converted to it on the way in) and decoded back when
    a document is loaded. The encoder is the class every neosqlite write path
    serialises with; the loader is the ``json`` module of ``json_helpers``, which every read
    path goes through."""
    from neosqlite.collection import json_helpers
    from nx_27017.handler import NeoSQLiteHandler

    encoder = json_helpers.NeoSQLiteJSONEncoder
    original_iterencode = encoder.iterencode

    # JSONEncoder.encode goes through iterencode, so this is the one place to tag (once).
    def iterencode(self: Any, o: Any, _one_shot: bool = False) -> Iterator[str]:
        chunks: Iterator[str] = original_iterencode(self, _tag_for_json(o), _one_shot)
        return chunks

    encoder.iterencode = iterencode
    json_helpers.json = _JsonWithBsonTypes()

    original_inbound = NeoSQLiteHandler._convert_objectids

    @functools.wraps(original_inbound)
    def convert_inbound(self: Any, doc: dict[str, Any]) -> dict[str, Any]:
        converted: dict[str, Any] = _to_neo_binary(original_inbound(self, doc))
        return converted

    NeoSQLiteHandler._convert_objectids = convert_inbound


def _patch_ttl() -> None:
    """Bug 4: neosqlite purges expired documents at the start of every read
    (``Collection._auto_purge_ttl``): mongod never does; its TTL monitor removes them in the
    background (``TTLMonitor`` here). The read-time purge is switched off.

    Dropping a collection left its TTL declaration in ``_neosqlite_ttl_indexes``, so a
    collection re-created under that name was still swept (mongod drops the index with the
    collection; connect-mongo 4.6.0's ``clear`` is a drop)."""
    from neosqlite.collection import Collection
    from neosqlite.collection.index_manager import _TTL_META_TABLE

    Collection._auto_purge_ttl = lambda self: None

    original_drop = Collection.drop

    @functools.wraps(original_drop)
    def drop(self: Any) -> None:
        original_drop(self)
        with contextlib.suppress(Exception):
            self.db.execute(
                f"DELETE FROM {_TTL_META_TABLE} WHERE collection_name = ?", (self.name,)
            )

    Collection.drop = drop


def _patch_db_eviction() -> None:
    """nx-27017 keeps at most 100 SQLite files open and closes the least recently used one
    when another is opened, under its dictionary lock but not under that database's own
    lock: a command running on the evicted database meanwhile finds its connection closed.
    Our eviction skips a database whose lock is taken (a command or the TTL monitor is on it)
    and the one just opened; it runs with the dictionary lock held, so it only tries the
    per-database locks without blocking."""
    from nx_27017 import handler as handler_module

    def evict_lru_locked(self: Any) -> None:
        if self._mode != "files":
            return
        names = list(self._conns)  # least recently used first
        for name in names[:-1]:
            if len(self._conns) <= handler_module._MAX_OPEN_DBS:
                return
            if name == "admin" or self._conn_is_busy(name):
                continue
            lock = self._locks.get(name)
            if lock is not None and not lock.acquire(blocking=False):
                continue
            try:
                self._evict_db_locked(name)
            finally:
                if lock is not None:
                    lock.release()

    handler_module.NeoSQLiteHandler._evict_lru_locked = evict_lru_locked


FIXES: dict[str, Callable[[], None]] = {
    "wire-protocol": _patch_wire_protocol,
    "or-parentheses": _patch_or_parentheses,
    "query-routing": _patch_query_routing,
    "query-operators": _patch_query_operators,
    "projection": _patch_projection,
    "updates": _patch_updates,
    "bson-types": _patch_storage_types,
    "ttl": _patch_ttl,
    "db-eviction": _patch_db_eviction,
}


# --------------------------------------------------------------------------------------
# TTL monitor
# --------------------------------------------------------------------------------------


class TTLMonitor:
    """mongod's TTL monitor: every ``interval`` seconds, delete the documents whose indexed
    date (the earliest one, for an array) plus ``expireAfterSeconds`` has passed. Values that
    are not dates never expire, as in mongod."""

    def __init__(self, handler: Any, interval: float) -> None:
        self.handler = handler
        self.interval = interval
        self.passes = 0
        self.removed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ttl-monitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sweep_once()
            except Exception:
                logger.exception("TTL monitor pass failed")

    def database_names(self) -> list[str]:
        """Open databases and, in files mode, every database file (after a restart a file
        holds expired documents before anyone opens it)."""
        names = set(self.handler.databases)
        if self._data_dir is not None:
            names.update(path.stem for path in self._data_dir.glob("*.db"))
        return sorted(names)

    @property
    def _data_dir(self) -> Path | None:
        data_dir = getattr(self.handler, "_data_dir", None)
        return Path(data_dir) if data_dir else None

    def _still_there(self, name: str) -> bool:
        """Dropped since it was listed? Opening it would create it again, empty."""
        if name in self.handler.databases:
            return True
        return self._data_dir is not None and (self._data_dir / f"{name}.db").exists()

    def sweep_once(self, now: dt.datetime | None = None) -> int:
        """One pass over every database; returns how many documents it removed."""
        from neosqlite.collection.index_manager import list_ttl_specs

        now = utc_naive_ms(now or dt.datetime.now(dt.timezone.utc))
        removed = 0
        for name in self.database_names():
            with self.handler._lock_for(name):
                if not self._still_there(name):
                    continue
                try:
                    db = self.handler.get_database(name)
                except ValueError:
                    continue
                existing = set(db.list_collection_names())
                for spec in list_ttl_specs(db.db):
                    if spec["collection_name"] not in existing:
                        continue
                    cutoff = now - dt.timedelta(seconds=spec["expireAfterSeconds"])
                    result = db[spec["collection_name"]].delete_many(
                        {spec["field"]: {"$lt": cutoff}}
                    )
                    removed += result.deleted_count
        self.passes += 1
        self.removed += removed
        return removed


# --------------------------------------------------------------------------------------
# The server loop
# --------------------------------------------------------------------------------------


async def serve_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    handler: Any,
    live: set[asyncio.StreamWriter],
) -> None:
    """One client connection: messages in order, each handled in a worker thread (the
    handler serialises per database). Bug 3's other half: a message with moreToCome set
    (w:0) gets no reply; upstream's loop answers it anyway and the driver then reads that
    answer as the reply to its next command."""
    from nx_27017.wire_protocol import (
        MAX_MESSAGE_SIZE_BYTES,
        OP_MSG,
        OP_QUERY,
        ResponseBuilder,
        _get_next_request_id,
    )

    handler.increment_connections()
    live.add(writer)
    conn_id = uuid.uuid4().hex
    try:
        while True:
            header = await reader.readexactly(16)
            length, request_id, _, opcode = struct.unpack("<iiii", header)
            if length < 16 or length > MAX_MESSAGE_SIZE_BYTES:
                logger.warning("closing a connection that sent a %d-byte message", length)
                return
            message = header + await reader.readexactly(length - 16)
            if opcode == OP_MSG_CODE:
                (flags,) = struct.unpack_from("<I", message, 16)
                try:
                    msg = OP_MSG.parse(message)
                    msg["_conn_id"] = conn_id
                    body: dict[str, Any] = next(
                        (doc for kind, doc in msg["sections"] if kind == "body"), {}
                    )
                    is_insert = "insert" in body or any(
                        kind == "payload_docs" for kind, _ in msg["sections"]
                    )
                    run = handler.handle_insert if is_insert else handler.handle_command
                    _, reply = await asyncio.to_thread(run, msg)
                except Exception as exc:
                    logger.exception("command failed")
                    reply = {"ok": 0, "errmsg": str(exc), "code": 8}
                if flags & MORE_TO_COME:
                    continue
                out = ResponseBuilder.build_op_msg_reply(_get_next_request_id(), request_id, reply)
            elif opcode == OP_QUERY_CODE:
                query = OP_QUERY.parse(message)
                query["_conn_id"] = conn_id
                try:
                    _, docs = await asyncio.to_thread(handler.handle_query, query)
                except Exception as exc:
                    logger.exception("legacy query failed")
                    docs = [{"ok": 0, "errmsg": str(exc), "code": 8}]
                out = ResponseBuilder.build_reply(_get_next_request_id(), request_id, docs)
            else:
                out = ResponseBuilder.build_op_msg_reply(
                    _get_next_request_id(),
                    request_id,
                    {"ok": 0, "errmsg": f"unsupported opcode {opcode}", "code": 59},
                )
            writer.write(out)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        live.discard(writer)
        handler.decrement_connections()
        with contextlib.suppress(Exception):
            handler.close_streams_for_connection(conn_id)
        with contextlib.suppress(Exception):
            handler.close_cursors_for_owner(conn_id)
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


class Server:
    """The patched handler behind an asyncio server on 127.0.0.1, in a background thread."""

    def __init__(self, data_dir: str, port: int, ttl_interval: float) -> None:
        from nx_27017.handler import NeoSQLiteHandler

        self.handler = NeoSQLiteHandler(data_dir=data_dir)
        self.monitor = TTLMonitor(self.handler, ttl_interval)
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, name="server", daemon=True)

    def start(self) -> None:
        async def listen() -> asyncio.base_events.Server:
            return await asyncio.start_server(
                lambda r, w: serve_connection(r, w, self.handler, self._connections),
                host="127.0.0.1",
                port=self.port,
                family=socket.AF_INET,
            )

        self._server = self._loop.run_until_complete(listen())
        self.port = self._server.sockets[0].getsockname()[1]
        self._thread.start()
        self.monitor.start()

    def stop(self) -> None:
        self.monitor.stop()

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            # Closing a connection's transport ends its read loop with EOF (cancelling the
            # task instead makes Python 3.11's stream callback log the CancelledError).
            for writer in list(self._connections):
                writer.close()
            current = asyncio.current_task()
            connections = [task for task in asyncio.all_tasks() if task is not current]
            if connections:
                await asyncio.wait(connections, timeout=10)
            if self._server is not None:
                await self._server.wait_closed()
            # Commands already handed to worker threads finish before the files are closed.
            await self._loop.shutdown_default_executor()

        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop.close()
        self.handler.close_all()


# --------------------------------------------------------------------------------------
# Self-check: every operation the stores use, and each upstream bug, against this server
# --------------------------------------------------------------------------------------


class SelfCheckError(AssertionError):
    pass


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise SelfCheckError(message)


def self_check(server: Server) -> list[str]:
    """Run the checks against the live server with pymongo; returns their names. Raises
    SelfCheckError naming the first failure."""
    import bson
    import pymongo
    from bson import Binary, Code, Decimal128, MaxKey, MinKey, Regex, Timestamp
    from bson.int64 import Int64
    from bson.raw_bson import RawBSONDocument
    from pymongo import WriteConcern

    url = f"mongodb://127.0.0.1:{server.port}/"
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        url, serverSelectionTimeoutMS=5000, maxPoolSize=1
    )
    db = client[SELF_CHECK_DB]
    done: list[str] = []

    def check(name: str) -> Callable[[Callable[[], None]], None]:
        def run(fn: Callable[[], None]) -> None:
            try:
                fn()
            except SelfCheckError as exc:
                raise SelfCheckError(f"{name}: {exc}") from None
            except Exception as exc:
                raise SelfCheckError(f"{name}: {type(exc).__name__}: {exc}") from exc
            done.append(name)

        return run

    raw_options = bson.CodecOptions(document_class=RawBSONDocument)

    def one(coll: Any, query: dict[str, Any], **kwargs: Any) -> Any:
        found = coll.find_one(query, **kwargs)
        _expect(found is not None, f"no document matches {query}")
        return found

    def raw(coll: Any, _id: Any) -> bytes:
        return bytes(one(coll.with_options(codec_options=raw_options), {"_id": _id}).raw)

    now = utc_naive_ms(dt.datetime.now(dt.timezone.utc))
    later = now + dt.timedelta(hours=1)
    alive = {"$or": [{"expires": {"$exists": False}}, {"expires": {"$gt": now}}]}

    try:
        client.admin.command("ping")
        db.client.drop_database(SELF_CHECK_DB)

        @check("bug 1: {_id, $or} matches that _id only")
        def _() -> None:
            coll = db.or_check
            coll.insert_many(
                [{"_id": "a", "expires": later}, {"_id": "b", "expires": later}, {"_id": "c"}]
            )
            _expect([d["_id"] for d in coll.find({"_id": "a", **alive})] == ["a"], "find")
            _expect(coll.find_one({"_id": "zz", **alive}) is None, "find_one of a missing _id")
            _expect(coll.count_documents({"_id": "c", **alive}) == 1, "count_documents")
            _expect(coll.delete_one({"_id": "zz", **alive}).deleted_count == 0, "delete_one")
            _expect(coll.count_documents({}) == 3, "delete_one removed another document")
            # And the SQL translator itself, which other neosqlite paths still use.
            import sqlite3

            from neosqlite.collection.sql_translator_unified import SQLClauseBuilder

            sql, params = SQLClauseBuilder().build_where_clause(
                {"x": 1, "$or": [{"y": 1}, {"z": 1}]}
            )
            mem = sqlite3.connect(":memory:")
            try:
                mem.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, data TEXT)")
                mem.executemany(
                    "INSERT INTO t (data) VALUES (?)", [('{"x":1,"y":1}',), ('{"x":2,"z":1}',)]
                )
                rows = mem.execute(f"SELECT id FROM t {sql}", params).fetchall()
            finally:
                mem.close()
            _expect(rows == [(1,)], f"translated {sql!r} matched rows {rows}")

        @check("bug 2: $set without _id keeps dates and booleans")
        def _() -> None:
            coll = db.touch_check
            coll.insert_one({"_id": "s", "session": "{}", "expires": now, "flag": False})
            coll.update_one({"_id": "s"}, {"$set": {"expires": later, "lastModified": now}})
            coll.update_one({"_id": "s"}, {"$set": {"flag": True}})
            doc = one(coll, {"_id": "s"})
            _expect(doc["expires"] == later and isinstance(doc["expires"], dt.datetime), "expires")
            _expect(doc["lastModified"] == now, f"lastModified {doc['lastModified']!r}")
            _expect(doc["flag"] is True, f"flag {doc['flag']!r}")

        @check("bug 3: w:0 writes are applied and leave the connection usable")
        def _() -> None:
            coll = db.w0_check
            unacked = coll.with_options(write_concern=WriteConcern(w=0))
            _expect(not unacked.insert_one({"_id": 1, "v": 1}).acknowledged, "acknowledged?")
            unacked.insert_many([{"_id": 2, "expires": now - dt.timedelta(seconds=5)}])
            unacked.update_one({"_id": 1}, {"$set": {"v": 2}}, upsert=True)
            unacked.delete_many({"expires": {"$lt": now}})
            docs = list(coll.find({}, sort=[("_id", 1)]))  # same pooled connection
            _expect(docs == [{"_id": 1, "v": 2}], f"after w:0 writes: {docs}")

        @check("bug 4: reads keep expired documents; the TTL monitor removes them")
        def _() -> None:
            coll = db.ttl_check
            coll.create_index([("expires", 1)], expireAfterSeconds=0)
            coll.create_index([("expires", 1)], expireAfterSeconds=0)  # idempotent, as mongod
            info = coll.index_information()
            _expect(any(i.get("expireAfterSeconds") == 0 for i in info.values()), f"indexes {info}")
            coll.insert_many(
                [
                    {"_id": "old", "expires": now - dt.timedelta(seconds=5)},
                    {"_id": "new", "expires": later},
                    {"_id": "string", "expires": "2000-01-01T00:00:00Z"},
                    {"_id": "none"},
                ]
            )
            _expect(coll.count_documents({}) == 4, "a read purged documents")
            _expect(len(list(coll.find({}))) == 4, "find purged documents")
            removed = server.monitor.sweep_once()
            ids = sorted(d["_id"] for d in coll.find({}))
            _expect(removed >= 1 and ids == ["new", "none", "string"], f"after sweep: {ids}")
            _expect(server.monitor.is_alive(), "monitor thread is not running")

        @check("bug 5: $type date, and types not confused")
        def _() -> None:
            coll = db.type_check
            coll.insert_many(
                [
                    {"_id": "date", "v": now},
                    {"_id": "isostr", "v": "2026-01-01T00:00:00Z"},
                    {"_id": "bool", "v": True},
                    {"_id": "int", "v": 1},
                    {"_id": "long", "v": Int64(1)},
                    {"_id": "double", "v": 1.0},
                    {"_id": "null", "v": None},
                    {"_id": "missing"},
                ]
            )

            def ids(t: Any) -> list[str]:
                return sorted(d["_id"] for d in coll.find({"v": {"$type": t}}))

            _expect(ids("date") == ["date"] and ids(9) == ["date"], f"date: {ids('date')}")
            _expect(ids("string") == ["isostr"], f"string: {ids('string')}")
            _expect(ids("bool") == ["bool"], f"bool: {ids('bool')}")
            _expect(ids("int") == ["int"], f"int: {ids('int')}")
            _expect(ids("long") == ["long"], f"long: {ids('long')}")
            _expect(ids("double") == ["double"], f"double: {ids('double')}")
            _expect(ids("number") == ["double", "int", "long"], f"number: {ids('number')}")
            _expect(ids("null") == ["null"], f"null: {ids('null')}")

        @check("dates compare to the millisecond and only with dates")
        def _() -> None:
            coll = db.date_check
            soon = now + dt.timedelta(milliseconds=300)
            coll.insert_many(
                [{"_id": "soon", "expires": soon}, {"_id": "str", "expires": "9999-12-31"}]
            )
            _expect(coll.find_one({"_id": "soon", **alive}) is not None, "+300 ms is not > now")
            _expect(coll.find_one({"expires": {"$gt": soon}}) is None, "$gt itself matched")
            _expect(one(coll, {"expires": {"$gte": soon}})["_id"] == "soon", "$gte")
            _expect(coll.count_documents({"expires": {"$lt": "9999"}}) == 0, "string vs date")
            _expect(coll.find_one({"_id": "str", **alive}) is None, "a string expires is alive")
            coll.insert_one({"_id": "nullexp", "expires": None})
            _expect(coll.find_one({"_id": "nullexp", **alive}) is None, "null expires exists")

        @check("connect-mongo set: upsert with $set/$setOnInsert/$currentDate")
        def _() -> None:
            coll = db.sessions

            def update(session: str, created: dt.datetime) -> dict[str, Any]:
                return {
                    "$set": {
                        "_id": "sid",
                        "session": session,
                        "expires": later,
                        "lastModified": now,
                    },
                    "$setOnInsert": {"createdAt": created},
                    "$currentDate": {"updatedAt": True},
                }

            first = coll.update_one({"_id": "sid"}, update('{"n":1}', now), upsert=True)
            _expect(first.upserted_id == "sid" and first.matched_count == 0, "first upsert")
            doc = one(coll, {"_id": "sid"})
            order = ["_id", "createdAt", "expires", "lastModified", "session", "updatedAt"]
            _expect(list(doc) == order, f"field order {list(doc)}")
            _expect(isinstance(doc["updatedAt"], dt.datetime), "updatedAt is not a date")
            one(coll, {"_id": "sid", "updatedAt": {"$lte": later}})  # $currentDate compares
            second = coll.update_one({"_id": "sid"}, update('{"n":2}', later), upsert=True)
            _expect(second.upserted_id is None and second.matched_count == 1, "second upsert")
            doc = one(coll, {"_id": "sid"})
            _expect(doc["createdAt"] == now and doc["session"] == '{"n":2}', "update applied")
            touched = coll.update_one({"_id": "nope"}, {"$set": {"expires": later}})
            _expect(touched.matched_count == 0, "touch of a missing session matched")

        @check("BSON types round-trip byte for byte")
        def _() -> None:
            coll = db.types_check
            doc = {
                "_id": "t",
                "int32": 7,
                "int64_small": Int64(7),
                "int64_big": Int64(2**40),
                "double": 7.0,
                "neg_zero": -0.0,
                "fraction": 0.1,
                "string": "x ü 😀",
                "iso_like": "2026-01-01T00:00:00.000Z",
                "date": now,
                "old_date": dt.datetime(1960, 1, 1, 0, 0, 0, 1000),
                "bool": False,
                "null": None,
                "nested": {"id": 0, "flag": {"id": False}, "list": [1, "a", {"d": now}], "e": {}},
                "id": 0,
                "array": [],
                "nan": math.nan,
                "infinity": -math.inf,
                "uuid": Binary(uuid.UUID(int=1).bytes, 4),
                "bytes": b"\x00\xff",
                "decimal": Decimal128("1.10"),
                "regex": Regex("^a", "i"),
                "timestamp": Timestamp(5, 1),
                "code": Code("x"),
                "keys": [MinKey(), MaxKey()],
                "marker_like": [{"$date": "2020-01-01"}, {"$numberLong": "5"}, {"$code": "x"}],
            }
            coll.insert_one(doc)
            got = raw(coll, "t")
            _expect(got == bson.encode(doc), f"after insert: {bson.decode(got)}")
            coll.update_one({"_id": "t"}, {"$set": {"string": "y"}})
            doc["string"] = "y"
            got = raw(coll, "t")
            _expect(got == bson.encode(doc), f"after $set: {bson.decode(got)}")

        @check("projections keep the document's order, _id first")
        def _() -> None:
            coll = db.projection_check
            coll.insert_one({"_id": "p", "b": 1, "c": {"x": 1, "y": 2, "z": 3}, "d": 4})
            got = one(coll, {"_id": "p"}, projection={"d": 1, "c.z": 1, "c.x": 1})
            wanted = [("_id", "p"), ("c", {"x": 1, "z": 3}), ("d", 4)]
            _expect(list(got.items()) == wanted, f"inclusion: {got}")
            got = coll.find_one({"_id": "p"}, projection={"c.y": 0, "b": 0, "_id": 0})
            _expect(got == {"c": {"x": 1, "z": 3}, "d": 4}, f"exclusion: {got}")

        @check("replace_one keeps _id first and upserts with the filter's _id")
        def _() -> None:
            coll = db.replace_check
            coll.insert_one({"_id": "r", "a": 1})
            coll.replace_one({"_id": "r"}, {"b": 2})
            _expect(list(one(coll, {"_id": "r"})) == ["_id", "b"], "replace order")
            result = coll.replace_one({"_id": "u"}, {"c": 3}, upsert=True)
            _expect(result.upserted_id == "u", f"upserted_id {result.upserted_id!r}")
            _expect(coll.find_one({"_id": "u"}) == {"_id": "u", "c": 3}, "replacement upsert")

        @check("an integer _id is a value, not a row id")
        def _() -> None:
            coll = db.int_id_check
            coll.insert_many([{"_id": 2, "v": "two"}, {"_id": 1, "v": "one"}])
            coll.update_one({}, {"$set": {"first": True}})  # natural order: _id 2
            _expect(one(coll, {"first": True})["_id"] == 2, f"{list(coll.find())}")
            hit = coll.update_one({"_id": 2, "v": {"$type": "string"}}, {"$set": {"hit": True}})
            _expect(hit.matched_count == 1, "no match")
            _expect(one(coll, {"_id": 2}).get("hit") is True, f"updated {list(coll.find())}")
            _expect(coll.delete_one({"_id": 1, "v": {"$type": "string"}}).deleted_count == 1, "")
            _expect([d["_id"] for d in coll.find()] == [2], f"deleted {list(coll.find())}")

        @check("a database in use is not closed to make room for another")
        def _() -> None:
            from nx_27017 import handler as handler_module

            names = [f"{SELF_CHECK_DB}_{n}" for n in range(4)]
            client[names[0]].c.insert_one({"_id": 1})
            lock = server.handler._lock_for(names[0])
            cap = handler_module._MAX_OPEN_DBS
            lock.acquire()  # as a command running on names[0] would hold it
            try:
                handler_module._MAX_OPEN_DBS = 2
                for name in names[1:]:
                    client[name].c.insert_one({"_id": 1})
                _expect(names[0] in server.handler._conns, "the busy database was closed")
            finally:
                handler_module._MAX_OPEN_DBS = cap
                lock.release()
                for name in names:
                    client.drop_database(name)

        @check("all/length/clear: cursors past one batch, counts, deletes, drop")
        def _() -> None:
            coll = db.bulk_check
            coll.insert_many([{"_id": f"s{i:03}", "expires": later} for i in range(150)])
            _expect(len(list(coll.find(alive))) == 150, "find with getMore")
            _expect(coll.count_documents({}) == 150, "count_documents")
            _expect(coll.estimated_document_count() == 150, "estimated_document_count")
            _expect(coll.delete_one({"_id": "s000"}).deleted_count == 1, "delete_one")
            _expect(coll.delete_many({}).deleted_count == 149, "delete_many({})")
            coll.create_index([("expires", 1)], expireAfterSeconds=0)
            coll.drop()
            _expect(SELF_CHECK_DB in client.list_database_names(), "list_database_names")
            _expect("bulk_check" not in db.list_collection_names(), "drop")
            from neosqlite.collection.index_manager import list_ttl_specs

            specs = list_ttl_specs(server.handler.get_database(SELF_CHECK_DB).db)
            _expect(
                all(s["collection_name"] != "bulk_check" for s in specs), "TTL index outlived drop"
            )

    finally:
        with contextlib.suppress(Exception):
            client.drop_database(SELF_CHECK_DB)
        client.close()
    return done


# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
    parser.add_argument("--data", required=True, help="directory for the SQLite files")
    parser.add_argument(
        "--ttl-interval",
        type=float,
        default=60.0,
        help="seconds between TTL monitor passes (mongod: 60)",
    )
    parser.add_argument(
        "--exit-on-stdin-eof",
        action="store_true",
        help="stop when standard input closes (a harness holds it open, so its death ends us)",
    )
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument(
        "--without-fix",
        action="append",
        default=[],
        metavar="NAME",
        help=f"tests only: leave a fix out to see the self-check refuse ({', '.join(FIXES)})",
    )
    args = parser.parse_args(argv)
    if args.ttl_interval <= 0:
        parser.error("--ttl-interval must be positive")

    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        apply_patches(frozenset(args.without_fix))
    except LauncherError as exc:
        print(f"mongo_launcher: {exc}", file=sys.stderr)
        return 2

    server = Server(args.data, args.port, args.ttl_interval)
    stopping = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    if args.exit_on_stdin_eof:

        def watch_stdin() -> None:
            # os.read on the descriptor, not sys.stdin: a thread blocked inside the buffered
            # reader makes interpreter shutdown abort ("could not acquire lock").
            with contextlib.suppress(OSError):
                while os.read(0, 4096):
                    pass
            stopping.set()

        threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()
    try:
        server.start()
    except OSError as exc:
        print(f"mongo_launcher: cannot listen on 127.0.0.1:{args.port}: {exc}", file=sys.stderr)
        return 2
    try:
        started = time.monotonic()
        try:
            passed = self_check(server)
        except SelfCheckError as exc:
            print(f"mongo_launcher: self-check failed, refusing to serve: {exc}", file=sys.stderr)
            return EXIT_SELF_CHECK_FAILED
        logger.info("self-check: %d checks in %.2fs", len(passed), time.monotonic() - started)
        print(f"READY {server.port}", flush=True)
        while not stopping.wait(0.5):
            pass
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
