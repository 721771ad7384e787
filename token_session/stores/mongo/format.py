"""MongoDB store, document for document what connect-mongo 6.0.0 writes (and 4.6.0 wrote).

:class:`MongoCodec` holds the rules and does no I/O: the filter, update and options of each
operation, and how a stored document becomes a session. :class:`MongoStore` (pymongo's
``MongoClient``) and :class:`AsyncMongoStore` (``AsyncMongoClient``) only run them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar

from ...compat.cookie import (
    COOKIE_JSON_KEYS,
    Cookie,
    expires_ms,
    from_ms,
    now_ms,
    parse_js_date,
    to_ms,
)
from ...compat.jsjson import js_key_order, loads
from ...errors import (
    BackendUnavailableError,
    InvalidArgumentError,
    SessionDecodeError,
    SessionNotFoundError,
    TokenSessionError,
)
from ..base import Session, check_sid, decode_session, encode_session
from ..records import (
    Finding,
    Page,
    RawRecord,
    StoredSession,
    WriteResult,
    check_limit,
    plan_writes,
)

__all__ = ["AsyncMongoStore", "MongoCodec", "MongoRecords", "MongoStore"]

log = logging.getLogger(__package__)

AUTO_REMOVE = ("native", "interval", "disabled")
_INT32 = 2**31
# express-session's Cookie#toJSON keys; the Node driver writes the undefined ones as null
_COOKIE_KEYS = COOKIE_JSON_KEYS
_ENCRYPTED = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")


@dataclass(frozen=True)
class Op:
    """A call on a pymongo collection: ``getattr(collection, method)(*args, **kwargs)``."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


def _date(ms: float) -> datetime:
    return from_ms(math.floor(ms))


def _js_bson(value: Any) -> Any:
    """The Python value whose BSON is what the Node driver writes for the same JS value.

    JS has one number type: the Node driver writes an integral number in the int32 range
    as int32 and any other number as a double, where pymongo would write int64 or double.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _utf8_safe(value)
    if isinstance(value, int):
        return value if -_INT32 <= value < _INT32 else float(value)
    if isinstance(value, float):
        if (
            value.is_integer()
            and -_INT32 <= value < _INT32
            and not (value == 0 and math.copysign(1, value) < 0)
        ):
            return int(value)
        return value
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, (list, tuple)):
        return [_js_bson(item) for item in value]
    if isinstance(value, Mapping):
        return _js_object((str(key), _js_bson(item)) for key, item in value.items())
    raise InvalidArgumentError(f"{type(value).__name__} cannot be stored in a session document")


def _utf8_safe(text: str) -> str:
    """The string the Node driver's UTF-8 encoding stores: a lone surrogate becomes U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def _cookie_document(cookie: Any) -> Any:
    """``cookie.toJSON()`` as connect-mongo's default serializer stores it (expires a Date)."""
    if isinstance(cookie, Cookie):
        cookie = cookie.to_json()
    elif not (
        isinstance(cookie, Mapping)
        and "originalMaxAge" in cookie
        and set(cookie) <= set(_COOKIE_KEYS)
    ):
        return _js_bson(cookie)  # not an express-session cookie: stored as it is
    document = {key: cookie.get(key) for key in _COOKIE_KEYS}
    expires = document["expires"]
    if isinstance(expires, str):
        parsed = parse_js_date(expires)
        document["expires"] = parsed
    return _js_bson(document)


