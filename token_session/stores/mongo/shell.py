"""What the blocking and the asyncio store hold alike: the codec, the collection, the errors."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, TypeVar

from ...errors import BackendUnavailableError, InvalidArgumentError, TokenSessionError
from .format import MongoCodec, Op, log
from .options import DEFAULT_TIMEOUT, check_timeout, client_options, split_options, split_url

__all__ = ["MongoShell"]


_Shell = TypeVar("_Shell", bound="MongoShell")


def _collection(client: Any, db_name: str | None, codec: MongoCodec) -> Any:
    from bson.codec_options import DatetimeConversion
    from pymongo import WriteConcern
    from pymongo.errors import ConfigurationError, InvalidName

    try:
        database = client[db_name] if db_name else client.get_default_database(default="test")
        collection = database[codec.collection_name]
    except (InvalidName, ConfigurationError, TypeError) as exc:
        raise InvalidArgumentError(f"bad MongoDB database or collection name: {exc}") from exc
    # a JS Date past year 9999 (the Node driver stores any) reads back as a DatetimeMS,
    # where pymongo's default would fail the whole read
    options: dict[str, Any] = {
        "codec_options": collection.codec_options.with_options(
            datetime_conversion=DatetimeConversion.DATETIME_AUTO
        )
    }
    if codec.write_operation_options:
        try:
            options["write_concern"] = WriteConcern(**codec.write_operation_options)
        except (ConfigurationError, TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"bad write_operation_options: {exc}") from exc
    return collection.with_options(**options)


# OperationFailure codes that mean the credentials, not the request, are wrong
_AUTH_CODES = frozenset({13, 18})  # Unauthorized, AuthenticationFailed


class _Errors:
    def __init__(self, timeout: float) -> None:
        from bson.errors import InvalidDocument
        from pymongo import errors

        # pymongo's ConnectionFailure covers AutoReconnect, NetworkTimeout and
        # ServerSelectionTimeoutError
        self.unavailable = errors.ConnectionFailure
        self.failure = errors.OperationFailure
        self.invalid = InvalidDocument
        self.too_large = errors.DocumentTooLarge
        self.timeout = timeout

    def wrap(self, exc: BaseException, method: str) -> TokenSessionError:
        if isinstance(exc, self.too_large):  # nothing was sent
            return InvalidArgumentError(
                f"session too large for MongoDB, whose documents hold at most 16 MB: {exc}"
            )
        if isinstance(exc, self.invalid):  # nothing was sent
            return InvalidArgumentError(f"session cannot be stored in MongoDB: {exc}")
        if isinstance(exc, RecursionError):  # pymongo encoding a serialize function's value
            return InvalidArgumentError(f"session cannot be stored in MongoDB: {exc}")
        # pymongo's client-side operation timeout, or the asyncio store's own
        if getattr(exc, "timeout", False) or isinstance(exc, TimeoutError):
            return BackendUnavailableError(
                f"MongoDB did not complete {method} within the store's timeout "
                f"({self.timeout:g} s): is the server up and answering? ({exc})"
            )
        if isinstance(exc, self.unavailable):
            return BackendUnavailableError(f"MongoDB unavailable during {method}: {exc}")
        if isinstance(exc, self.failure) and exc.code in _AUTH_CODES:
            return BackendUnavailableError(
                f"MongoDB refused {method}: check the URL's user, password and authSource ({exc})"
            )
        return TokenSessionError(f"MongoDB {method} failed: {exc}")


class MongoShell:
    """The codec and the collection; a shell's ``_call`` runs an :class:`Op` on it (the one
    place each operation runs), and ``_run`` does so after what connect-mongo does when it
    starts (:meth:`_starting`)."""

    def __init__(
        self,
        client: Any,
        *,
        db_name: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        owns_client: bool = False,
        **options: Any,
    ) -> None:
        from pymongo import timeout as limit

        self.timeout = check_timeout(timeout)
        self._limit = limit
        codec_options, unknown = split_options(options)
        if unknown:
            raise InvalidArgumentError(
                f"unknown MongoStore option(s): {', '.join(sorted(unknown))}"
            )
        self.codec = MongoCodec(**codec_options)
        self.client = client
        self.collection = _collection(client, db_name, self.codec)
        self._owns_client = owns_client
        self._errors = _Errors(self.timeout)
        self._ready = False

    @classmethod
    def _from_url(
        cls: type[_Shell],
        client_class: Any,
        url: str,
        timeout: float | None,
        options: dict[str, Any],
    ) -> _Shell:
        client_url, url_options, timeout_ms = split_url(url)
        given = {**url_options, **options}  # a keyword wins over the URL
        if timeout is not None:
            given["timeout"] = timeout
        seconds = check_timeout(given.pop("timeout", timeout_ms or DEFAULT_TIMEOUT))
        store_options, client_kwargs = split_options(given)
        db_name = client_kwargs.pop("db_name", None)
        try:
            client = client_class(client_url, **client_options(client_kwargs, seconds))
        except Exception as exc:  # pymongo's InvalidURI, ConfigurationError, ValueError
            raise InvalidArgumentError(f"bad MongoDB URL or client option: {exc}") from exc
        try:
            return cls(client, db_name=db_name, timeout=seconds, owns_client=True, **store_options)
        except BaseException:
            cls._discard(client)
            raise

    @staticmethod
    def _discard(client: Any) -> None:
        """Release a client made for a store that could not be made (the asyncio client
        connects on first use only: nothing to release)."""

    def _deadline(self) -> AbstractContextManager[None]:
        """pymongo's client-side operation timeout: every call inside shares one deadline
        (a nested one only shortens it)."""
        return self._limit(self.timeout)

    def _starting(self) -> Op[Any] | None:
        """What connect-mongo's ``setAutoRemove`` does, on first use: the operation to run
        (the TTL index for ``native``, run again on the next call until it succeeded), and
        the interval clean-up started (``interval``)."""
        if self._ready:
            return None
        if self.codec.auto_remove == "native":
            index = self.codec.index_op()
            return Op(index.method, index.args, index.kwargs, done=self._started)
        self._ready = True
        if self.codec.auto_remove == "interval":
            self._start_remover()
        return None

    def _started(self, result: Any) -> None:
        self._ready = True

    def _start_remover(self) -> None:
        raise NotImplementedError

    @staticmethod
    def _removal_failed(exc: TokenSessionError) -> None:
        log.warning("removing expired sessions failed: %s", exc)
