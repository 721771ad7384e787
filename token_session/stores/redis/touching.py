"""get+touch in one round trip, leaving what ``get`` then ``touch`` leave.

``touch`` after express-session's (:func:`~token_session.stores.base.refreshed`) sets the
expiry connect-redis 9.0.0 computes from the session, which only the client reads exactly as
it does (JSON.parse's rules, JS dates). So the script of :data:`SCRIPT` GETs the value, notes
its PTTL and sets the expiry the client expects: the one the previous get+touch of this store
set, which in an application is nearly always the same (every session has the cookie's
``originalMaxAge``, or none). The client then decodes the value and works out the expiry
``touch`` would set; where it differs it sends that EXPIRE, and where ``get`` finds nothing
to touch (a value that is no session) it gives the key back its PTTL. One round trip when the
expectation holds, two (as before) when it does not; the stored bytes are never written.

It goes by EVALSHA (EVAL when Redis has not seen the script, which loads it); where the
server refuses scripts (ACLs, a proxy, a server without Lua) get+touch goes back to GET then
EXPIRE for good. No I/O: the shells run :meth:`GetAndTouch.flow` (the asyncio one its first
step without a generator, where a tenth of the CPU per call went).
"""

from __future__ import annotations

import hashlib
import logging
import math
from typing import Any

from ...errors import BackendUnavailableError, TokenSessionError
from ...flows import Flow
from ..base import Session, refreshed
from .format import Command, RedisCodec

__all__ = ["SCRIPT", "SHA", "UNSETTLED", "GetAndTouch"]

logger = logging.getLogger(__package__)

# KEYS[1]: the session's key; ARGV[1]: EXPIRE's seconds (> 0: EXPIRE never creates a key,
# and a positive one never deletes it, so the client can still set the right one). Returns
# nil for no key, else {value, its PTTL before}.
SCRIPT = """\
local v = redis.call('GET', KEYS[1])
if not v then return v end
local before = redis.call('PTTL', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return {v, before}
"""
SHA = hashlib.sha1(SCRIPT.encode()).hexdigest()

# NOSCRIPT's text as Redis and redis-py (which drops the code) give it
_NO_SCRIPT = "No matching script"
# failures that pass: scripts are refused under maxmemory or while another one runs, and an
# expiry past Redis's range fails the script as it fails touch's EXPIRE
_FOR_NOW = ("maxmemory", "BUSY", "invalid expire time")
_BIG = 10**15
# GetAndTouch.settled's "not yet"
UNSETTLED = object()


