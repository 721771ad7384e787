"""connect-mongo's documents as rules and data: what is stored, found by which filter, with
which expiry.

:class:`MongoCodec` holds the rules and does no I/O: the filter, update and options of each
operation (an :class:`Op`), and how a stored document becomes a session (each ``Op``'s
``done``). The shells (:mod:`.store`, :mod:`.aio`) only run them; :mod:`.values` maps JS values
to the BSON the Node driver writes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, TypeVar

from ...compat.cookie import expires_ms, now_ms
from ...compat.jsjson import loads
from ...errors import InvalidArgumentError, SessionDecodeError, SessionNotFoundError
from ..base import Session, check_sid, decode_session, encode_session
from ..records import Finding, StoredSession
from .findings import expired_finding, index_findings, sample_finding
from .sealing import Sealer, sealer_of
from .values import default_serialize, js_date, ms_of, ms_or_none, plain

__all__ = ["AUTO_REMOVE", "CURSORS", "MongoCodec", "Op"]

# the package's logger, as when the stores were one module
log = logging.getLogger(__package__)

AUTO_REMOVE = ("native", "interval", "disabled")
# the methods that give a cursor, which the shells read into a list
CURSORS = frozenset({"find", "list_indexes"})
_ENCRYPTED = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
T = TypeVar("T")


def _as_is(result: Any) -> Any:
    return result


def _nothing(result: Any) -> None:
    return None


def touched(sid: str, result: Any) -> None:
    # an unacknowledged write (w: 0) counts nothing: the Node driver's matchedCount is
    # undefined there, so connect-mongo 6.0.0 reports no missing session
    if (
        result.acknowledged and result.matched_count == 0
    ):  # connect-mongo: "Unable to find the session to touch"
        raise SessionNotFoundError(sid)


def _deleted(result: Any) -> bool:
    return bool(result.deleted_count)


def _deleted_count(result: Any) -> int:
    return int(result.deleted_count)


def _ids(documents: list[Mapping[str, Any]]) -> list[str]:
    return [str(doc["_id"]) for doc in documents]


@dataclass(frozen=True)
class Op(Generic[T]):
    """A call on a pymongo collection: ``getattr(collection, method)(*args, **kwargs)``.

    ``done`` makes what the call gave (a ``find`` cursor read into a list) the operation's
    result: the store method's return value, or the error it raises.
    """

    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    done: Callable[[Any], T] = field(default=_as_is, compare=False, repr=False)


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
    crypto: Mapping[str, Any] | None = field(default=None, repr=False)  # kruptein's options
    crypto_adapter: Any = field(default=None, repr=False)  # 6.0.0's cryptoAdapter (.sealing)
    clock: Callable[[], int] = now_ms
    sealer: Sealer | None = field(init=False, default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.auto_remove not in AUTO_REMOVE:
            raise InvalidArgumentError(f"auto_remove must be one of {', '.join(AUTO_REMOVE)}")
        if self.auto_remove_interval and self.auto_remove_interval > 71582:
            # connect-mongo's assertion: the interval is in minutes, not seconds or ms
            raise InvalidArgumentError("auto_remove_interval is in minutes and at most 71582")
        if not isinstance(self.collection_name, str) or not self.collection_name:
            raise InvalidArgumentError("collection_name must be a non-empty str")
        custom = self.serialize is not None or self.unserialize is not None
        sealer = sealer_of(
            self.crypto, self.crypto_adapter, stringify=self.stringify, custom=custom
        )
        object.__setattr__(self, "sealer", sealer)

    # -- the session <-> document mapping (connect-mongo computeTransformFunctions) --

    def encode(self, session: Mapping[str, Any]) -> Any:
        if self.serialize is not None or self.unserialize is not None:
            return self._sealed((self.serialize or default_serialize)(session))
        if self.sealer is not None:  # what JSON.stringify makes of either form
            return self.sealer.seal(encode_session(session))
        if not self.stringify:
            try:
                return default_serialize(session)
            except RecursionError:
                raise InvalidArgumentError(
                    "session cannot be stored: nested too deeply for a BSON document "
                    "(MongoDB stores at most 100 levels)"
                ) from None
        return encode_session(session)

    def decode(self, sid: str, document: Mapping[str, Any] | None) -> Session | None:
        if document is None:
            return None
        stored = document.get("session")
        if self.sealer is not None and isinstance(stored, str):
            stored = self.sealer.open(sid, stored)  # the JSON text, or (not stringify) a value
        elif self.sealer is not None and self.stringify:
            raise SessionDecodeError(sid, "not encrypted, though the store is set to decrypt")
        if self.serialize is not None or self.unserialize is not None:
            try:
                value = (self.unserialize or (lambda x: x))(stored)
            except Exception as exc:
                raise SessionDecodeError(sid, f"unserialize failed: {exc!r}") from exc
        elif isinstance(stored, str) and not self.stringify:
            raise self._encrypted_or_corrupt(sid, stored)
        elif not self.stringify:
            try:
                value = plain(stored)
            except RecursionError:
                raise SessionDecodeError(sid, "nested too deeply to read") from None
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
            value["lastModified"] = plain(document["lastModified"])
        return value

    def _encrypted_or_corrupt(self, sid: str, stored: str) -> SessionDecodeError:
        if self.sealer is None and _ENCRYPTED.fullmatch(stored):
            return SessionDecodeError(
                sid,
                "encrypted (connect-mongo's crypto or cryptoAdapter option): give the store "
                "the same crypto= or crypto_adapter=",
            )
        return SessionDecodeError(sid, "session is not JSON")

    def _sealed(self, value: Any) -> Any:
        return value if self.sealer is None else self.sealer.seal(value)

    # -- operations --

    def storage_id(self, sid: str) -> Any:
        check_sid(sid)
        return self.transform_id(sid) if self.transform_id is not None else sid

    def live(self) -> dict[str, Any]:
        return self.live_at(self.clock())

    def live_at(self, now: int) -> dict[str, Any]:
        at = js_date(now)
        return {"$or": [{"expires": {"$exists": False}}, {"expires": {"$gt": at}}]}

    def expires(self, session: Mapping[str, Any]) -> Any:
        """connect-mongo ``computeExpires``: ``new Date(cookie.expires)`` or now + ttl, as
        the BSON date the Node driver writes (see :func:`.values.js_date`)."""
        return self.expires_at(session, self.clock())

    def expires_at(self, session: Mapping[str, Any], now: int) -> Any:
        """:meth:`expires` at the time ``now``."""
        try:
            expiry = expires_ms(session)
        except TypeError as exc:  # a naive datetime
            raise InvalidArgumentError(f"cookie.expires: {exc}") from None
        if expiry is None:
            return js_date(now + self.ttl * 1000)
        return js_date(expiry)  # an Invalid Date is stored as 0: the session has expired

    def get_op(self, sid: str) -> Op[Session | None]:
        query = {"_id": self.storage_id(sid), **self.live()}
        return Op("find_one", (query,), done=partial(self.decode, sid))

    def set_op(self, sid: str, session: Mapping[str, Any]) -> Op[None]:
        if type(session) is not dict and not isinstance(session, Mapping):
            raise InvalidArgumentError(f"session must be a dict, not {type(session).__name__}")
        storage_id = self.storage_id(sid)
        if self.touch_after > 0 and session.get("lastModified"):
            session = {k: v for k, v in session.items() if k != "lastModified"}
        stored = self.encode(session)
        return self._upsert(storage_id, stored, self.expires(session))

    def _upsert(self, storage_id: Any, stored: Any, expires: Any) -> Op[None]:
        """connect-mongo's ``set``; a document without ``expires`` never expires."""
        fields: dict[str, Any] = {"_id": storage_id, "session": stored}
        if expires is not None:
            fields["expires"] = expires
        if self.touch_after > 0:
            fields["lastModified"] = js_date(self.clock())
        update: dict[str, Any] = {"$set": fields}
        if expires is None:
            update["$unset"] = {"expires": ""}
        if self.timestamps:
            update["$setOnInsert"] = {"createdAt": js_date(self.clock())}
            update["$currentDate"] = {"updatedAt": True}
        return Op("update_one", ({"_id": storage_id}, update), {"upsert": True}, _nothing)

    def touch_op(self, sid: str, session: Mapping[str, Any]) -> Op[None] | None:
        """None when ``touch_after`` says the session was written too recently."""
        storage_id = self.storage_id(sid)
        if type(session) is not dict and not isinstance(session, Mapping):
            raise InvalidArgumentError(f"session must be a dict, not {type(session).__name__}")
        fields: dict[str, Any] = {}
        now = self.clock()
        last_modified = ms_of(session.get("lastModified"))
        if self.touch_after > 0 and last_modified > 0:
            if now - last_modified < self.touch_after * 1000:
                return None
            fields["lastModified"] = js_date(now)
        fields["expires"] = self.expires(session)
        update: dict[str, Any] = {"$set": fields}
        if self.timestamps:
            update["$currentDate"] = {"updatedAt": True}
        return Op("update_one", ({"_id": storage_id}, update), done=partial(touched, sid))

    def destroy_op(self, sid: str) -> Op[bool]:
        """Whether a document was deleted."""
        return Op("delete_one", ({"_id": self.storage_id(sid)},), done=_deleted)

    def all_op(self) -> Op[dict[str, Session]]:
        return Op("find", (self.live(),), done=self._sessions)

    def _sessions(self, documents: list[Mapping[str, Any]]) -> dict[str, Session]:
        """The sessions ``all()`` gives: one that cannot be decoded is skipped (and left as
        it is), with a warning naming it, as every store does."""
        sessions: dict[str, Session] = {}
        for document in documents:
            sid = str(document["_id"])
            try:
                session = self.decode(sid, document)
            except SessionDecodeError as exc:
                log.warning("all(): %s", exc)
                continue
            if session is not None:
                sessions[sid] = session
        return sessions

    def ids_op(self) -> Op[list[str]]:
        return Op("find", (self.live(), {"_id": 1}), done=_ids)

    def length_op(self) -> Op[int]:
        # connect-mongo counts every document, expired ones not yet removed too; we count
        # the sessions get() would return, as ids() and all() list them
        return Op("count_documents", (self.live(),), done=int)

    def clear_op(self) -> Op[None]:
        return Op("delete_many", ({},), done=_nothing)

    def expired_op(self) -> Op[int]:
        """How many expired documents were deleted."""
        expired = {"expires": {"$lt": js_date(self.clock())}}
        return Op("delete_many", (expired,), done=_deleted_count)

    def index_op(self) -> Op[Any]:
        """The TTL index connect-mongo's ``autoRemove: "native"`` creates."""
        return Op(
            "create_index", ([("expires", 1)],), {"background": True, "expireAfterSeconds": 0}
        )

    # -- records: the stored text and expiry as they are (the token-session command) --

    def _stores_text(self) -> bool:
        return self.stringify and self.serialize is None and self.unserialize is None

    def stream_op(self, after: str | None, batch_size: int) -> Op[Any]:
        """The live documents after ``after`` in ``_id`` order, read by one cursor."""
        query = self.live()
        if after is not None:
            query = {"$and": [query, {"_id": {"$gt": after}}]}
        projection = {"session": 1, "expires": 1}
        return Op("find", (query, projection), {"sort": [("_id", 1)], "batch_size": batch_size})

    def record_op(self, sid: str) -> Op[StoredSession | None]:
        query = {"_id": self.storage_id(sid), **self.live()}
        return Op("find_one", (query,), done=self._record_or_none)

    def _record_or_none(self, document: Mapping[str, Any] | None) -> StoredSession | None:
        return None if document is None else self.record_of(document)

    def raw_op(self, sid: str) -> Op[Any]:
        return Op("find_one", ({"_id": self.storage_id(sid)},))

    def record_of(self, document: Mapping[str, Any]) -> StoredSession:
        """A stored document as a record: its JSON text as is (re-encoded where the store
        keeps documents, not text); SessionDecodeError if it holds no session."""
        sid = str(document["_id"])
        stored = document.get("session")
        if self._stores_text() and isinstance(stored, str):
            text = stored if self.sealer is None else self.sealer.open(sid, stored)
        else:
            session = self.decode(sid, document)
            if session is None:
                raise SessionDecodeError(sid, "no session")
            text = encode_session(session)
        expires = document.get("expires")
        return StoredSession(sid, text, ms_or_none(expires))

    def put_op(self, record: StoredSession, now: int) -> Op[None] | None:
        """connect-mongo's upsert of the text as is, expiring when the record does; None
        when it has expired already."""
        if record.expires_ms is not None and record.expires_ms <= now:
            return None
        storage_id = self.storage_id(record.sid)
        if self._stores_text():
            stored: Any = self._sealed(record.text)
        else:
            stored = self.encode(decode_session(record.sid, record.text))
        expires = None if record.expires_ms is None else js_date(record.expires_ms)
        return self._upsert(storage_id, stored, expires)

    def expired_count_op(self) -> Op[int]:
        return Op("count_documents", ({"expires": {"$lt": js_date(self.clock())}},), done=int)

    def index_findings(self, indexes: Sequence[Mapping[str, Any]]) -> list[Finding]:
        """Whether ``list_indexes`` shows the TTL index on ``expires`` connect-mongo relies on."""
        return index_findings(self.collection_name, self.auto_remove, indexes)

    expired_finding = staticmethod(expired_finding)

    def sample_op(self) -> Op[Finding]:
        """Whether the first live sessions decode, with the store's encryption or without."""
        return Op("find", (self.live(),), {"limit": 20}, done=self._sample_finding)

    def _sample_finding(self, documents: list[Mapping[str, Any]]) -> Finding:
        failures = []
        for document in documents:
            try:
                self.decode(str(document["_id"]), document)
            except SessionDecodeError as exc:
                failures.append(exc.reason)
        return sample_finding(self.sealer is not None, len(documents), failures)