def _js_object(items: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """A JS object's own keys in JS order: integer-like keys first, ascending."""
    ordered = js_key_order(list(items))
    document = {_utf8_safe(key): value for key, value in ordered}
    if len(document) != len(ordered):  # two keys differing only in lone surrogates
        raise InvalidArgumentError(
            "session keys that differ only in lone surrogates collide in BSON"
        )
    return document


def default_serialize(session: Mapping[str, Any]) -> dict[str, Any]:
    """connect-mongo's ``defaultSerializeFunction``: ``cookie`` first (after integer-like
    keys, as in any JS object), as ``toJSON`` gives it."""
    items = [("cookie", _cookie_document(session.get("cookie")))]
    items += [(str(key), _js_bson(value)) for key, value in session.items() if key != "cookie"]
    return _js_object(items)


def _plain(value: Any) -> Any:
    """A document read back: naive datetimes (pymongo without tz_aware) made UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


@dataclass(frozen=True)
class MongoCodec:
    """connect-mongo's rules as data. Options keep its names in snake_case."""

    collection_name: str = "sessions"
    ttl: float = 1209600  # 14 days, in seconds
    auto_remove: str = "native"
    auto_remove_interval: float = 10  # minutes
    touch_after: float = 0  # seconds
    stringify: bool = True
    timestamps: bool = False
    transform_id: Callable[[str], Any] | None = None
    serialize: Callable[[Mapping[str, Any]], Any] | None = None
    unserialize: Callable[[Any], Any] | None = None
    write_operation_options: Mapping[str, Any] | None = None
    clock: Callable[[], int] = now_ms

    def __post_init__(self) -> None:
        if self.auto_remove not in AUTO_REMOVE:
            raise InvalidArgumentError(f"auto_remove must be one of {', '.join(AUTO_REMOVE)}")
        if self.auto_remove_interval and self.auto_remove_interval > 71582:
            # connect-mongo's assertion: the interval is in minutes, not seconds or ms
            raise InvalidArgumentError("auto_remove_interval is in minutes and at most 71582")
        if not isinstance(self.collection_name, str) or not self.collection_name:
            raise InvalidArgumentError("collection_name must be a non-empty str")

    # -- the session <-> document mapping (connect-mongo computeTransformFunctions) --

    def encode(self, session: Mapping[str, Any]) -> Any:
        if self.serialize is not None or self.unserialize is not None:
            return (self.serialize or default_serialize)(session)
        if not self.stringify:
            return default_serialize(session)
        return encode_session(session)

    def decode(self, sid: str, document: Mapping[str, Any] | None) -> Session | None:
        if document is None:
            return None
        stored = document.get("session")
        if self.serialize is not None or self.unserialize is not None:
            value = (self.unserialize or (lambda x: x))(stored)
        elif isinstance(stored, str) and not self.stringify:
            raise self._encrypted_or_corrupt(sid, stored)
        elif not self.stringify:
            value = _plain(stored)
        elif not isinstance(stored, str):
            raise SessionDecodeError(sid, f"session is a {type(stored).__name__}, not JSON text")
        else:
            try:
                value = loads(stored)
            except ValueError:
                raise self._encrypted_or_corrupt(sid, stored) from None
        if not isinstance(value, dict):
            raise SessionDecodeError(sid, f"{type(value).__name__}, not an object")
        if self.touch_after > 0 and document.get("lastModified"):
            value["lastModified"] = _plain(document["lastModified"])
        return value

    @staticmethod
    def _encrypted_or_corrupt(sid: str, stored: str) -> SessionDecodeError:
        if _ENCRYPTED.fullmatch(stored):
            return SessionDecodeError(
                sid,
                "encrypted by connect-mongo's crypto / cryptoAdapter option, "
                "which token_session does not decrypt",
            )
        return SessionDecodeError(sid, "session is not JSON")

    # -- operations --

    def storage_id(self, sid: str) -> Any:
        check_sid(sid)
        return self.transform_id(sid) if self.transform_id is not None else sid

    def live(self) -> dict[str, Any]:
        now = _date(self.clock())
        return {"$or": [{"expires": {"$exists": False}}, {"expires": {"$gt": now}}]}

    def expires(self, session: Mapping[str, Any]) -> datetime:
        """connect-mongo ``computeExpires``: ``new Date(cookie.expires)`` or now + ttl."""
        expiry = expires_ms(session)
        if expiry is None:
            return _date(self.clock() + self.ttl * 1000)
        if not math.isfinite(expiry):
            return _date(self.clock())  # an Invalid Date: treat the session as expired
        return _date(expiry)

    def get_op(self, sid: str) -> Op:
        return Op("find_one", ({"_id": self.storage_id(sid), **self.live()},))

    def set_op(self, sid: str, session: Mapping[str, Any]) -> Op:
        if not isinstance(session, Mapping):
            raise InvalidArgumentError(f"session must be a dict, not {type(session).__name__}")
        storage_id = self.storage_id(sid)
        if self.touch_after > 0 and session.get("lastModified"):
            session = {k: v for k, v in session.items() if k != "lastModified"}
        stored = self.encode(session)
        return self._upsert(storage_id, stored, self.expires(session))

    def _upsert(self, storage_id: Any, stored: Any, expires: datetime | None) -> Op:
        """connect-mongo's ``set``; a document without ``expires`` never expires."""
        fields: dict[str, Any] = {"_id": storage_id, "session": stored}
        if expires is not None:
            fields["expires"] = expires
        if self.touch_after > 0:
            fields["lastModified"] = _date(self.clock())
        update: dict[str, Any] = {"$set": fields}
        if expires is None:
            update["$unset"] = {"expires": ""}
        if self.timestamps:
            update["$setOnInsert"] = {"createdAt": _date(self.clock())}
            update["$currentDate"] = {"updatedAt": True}
        return Op("update_one", ({"_id": storage_id}, update), {"upsert": True})

    def touch_op(self, sid: str, session: Mapping[str, Any]) -> Op | None:
        """None when ``touch_after`` says the session was written too recently."""
        storage_id = self.storage_id(sid)
        if not isinstance(session, Mapping):
            raise InvalidArgumentError(f"session must be a dict, not {type(session).__name__}")
        fields: dict[str, Any] = {}
        now = self.clock()
        last_modified = _ms(session.get("lastModified"))
        if self.touch_after > 0 and last_modified > 0:
            if now - last_modified < self.touch_after * 1000:
                return None
            fields["lastModified"] = _date(now)
        fields["expires"] = self.expires(session)
        update: dict[str, Any] = {"$set": fields}
        if self.timestamps:
            update["$currentDate"] = {"updatedAt": True}
        return Op("update_one", ({"_id": storage_id}, update))

    def destroy_op(self, sid: str) -> Op:
        return Op("delete_one", ({"_id": self.storage_id(sid)},))

    def all_op(self) -> Op:
        return Op("find", (self.live(),))

    def ids_op(self) -> Op:
        return Op("find", (self.live(), {"_id": 1}))

    def length_op(self) -> Op:
        # connect-mongo counts every document, expired ones not yet removed too; we count
        # the sessions get() would return, as ids() and all() list them
        return Op("count_documents", (self.live(),))

    def clear_op(self) -> Op:
        return Op("delete_many", ({},))

    def expired_op(self) -> Op:
        return Op("delete_many", ({"expires": {"$lt": _date(self.clock())}},))

    def index_op(self) -> Op:
        """The TTL index connect-mongo's ``autoRemove: "native"`` creates."""
        return Op(
            "create_index", ([("expires", 1)],), {"background": True, "expireAfterSeconds": 0}
        )

    # -- records: the stored text and expiry as they are (the token-session command) --

    def _stores_text(self) -> bool:
        return self.stringify and self.serialize is None and self.unserialize is None

    def stream_op(self, after: str | None, batch_size: int) -> Op:
        """The live documents after ``after`` in ``_id`` order, read by one cursor."""
        query = self.live()
        if after is not None:
            query = {"$and": [query, {"_id": {"$gt": after}}]}
        projection = {"session": 1, "expires": 1}
        return Op("find", (query, projection), {"sort": [("_id", 1)], "batch_size": batch_size})

    def record_op(self, sid: str) -> Op:
        return Op("find_one", ({"_id": self.storage_id(sid), **self.live()},))

    def raw_op(self, sid: str) -> Op:
        return Op("find_one", ({"_id": self.storage_id(sid)},))

    def record_of(self, document: Mapping[str, Any]) -> StoredSession:
        """A stored document as a record: its JSON text as is (re-encoded where the store
        keeps documents, not text); SessionDecodeError if it holds no session."""
        sid = str(document["_id"])
        stored = document.get("session")
        if self._stores_text() and isinstance(stored, str):
            text = stored
        else:
            session = self.decode(sid, document)
            if session is None:
                raise SessionDecodeError(sid, "no session")
            text = encode_session(session)
        expires = document.get("expires")
        return StoredSession(sid, text, _ms_or_none(expires))

    def put_op(self, record: StoredSession, now: int) -> Op | None:
        """connect-mongo's upsert of the text as is, expiring when the record does; None
        when it has expired already."""
        if record.expires_ms is not None and record.expires_ms <= now:
            return None
        storage_id = self.storage_id(record.sid)
        if self._stores_text():
            stored: Any = record.text
        else:
            stored = self.encode(decode_session(record.sid, record.text))
        expires = None if record.expires_ms is None else _date(record.expires_ms)
        return self._upsert(storage_id, stored, expires)

    def expired_count_op(self) -> Op:
        return Op("count_documents", ({"expires": {"$lt": _date(self.clock())}},))

    def index_findings(self, indexes: Sequence[Mapping[str, Any]]) -> list[Finding]:
        """Whether ``list_indexes`` shows the TTL index on ``expires`` connect-mongo relies on."""
        check = "TTL index on expires"
        create = f"db.{self.collection_name}.createIndex({{expires: 1}}, {{expireAfterSeconds: 0}})"
        on_expires = [ix for ix in indexes if list(dict(ix.get("key", {}))) == ["expires"]]
        ttl = [ix for ix in on_expires if "expireAfterSeconds" in ix]
        if any(ix["expireAfterSeconds"] == 0 for ix in ttl):
            return [Finding("ok", check, "present (expireAfterSeconds: 0)")]
        if ttl:
            late = ttl[0]["expireAfterSeconds"]
            return [
                Finding(
                    "warning",
                    check,
                    f"expireAfterSeconds is {late}: expired sessions stay {late} s longer",
                    f"db.runCommand({{collMod: '{self.collection_name}', index: {{keyPattern: "
                    "{expires: 1}, expireAfterSeconds: 0}})",
                )
            ]
        if self.auto_remove != "native":
            return [
                Finding(
                    "info",
                    check,
                    f"none; auto_remove is {self.auto_remove}, so expired sessions stay until "
                    "removed",
                    "run `token-session purge-expired` on a schedule, or create the index: "
                    + create,
                )
            ]
        return [
            Finding(
                "error" if on_expires else "warning",
                check,
                "an index on expires without expireAfterSeconds: expired sessions are never removed"
                if on_expires
                else "missing: connect-mongo (autoRemove native) creates it when it starts; "
                "until then expired sessions are never removed",
                create,
            )
        ]

    @staticmethod
    def expired_finding(count: int) -> Finding:
        if not count:
            return Finding("ok", "expired documents", "none waiting to be removed")
        return Finding(
            "info",
            "expired documents",
            f"{count} expired documents not removed yet (the TTL monitor runs every 60 s)",
            "token-session purge-expired",
        )


def _ms(value: Any) -> float:
    if isinstance(value, datetime):
        return to_ms(value if value.tzinfo else value.replace(tzinfo=timezone.utc))
    if isinstance(value, str):
        parsed = parse_js_date(value)
        return to_ms(parsed) if parsed else 0
    return 0


def _ms_or_none(value: Any) -> int | None:
    if isinstance(value, datetime):
        return to_ms(value if value.tzinfo else value.replace(tzinfo=timezone.utc))
    return None


_CODEC_OPTIONS = {
    "collection_name",
    "ttl",
    "auto_remove",
    "auto_remove_interval",
    "touch_after",
    "stringify",
    "timestamps",
    "transform_id",
    "serialize",
    "unserialize",
    "write_operation_options",
    "clock",
}


def _split_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    codec = {k: v for k, v in options.items() if k in _CODEC_OPTIONS}
    rest = {k: v for k, v in options.items() if k not in _CODEC_OPTIONS}
    return codec, rest


def _collection(client: Any, db_name: str | None, codec: MongoCodec) -> Any:
    from pymongo import WriteConcern

    database = client[db_name] if db_name else client.get_default_database(default="test")
    collection = database[codec.collection_name]
    if codec.write_operation_options:
        collection = collection.with_options(
            write_concern=WriteConcern(**codec.write_operation_options)
        )
    return collection


class _Errors:
    def __init__(self) -> None:
        from bson.errors import InvalidDocument
        from pymongo import errors

        self.unavailable = (errors.ConnectionFailure, errors.ServerSelectionTimeoutError)
        self.invalid = InvalidDocument

    def wrap(self, exc: BaseException, method: str) -> TokenSessionError:
        if isinstance(exc, self.invalid):  # nothing was sent
            return InvalidArgumentError(f"session cannot be stored in MongoDB: {exc}")
        if isinstance(exc, self.unavailable):
            return BackendUnavailableError(f"MongoDB unavailable during {method}: {exc}")
        return TokenSessionError(f"MongoDB {method} failed: {exc}")


def _checked_touch(sid: str, result: Any) -> None:
    if result.matched_count == 0:  # connect-mongo: "Unable to find the session to touch"
        raise SessionNotFoundError(sid)


def _client_options(options: dict[str, Any], timeout: float) -> dict[str, Any]:
    options.setdefault("serverSelectionTimeoutMS", int(timeout * 1000))
    options.setdefault("connectTimeoutMS", int(timeout * 1000))
    options.setdefault("tz_aware", True)
    return options


_Shell = TypeVar("_Shell", bound="_MongoShell")


class _MongoShell:
    """What the blocking and the asyncio store hold alike: the codec and the collection."""

    def __init__(
        self, client: Any, *, db_name: str | None = None, owns_client: bool = False, **options: Any
    ) -> None:
        codec_options, unknown = _split_options(options)
        if unknown:
            raise InvalidArgumentError(
                f"unknown MongoStore option(s): {', '.join(sorted(unknown))}"
            )
        self.codec = MongoCodec(**codec_options)
        self.client = client
        self.collection = _collection(client, db_name, self.codec)
        self._owns_client = owns_client
        self._errors = _Errors()
        self._ready = False

    @classmethod
    def _from_url(
        cls: type[_Shell], client_class: Any, url: str, timeout: float, options: dict[str, Any]
    ) -> _Shell:
        store_options, client_options = _split_options(options)
        db_name = client_options.pop("db_name", None)
        client = client_class(url, **_client_options(client_options, timeout))
        return cls(client, db_name=db_name, owns_client=True, **store_options)


class MongoStore(_MongoShell):
    """connect-mongo over pymongo: ``MongoStore(client, db_name=None, collection_name=...)``.

    ``client`` is a ``MongoClient`` (or use :meth:`from_url`). Options keep connect-mongo's
    names in snake_case: ``db_name``, ``collection_name``, ``ttl`` (seconds), ``auto_remove``
    (``native`` / ``interval`` / ``disabled``), ``auto_remove_interval`` (minutes),
    ``touch_after`` (seconds), ``stringify``, ``serialize`` / ``unserialize``,
    ``timestamps``, ``transform_id``, ``write_operation_options``.
    """

    def __init__(self, client: Any, **options: Any) -> None:
        super().__init__(client, **options)
        self._stop = threading.Event()
        self._remover: threading.Thread | None = None

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 5.0, **options: Any) -> MongoStore:
        """A ``mongodb://`` URL; its database is used unless ``db_name`` says otherwise."""
        from pymongo import MongoClient

        return cls._from_url(MongoClient, url, timeout, options)

    def _run(self, op: Op) -> Any:
        self._prepare()
        return self._call(op)

    def _call(self, op: Op) -> Any:
        try:
            result = getattr(self.collection, op.method)(*op.args, **op.kwargs)
            return result.to_list() if op.method == "find" else result
        except Exception as exc:
            raise self._errors.wrap(exc, op.method) from exc

    def _prepare(self) -> None:
        """What connect-mongo's ``setAutoRemove`` does, on first use."""
        if self._ready:
            return
        self._ready = True
        if self.codec.auto_remove == "native":
            self._call(self.codec.index_op())
        elif self.codec.auto_remove == "interval":
            self._remover = threading.Thread(
                target=self._remove_expired, name="token-session-mongo-autoremove", daemon=True
            )
            self._remover.start()

    def _remove_expired(self) -> None:
        while not self._stop.wait(self.codec.auto_remove_interval * 60):
            try:
                self._call(self.codec.expired_op())
            except TokenSessionError as exc:
                log.warning("removing expired sessions failed: %s", exc)

    def get(self, sid: str) -> Session | None:
        return self.codec.decode(sid, self._run(self.codec.get_op(sid)))

    def set(self, sid: str, session: Mapping[str, Any]) -> None:
        self._run(self.codec.set_op(sid, session))

    def touch(self, sid: str, session: Mapping[str, Any]) -> None:
        op = self.codec.touch_op(sid, session)
        if op is not None:
            _checked_touch(sid, self._run(op))

    def destroy(self, sid: str) -> None:
        self._run(self.codec.destroy_op(sid))

    def all(self) -> dict[str, Session]:
        documents = self._run(self.codec.all_op())
        return {str(doc["_id"]): self.codec.decode(str(doc["_id"]), doc) for doc in documents}  # type: ignore[misc]

    def ids(self) -> list[str]:
        return [str(doc["_id"]) for doc in self._run(self.codec.ids_op())]

    def length(self) -> int:
        count: int = self._run(self.codec.length_op())
        return count

    def clear(self) -> None:
        self._run(self.codec.clear_op())

    def close(self) -> None:
        """Stop the interval clean-up, and close the client if this store made it."""
        self._stop.set()
        if self._remover is not None:
            self._remover.join(timeout=10)
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> MongoStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncMongoStore(_MongoShell):
    """:class:`MongoStore` over pymongo's ``AsyncMongoClient``."""

    def __init__(self, client: Any, **options: Any) -> None:
        super().__init__(client, **options)
        self._remover: asyncio.Task[None] | None = None

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 5.0, **options: Any) -> AsyncMongoStore:
        """See :meth:`MongoStore.from_url`."""
        from pymongo import AsyncMongoClient

        return cls._from_url(AsyncMongoClient, url, timeout, options)

    async def _run(self, op: Op) -> Any:
        await self._prepare()
        return await self._call(op)

    async def _call(self, op: Op) -> Any:
        try:
            result = getattr(self.collection, op.method)(*op.args, **op.kwargs)
            return await (result.to_list() if op.method == "find" else result)
        except Exception as exc:
            raise self._errors.wrap(exc, op.method) from exc

    async def _prepare(self) -> None:
        if self._ready:
            return
        self._ready = True
        if self.codec.auto_remove == "native":
            await self._call(self.codec.index_op())
        elif self.codec.auto_remove == "interval":
            self._remover = asyncio.get_running_loop().create_task(self._remove_expired())

    async def _remove_expired(self) -> None:
        while True:
            await asyncio.sleep(self.codec.auto_remove_interval * 60)
            try:
                await self._call(self.codec.expired_op())
            except TokenSessionError as exc:
                log.warning("removing expired sessions failed: %s", exc)

    async def get(self, sid: str) -> Session | None:
        return self.codec.decode(sid, await self._run(self.codec.get_op(sid)))

    async def set(self, sid: str, session: Mapping[str, Any]) -> None:
        await self._run(self.codec.set_op(sid, session))

    async def touch(self, sid: str, session: Mapping[str, Any]) -> None:
        op = self.codec.touch_op(sid, session)
        if op is not None:
            _checked_touch(sid, await self._run(op))

    async def destroy(self, sid: str) -> None:
        await self._run(self.codec.destroy_op(sid))

    async def all(self) -> dict[str, Session]:
        documents = await self._run(self.codec.all_op())
        return {str(doc["_id"]): self.codec.decode(str(doc["_id"]), doc) for doc in documents}  # type: ignore[misc]

    async def ids(self) -> list[str]:
        return [str(doc["_id"]) for doc in await self._run(self.codec.ids_op())]

    async def length(self) -> int:
        count: int = await self._run(self.codec.length_op())
        return count

    async def clear(self) -> None:
        await self._run(self.codec.clear_op())

    async def close(self) -> None:
        if self._remover is not None:
            self._remover.cancel()
            await asyncio.gather(self._remover, return_exceptions=True)
        if self._owns_client:
            await self.client.close()

    async def __aenter__(self) -> AsyncMongoStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class MongoRecords:
    """Record access to a :class:`MongoStore` (see :mod:`.records`), in ``_id`` order.

    Reads never create the TTL index (so ``doctor`` sees the collection as it is); the
    first write does, as connect-mongo does when it starts.
    """

    def __init__(self, store: MongoStore) -> None:
        self.store = store
        self.codec = store.codec
        # (the cursor the next page starts after, the open server cursor that gives it):
        # paging through one server cursor rather than a query per page
        self._stream: tuple[str | None, Iterator[Any]] | None = None

    def _next_documents(self, cursor: str | None, limit: int) -> list[Any]:
        if self._stream is None or self._stream[0] != cursor:
            op = self.codec.stream_op(cursor, limit)
            # find() only builds the cursor: errors come when it is read, below
            self._stream = (
                cursor,
                getattr(self.store.collection, op.method)(*op.args, **op.kwargs),
            )
        try:
            return list(itertools.islice(self._stream[1], limit))
        except Exception as exc:
            self._stream = None
            raise self.store._errors.wrap(exc, "find") from exc

    def page(self, cursor: str | None, limit: int) -> Page:
        check_limit(limit)
        documents = self._next_documents(cursor, limit)
        records: list[StoredSession] = []
        failed: dict[str, str] = {}
        for document in documents:
            try:
                records.append(self.codec.record_of(document))
            except SessionDecodeError as exc:
                failed[exc.sid] = exc.reason
        last = str(documents[-1]["_id"]) if len(documents) == limit else None
        self._stream = (last, self._stream[1]) if last is not None and self._stream else None
        return Page(records, last, failed)

    def read(self, sid: str) -> StoredSession | None:
        document = self.store._call(self.codec.record_op(sid))
        return None if document is None else self.codec.record_of(document)

    def raw(self, sid: str) -> RawRecord | None:
        from bson import json_util

        document = self.store._call(self.codec.raw_op(sid))
        if document is None:
            return None
        exact = json_util.dumps(document, json_options=json_util.CANONICAL_JSON_OPTIONS)
        return RawRecord(exact, {"document": json.loads(exact)})

    def write(self, records: Sequence[StoredSession]) -> WriteResult:
        from pymongo import UpdateOne
        from pymongo.errors import BulkWriteError

        now = self.codec.clock()
        result, planned = plan_writes(records, lambda r: self.codec.put_op(r, now))
        if not planned:
            return result
        requests = [UpdateOne(*op.args, **op.kwargs) for _, op in planned]
        failed_at: dict[int, str] = {}
        try:
            self.store._run(Op("bulk_write", (requests,), {"ordered": False}))
        except TokenSessionError as exc:
            cause = exc.__cause__
            if not isinstance(cause, BulkWriteError):
                raise
            failed_at = {e["index"]: e.get("errmsg", "") for e in cause.details["writeErrors"]}
        for index, (sid, _) in enumerate(planned):
            if index in failed_at:
                result.failed[sid] = failed_at[index]
            else:
                result.written.append(sid)
        return result

    def delete(self, sid: str) -> bool:
        outcome = self.store._call(self.codec.destroy_op(sid))
        return bool(outcome.deleted_count)

    def purge_expired(self) -> int:
        outcome = self.store._call(self.codec.expired_op())
        return int(outcome.deleted_count)

    def doctor(self) -> list[Finding]:
        indexes = self.store._call(Op("list_indexes")).to_list()
        findings = self.codec.index_findings(indexes)
        findings.append(self.codec.expired_finding(self.store._call(self.codec.expired_count_op())))
        return findings