class GetAndTouch:
    """What the stores' ``get_and_touch`` sends, as a flow of ``("_run", command)`` calls."""

    def __init__(self, codec: RedisCodec, decoded: bool = False) -> None:
        self.codec = codec
        # touch sends nothing under disable_touch or disable_ttl: the GET is all there is.
        # A client that decodes replies (decode_responses) fails on a value that is not
        # UTF-8 once the script has touched it, before it can give the key its PTTL back.
        self.scripted = not (codec.disable_touch or codec.disable_ttl or decoded)
        self.expected = 1
        # a ttl function is called as touch calls it, once per touch
        ttl = codec.ttl
        self.plain_ttl = not callable(ttl)
        if not callable(ttl) and math.isfinite(ttl) and ttl >= 1:
            self.expected = int(ttl)  # a session without cookie.expires

    def expire_of(self, sid: str, session: Session) -> int:
        """The seconds of touch's EXPIRE for ``session`` restarted now."""
        cookie = session.get("cookie")
        if type(cookie) is dict and self.plain_ttl:
            life = cookie.get("originalMaxAge")
            # refreshed's expires is now + life, which connect-redis's getTTL reads back
            if type(life) is int and -_BIG <= life <= _BIG:
                return math.ceil(life / 1000)
        command = self.codec.touch_command(sid, refreshed(session, self.codec.clock()))
        assert command is not None  # touch sends EXPIRE unless disable_touch / disable_ttl
        return int(command[2])

    def command(self, sid: str) -> Command:
        """The script's call for ``sid``, expecting :attr:`expected`."""
        return ("EVALSHA", SHA, 1, self.codec.key(sid), self.expected)

    def flow(self, sid: str) -> Flow[Session | None]:
        """``get(sid)``, and the session found touched as ``touch(sid, refreshed(session,
        now))`` would."""
        if not self.scripted:
            return (yield from self.two_steps(sid))
        command = self.command(sid)
        try:
            reply = yield ("_run", command)
        except TokenSessionError as exc:
            return (yield from self.after_error(sid, command, exc))
        found = self.settled(sid, command, reply)
        if found is not UNSETTLED:
            return found  # type: ignore[no-any-return]
        return (yield from self.after(sid, command, reply))

    def settled(self, sid: str, command: Command, reply: Any) -> Any:
        """The session (or None) where the script's ``reply`` to ``command`` is all there is
        to do, else :data:`UNSETTLED`: :meth:`after` finishes."""
        if reply is None:
            return None
        try:
            session = self.codec.decode(sid, reply[0])
        except Exception:
            return UNSETTLED
        if session is None or self.expire_of(sid, session) != command[4]:
            return UNSETTLED
        return session

    def after(self, sid: str, command: Command, reply: Any) -> Flow[Session | None]:
        """What the script's ``reply`` leaves to send: touch's own EXPIRE where the expiry
        is not the one expected, the PTTL back where ``get`` would touch nothing."""
        codec, key, expected = self.codec, command[3], command[4]
        if reply is None:
            return None
        raw, before = reply
        try:
            session = codec.decode(sid, raw)
        except Exception:  # SessionDecodeError, or a serializer's own
            yield ("_run", _restore(key, before))
            raise
        if session is None:  # an empty value: connect-redis reads no session
            yield ("_run", _restore(key, before))
            return None
        seconds = self.expire_of(sid, session)
        if seconds != expected:
            try:
                yield ("_run", ("EXPIRE", key, seconds))
            except BackendUnavailableError:
                raise
            except TokenSessionError:  # touch's own EXPIRE fails alike: Redis's range
                yield ("_run", _restore(key, before))
                raise
            if seconds >= 1:
                self.expected = seconds
        return session

    def after_error(
        self, sid: str, command: Command, exc: TokenSessionError
    ) -> Flow[Session | None]:
        """The script's call failed with ``exc``: EVAL where Redis lacks the script; GET
        then EXPIRE where it refuses scripts."""
        if isinstance(exc, BackendUnavailableError):
            raise exc
        try:
            if _NO_SCRIPT not in str(exc):
                raise exc
            reply = yield ("_run", ("EVAL", SCRIPT, *command[2:]))
        except BackendUnavailableError:
            raise
        except TokenSessionError as refusal:
            raw = yield ("_run", self.codec.get_command(sid))
            self.refused(refusal)  # GET works: it was the script
            return (yield from self.touch(sid, raw))
        return (yield from self.after(sid, command, reply))

    def two_steps(self, sid: str) -> Flow[Session | None]:
        return (yield from self.touch(sid, (yield ("_run", self.codec.get_command(sid)))))

    def touch(self, sid: str, raw: Any) -> Flow[Session | None]:
        """GET's answer decoded, and touch's command sent for a session."""
        codec = self.codec
        session = codec.decode(sid, raw)
        if session is not None:
            command = codec.touch_command(sid, refreshed(session, codec.clock()))
            if command is not None:
                yield ("_run", command)
        return session

    def refused(self, exc: TokenSessionError) -> None:
        text = str(exc)
        if any(word in text for word in _FOR_NOW):
            return
        self.scripted = False
        logger.warning(
            "get+touch takes two commands from now on: Redis refused its script (%s)", text
        )


def _restore(key: str, pttl: int) -> Command:
    """The expiry a key had (PTTL's answer) back."""
    return ("PERSIST", key) if pttl < 0 else ("PEXPIRE", key, pttl)
