"""Session ids as express-session and token-session make them: ``uid-safe``'s ``uid(24)``."""

from __future__ import annotations

import base64
import secrets

__all__ = ["SID_BYTES", "generate_sid"]

SID_BYTES = 24


def generate_sid() -> str:
    """24 random bytes as unpadded base64url: 32 characters of ``[A-Za-z0-9_-]``.

    uid-safe 2.1.5 writes ``buf.toString('base64')`` with ``=`` stripped, ``+`` as ``-`` and
    ``/`` as ``_``; 24 bytes never need padding.
    """
    return base64.urlsafe_b64encode(secrets.token_bytes(SID_BYTES)).decode("ascii")
