"""What the blocking and the asyncio store hold alike: the codec, the collection, the errors."""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from ...errors import BackendUnavailableError, InvalidArgumentError, TokenSessionError
from .format import MongoCodec, Op, client_options, split_options

__all__ = ["MongoShell"]

# the package's logger, as when the stores were one module
log = logging.getLogger(__package__)

_Shell = TypeVar("_Shell", bound="MongoShell")


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

        # pymongo's ConnectionFailure covers AutoReconnect, NetworkTimeout and
        # ServerSelectionTimeoutError
        self.unavailable = errors.ConnectionFailure
        self.invalid = InvalidDocument

    def wrap(self, exc: BaseException, method: str) -> TokenSessionError:
        if isinstance(exc, self.invalid):  # nothing was sent
            return InvalidArgumentError(f"session cannot be stored in MongoDB: {exc}")
        if isinstance(exc, self.unavailable):
            return BackendUnavailableError(f"MongoDB unavailable during {method}: {exc}")
        return TokenSessionError(f"MongoDB {method} failed: {exc}")


class MongoShell:
    """The codec and the collection; a shell's ``_call`` runs an :class:`Op` on it (the one
    place each operation runs), and ``_run`` does so after what connect-mongo does when it
    starts (:meth:`_starting`)."""

    def __init__(
        self, client: Any, *, db_name: str | None = None, owns_client: bool = False, **options: Any
    ) -> None:
        codec_options, unknown = split_options(options)
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
        store_options, client_kwargs = split_options(options)
        db_name = client_kwargs.pop("db_name", None)
        client = client_class(url, **client_options(client_kwargs, timeout))
        return cls(client, db_name=db_name, owns_client=True, **store_options)

    def _starting(self) -> Op[Any] | None:
        """What connect-mongo's ``setAutoRemove`` does, on first use: the operation to run
        (the TTL index for ``native``), and the interval clean-up started (``interval``)."""
        if self._ready:
            return None
        self._ready = True
        if self.codec.auto_remove == "interval":
            self._start_remover()
        return self.codec.index_op() if self.codec.auto_remove == "native" else None

    def _start_remover(self) -> None:
        raise NotImplementedError

    @staticmethod
    def _removal_failed(exc: TokenSessionError) -> None:
        log.warning("removing expired sessions failed: %s", exc)
