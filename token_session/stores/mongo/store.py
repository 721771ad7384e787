"""The blocking store: pymongo's ``MongoClient`` running :class:`.MongoCodec`'s operations."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, TypeVar

from ...errors import TokenSessionError
from ...flows import run
from ..base import Session
from .format import CURSORS as _CURSORS
from .format import Op
from .onestep import GetAndTouch
from .shell import MongoShell

__all__ = ["MongoStore"]

T = TypeVar("T")


class MongoStore(MongoShell):
    """connect-mongo over pymongo: ``MongoStore(client, db_name=None, collection_name=...)``.

    ``client`` is a ``MongoClient`` (or use :meth:`from_url`). Options keep connect-mongo's
    names in snake_case: ``db_name``, ``collection_name``, ``ttl`` (seconds), ``auto_remove``
    (``native`` / ``interval`` / ``disabled``), ``auto_remove_interval`` (minutes),
    ``touch_after`` (seconds), ``stringify``, ``serialize`` / ``unserialize``,
    ``timestamps``, ``transform_id``, ``write_operation_options``, ``crypto`` (kruptein's
    options, ``{"secret": ...}``) or ``crypto_adapter`` (``create_webcrypto_adapter(...)``,
    ``create_kruptein_adapter(...)`` or an object with ``encrypt`` and ``decrypt``; see
    :mod:`.sealing`), and ``timeout`` (seconds, 5 by default): each operation's bound, end to
    end (see :mod:`.options`).
    """

    def __init__(self, client: Any, **options: Any) -> None:
        super().__init__(client, **options)
        self._stop = threading.Event()
        self._remover: threading.Thread | None = None
        self._get_and_touch = GetAndTouch()

    @classmethod
    def from_url(cls, url: str, *, timeout: float | None = None, **options: Any) -> MongoStore:
        """A ``mongodb://`` URL; its database is used unless ``db_name`` says otherwise.
        The store's options may also be in its query (``?collection_name=s&timeout=2``)."""
        from pymongo import MongoClient

        return cls._from_url(MongoClient, url, timeout, options)

    @staticmethod
    def _discard(client: Any) -> None:
        client.close()

    def _run(self, op: Op[T]) -> T:
        starting = self._starting()
        if starting is None:
            return self._call(op)
        with self._deadline():  # one deadline for both
            self._call(starting)
            return self._call(op)

    def _call(self, op: Op[T]) -> T:
        try:
            with self._deadline():
                result = getattr(self.collection, op.method)(*op.args, **op.kwargs)
                result = result.to_list() if op.method in _CURSORS else result
        except Exception as exc:
            raise self._errors.wrap(exc, op.method) from exc
        return op.done(result)

    def _start_remover(self) -> None:
        self._remover = threading.Thread(
            target=self._remove_expired, name="token-session-mongo-autoremove", daemon=True
        )
        self._remover.start()

    def _remove_expired(self) -> None:
        while not self._stop.wait(self.codec.auto_remove_interval * 60):
            try:
                self._call(self.codec.expired_op())
            except TokenSessionError as exc:
                self._removal_failed(exc)

    def get(self, sid: str) -> Session | None:
        return self._run(self.codec.get_op(sid))

    def set(self, sid: str, session: Mapping[str, Any]) -> None:
        self._run(self.codec.set_op(sid, session))

    def touch(self, sid: str, session: Mapping[str, Any]) -> None:
        op = self.codec.touch_op(sid, session)
        if op is not None:
            self._run(op)

    def get_and_touch(self, sid: str) -> Session | None:
        """``get`` then ``touch`` of the session restarted, in one round trip where it can
        be (see :mod:`.onestep`)."""
        return run(self, self._get_and_touch.flow(self.codec, sid))

    def destroy(self, sid: str) -> None:
        self._run(self.codec.destroy_op(sid))

    def all(self) -> dict[str, Session]:
        return self._run(self.codec.all_op())

    def ids(self) -> list[str]:
        return self._run(self.codec.ids_op())

    def length(self) -> int:
        return self._run(self.codec.length_op())

    def clear(self) -> None:
        self._run(self.codec.clear_op())

    def close(self) -> None:
        """Stop the interval clean-up, and close the client if this store made it."""
        self._stop.set()
        if self._remover is not None:
            self._remover.join(timeout=10)
        if self._owns_client:
            with self._deadline():  # its endSessions goodbye may meet a stalled server
                self.client.close()

    def __enter__(self) -> MongoStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
