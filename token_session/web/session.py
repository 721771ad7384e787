"""The session a request sees: express-session's ``req.session`` as a mutable mapping."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from ..compat.cookie import Cookie
from ..compat.jsjson import dumps
from ..errors import InvalidArgumentError, SessionDecodeError, TokenSessionError
from ..stores.base import Session
from .request import Request

__all__ = ["RESERVED_KEYS", "ExpressSession", "session_hash"]

# Names `new Session(req, data)` skips when it copies stored data (`if (!(prop in this))`):
# its own id and req, its methods, and Object.prototype's. Node never loads these keys.
RESERVED_KEYS = frozenset(
    {
        "id",
        "req",
        "touch",
        "resetMaxAge",
        "save",
        "reload",
        "destroy",
        "regenerate",
        "constructor",
        "hasOwnProperty",
        "isPrototypeOf",
        "propertyIsEnumerable",
        "toLocaleString",
        "toString",
        "valueOf",
        "__proto__",
        "__defineGetter__",
        "__defineSetter__",
        "__lookupGetter__",
        "__lookupSetter__",
    }
)
_COOKIE = "cookie"
_NOT_DATA = RESERVED_KEYS | {_COOKIE}


def session_hash(data: Mapping[str, Any]) -> str:
    """express-session's ``hash(sess)``: SHA-1 of the session's JSON without its cookie."""
    try:
        text = dumps({key: value for key, value in data.items() if key != _COOKIE})
    except (TypeError, ValueError) as exc:  # ValueError: nested deeper than dumps writes
        raise InvalidArgumentError(f"session cannot be stored: {exc}") from None
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


class ExpressSession(dict[str, Any]):
    """A request's session: its data as a dict (the ``cookie`` key excepted), its ``id``,
    its :class:`~token_session.compat.Cookie` as ``cookie``, :meth:`regenerate` and
    :meth:`destroy`.

    The store is written when the response starts, as express-session does when it ends:
    :meth:`regenerate` and :meth:`destroy` take effect then, before anything is saved.
    The position of ``cookie`` among the keys is kept, so the stored JSON has Node's key order.
    """

    def __init__(
        self,
        request: Request,
        cookie_id: str | None,
        new_cookie: Callable[[], Cookie],
        genid: Callable[[], str],
    ) -> None:
        super().__init__()
        self.request = request
        self.cookie_id = cookie_id  # the verified id the request carried
        self._new_cookie = new_cookie
        self._genid = genid
        self._order: list[str] = [_COOKIE]  # where "cookie" sits among the keys
        self.id = ""
        self.cookie = new_cookie()
        self.is_new = True
        self.destroyed = False
        self.original_id = ""
        self.original_hash = ""
        self.saved_hash: str | None = None
        self._to_destroy: list[str] = []

    # -- what express-session does to req.session ---------------------------------------

    def generate(self) -> None:
        """``store.generate`` plus the middleware's bookkeeping: a new, empty session."""
        self._fresh()
        self.original_id = self.id
        self.original_hash = session_hash(self)

    def inflate(self, sid: str, stored: Session, clock: Callable[[], int], keep_hash: bool) -> None:
        """``store.createSession`` of a stored session and the middleware's bookkeeping."""
        cookie = stored.get(_COOKIE)
        if type(cookie) is not dict and not isinstance(cookie, Mapping):
            # express-session fails the request on such a record (sess.cookie.expires throws)
            raise SessionDecodeError(sid, "the session has no cookie object")
        try:
            self.cookie = Cookie.from_json(cookie, clock=clock)
        except TypeError as exc:  # new Cookie() throws on these too
            raise SessionDecodeError(sid, f"bad cookie: {exc}") from None
        self.id = sid
        self.is_new = False
        super().clear()
        super().update((k, v) for k, v in stored.items() if k not in _NOT_DATA)
        self._order = [key for key in stored if key not in RESERVED_KEYS]
        self.original_id = sid
        # hashed from the stored object, reserved keys included, as inflate() does
        self.original_hash = session_hash(stored)
        if keep_hash:
            self.saved_hash = self.original_hash

    def _fresh(self) -> None:
        self.id = self._genid()
        self.cookie = self._new_cookie()
        self.is_new = True
        super().clear()
        self._order = [_COOKIE]

    def regenerate(self) -> None:
        """express-session's ``req.session.regenerate``: the current id is destroyed and
        this becomes a new, empty session with a new id and a fresh cookie."""
        if not self.destroyed:
            self._to_destroy.append(self.id)
        self.destroyed = False
        self._fresh()

    def destroy(self) -> None:
        """express-session's ``req.session.destroy``: the stored session is deleted and no
        cookie is sent. The data is emptied; writing to it then raises."""
        if not self.destroyed:
            self._to_destroy.append(self.id)
            self.destroyed = True
            super().clear()

    def take_destroyed(self) -> list[str]:
        """The ids to destroy in the store, once."""
        ids, self._to_destroy = self._to_destroy, []
        return ids

    def is_modified(self) -> bool:
        return self.original_id != self.id or self.original_hash != session_hash(self)

    def is_saved(self) -> bool:
        return self.original_id == self.id and self.saved_hash == session_hash(self)

    def mark_saved(self) -> None:
        self.saved_hash = session_hash(self)

    def to_store(self) -> Session:
        """The session as express-session hands it to the store: JSON key order kept."""
        stored: Session = {}
        for key in self._order:
            if key == _COOKIE:
                stored[_COOKIE] = self.cookie.to_json()
            elif key in self:
                stored[key] = self[key]
        for key, value in self.items():
            stored.setdefault(key, value)
        return stored

    # -- the dict, guarded ---------------------------------------------------------------

    def _check_write(self, key: object) -> None:
        if self.destroyed:
            raise TokenSessionError("the session was destroyed; regenerate() starts a new one")
        if not isinstance(key, str):
            raise InvalidArgumentError(f"session keys must be str, not {type(key).__name__}")
        if key == _COOKIE:
            raise InvalidArgumentError("the session's cookie is session.cookie")
        if key in RESERVED_KEYS:
            raise InvalidArgumentError(f"express-session never loads a key named {key!r}")

    def __setitem__(self, key: str, value: Any) -> None:
        self._check_write(key)
        if key not in self:
            self._order.append(key)
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._order.remove(key)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def pop(self, key: str, *default: Any) -> Any:
        if key in self:
            value = self[key]
            del self[key]
            return value
        if default:
            return default[0]
        raise KeyError(key)

    def popitem(self) -> tuple[str, Any]:
        key = next(reversed(self))
        return key, self.pop(key)

    def clear(self) -> None:
        super().clear()
        self._order = [_COOKIE]

    def __ior__(self, other: Any) -> ExpressSession:  # type: ignore[override,misc]
        self.update(other)
        return self

    def __repr__(self) -> str:
        return f"ExpressSession(id={self.id!r}, data={dict(self)!r})"
