"""Which store a command works on: its URL and options, from the command line, the
environment or a TOML config file, in that order of precedence.

A config file names each store in a table; ``url`` is its URL and every other key a store
option (the keywords of ``from_url``)::

    [store]                 # ls, get, stats, rm, purge-expired, doctor
    url = "mysql://app@db.internal/app"
    expiration = 86400000

    [from]                  # migrate --from
    url = "redis://127.0.0.1:6379/0"
    prefix = "sess:"

    [to]                    # migrate --to
    url = "mongodb://127.0.0.1:27017/app"
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidArgumentError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["StoreSpec", "load_config", "parse_options", "resolve"]


@dataclass(frozen=True)
class StoreSpec:
    url: str
    options: dict[str, Any] = field(default_factory=dict)


def load_config(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    try:
        with Path(path).open("rb") as file:
            config: dict[str, Any] = tomllib.load(file)
            return config
    except OSError as exc:
        raise InvalidArgumentError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidArgumentError(f"config file {path} is not TOML: {exc}") from None


def parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``name=value`` pairs; a value that reads as JSON (``3600``, ``true``, ``{...}``) is
    taken as that, any other as text."""
    options: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise InvalidArgumentError(f"store option {pair!r} is not name=value")
        try:
            options[name] = json.loads(text)
        except ValueError:
            options[name] = text
    return options


def resolve(
    role: str, url: str | None, pairs: Sequence[str], config: dict[str, Any], how: str
) -> StoreSpec:
    """The store for ``role`` (a config table name; ``how`` names the option and variable
    for the error): ``url`` (the option, already filled from the environment by click)
    wins over the file's; options from ``pairs`` win over
    the file's."""
    table = config.get(role, {})
    if not isinstance(table, dict):
        raise InvalidArgumentError(f"config file: [{role}] must be a table")
    file_options = {key: value for key, value in table.items() if key != "url"}
    url = url or table.get("url")
    if not url:
        raise InvalidArgumentError(
            f"no {role} URL: give {how}, or a config file (--config) with a [{role}] table"
        )
    return StoreSpec(str(url), {**file_options, **parse_options(pairs)})
