"""get+touch in one round trip, leaving what ``get`` then ``touch`` leave; no I/O.

connect-mongo 6.0.0 stores the session as JSON text, so MongoDB cannot compute the expiry
``touch`` would set (express-session's ``resetMaxAge``, then connect-mongo's
``computeExpires``). One ``findAndModify`` with ``get``'s filter sets the expiry the client
expects (now plus the lifetime the previous get+touch of this store saw: in an application
nearly always the same) and returns the document as it was. The client decodes it as ``get``
does and works out the exact expiry with the same ``now``: where it differs, touch's own
update follows; where ``get`` would fail, the document gets its old ``expires`` back. The
session's text is never written. Where one step cannot be exact (``touch_after``,
``timestamps``, encryption, custom or non-JSON serialization, unacknowledged writes) it is
``get`` then ``touch``.
The shells run :meth:`GetAndTouch.flow`.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from ...errors import BackendUnavailableError, TokenSessionError
from ...flows import Flow
from ..base import Session, refreshed
from .format import MongoCodec, Op, touched
from .values import js_date, ms_or_none

__all__ = ["GetAndTouch"]

# 9999-12-31T23:59:59.999Z: a later expectation would be a date no datetime holds
_LAST_MS = 253_402_300_799_999


def _found(document: Any) -> Any:
    return document


class GetAndTouch:
    """What the stores' ``get_and_touch`` sends, as a flow of ``("_run", op)`` calls."""

    def __init__(self) -> None:
        self.expected: float | None = None  # ms from now; None: the codec's ttl

    @staticmethod
    def one_step(codec: MongoCodec) -> bool:
        return (
            codec.touch_after <= 0
            and not codec.timestamps
            and codec.sealer is None
            and codec.stringify
            and codec.serialize is None
            and codec.unserialize is None
            # an unacknowledged findAndModify (w: 0) answers nothing: no document to read
            and (codec.write_operation_options or {}).get("w", 1) != 0
        )

    def flow(self, codec: MongoCodec, sid: str) -> Flow[Session | None]:
        """``get(sid)``, and the session found touched as ``touch(sid, refreshed(session,
        now))`` would."""
        if not self.one_step(codec):
            session: Session | None = yield ("_run", codec.get_op(sid))
            if session is not None:
                op = codec.touch_op(sid, refreshed(session, codec.clock()))
                if op is not None:
                    yield ("_run", op)
            return session
        now = codec.clock()
        storage_id = codec.storage_id(sid)
        ahead = codec.ttl * 1000 if self.expected is None else self.expected
        predicted = js_date(min(now + ahead, _LAST_MS))
        query = {"_id": storage_id, **codec.live_at(now)}
        update = {"$set": {"expires": predicted}}
        document = yield ("_run", Op("find_one_and_update", (query, update), done=_found))
        if document is None:
            return None
        try:
            found = codec.decode(sid, document)
            assert found is not None  # decode gives None for no document only
            exact = codec.expires_at(refreshed(found, now), now)
        except Exception:  # get (or touch) fails: the document keeps its expiry
            yield ("_run", _restore(storage_id, document))
            raise
        exact_ms = ms_or_none(exact)
        if exact_ms != ms_or_none(predicted):
            filter_ = {"_id": storage_id}
            op = Op(
                "update_one", (filter_, {"$set": {"expires": exact}}), done=partial(touched, sid)
            )
            try:
                yield ("_run", op)
            except BackendUnavailableError:
                raise
            except TokenSessionError:  # touch's own update fails alike: its expiry back
                yield ("_run", _restore(storage_id, document))
                raise
        if exact_ms is not None and now < exact_ms <= _LAST_MS:
            self.expected = exact_ms - now
        return found


def _restore(storage_id: Any, document: Any) -> Op[None]:
    """The ``expires`` the document had back (none: none)."""
    if "expires" in document:
        update: dict[str, Any] = {"$set": {"expires": document["expires"]}}
    else:
        update = {"$unset": {"expires": ""}}
    return Op("update_one", ({"_id": storage_id}, update), done=_nothing)


def _nothing(result: Any) -> None:
    return None
