"""The request as the framework-free core sees it, whatever the framework."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Request"]


@dataclass(frozen=True)
class Request:
    """What the core reads from a request: its path as sent, its headers (lower-case names;
    only the first of repeated ones is needed) and whether the connection itself is TLS."""

    path: str
    headers: Mapping[str, str]
    encrypted: bool = False
