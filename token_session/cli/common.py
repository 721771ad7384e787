"""What the commands share: the store options, opening a store, and output for people (rich
tables, colour on a terminal) or for scripts (``--json``)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import click
from rich.console import Console
from rich.text import Text

from ..errors import InvalidArgumentError, TokenSessionError
from ..stores import Store, from_url
from ..stores.records import RecordIO, record_io
from .config import StoreSpec, load_config, resolve

F = TypeVar("F", bound=Callable[..., Any])

STORE_ENV = "TOKEN_SESSION_STORE"
CONFIG_ENV = "TOKEN_SESSION_CONFIG"


def config_option(function: F) -> F:
    return click.option(
        "--config",
        "config_path",
        metavar="FILE",
        envvar=CONFIG_ENV,
        help=f"TOML file with store URLs and options (or ${CONFIG_ENV}).",
    )(function)


def store_options(function: F) -> F:
    """``--store URL`` (or $TOKEN_SESSION_STORE), ``-o name=value`` and ``--config``."""
    function = click.option(
        "-o",
        "--option",
        "option_pairs",
        multiple=True,
        metavar="NAME=VALUE",
        help="store option, e.g. -o prefix=app: -o ttl=3600 (repeatable).",
    )(function)
    function = click.option(
        "--store",
        "store_url",
        metavar="URL",
        envvar=STORE_ENV,
        help=(
            "store URL: redis://, mongodb://, mysql://, postgresql://, memory://"
            f" (or ${STORE_ENV})."
        ),
    )(function)
    return config_option(function)


def json_option(function: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True, help="print JSON for scripts instead of text."
    )(function)


def store_spec(
    store_url: str | None, option_pairs: tuple[str, ...], config_path: str | None
) -> StoreSpec:
    how = f"--store URL or ${STORE_ENV}"
    return resolve("store", store_url, option_pairs, load_config(config_path), how)


def redact(url: str) -> str:
    """The URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@contextlib.contextmanager
def open_store(spec: StoreSpec) -> Iterator[tuple[Store, RecordIO]]:
    try:
        store = from_url(spec.url, **spec.options)
    except TokenSessionError:
        raise
    except TypeError as exc:  # an option the store or its driver does not take
        raise InvalidArgumentError(f"bad store option for {redact(spec.url)}: {exc}") from None
    except ValueError as exc:  # a value the URL parser or the store could not take
        raise InvalidArgumentError(f"bad store URL {redact(spec.url)}: {exc}") from None
    try:
        yield store, record_io(store)
    finally:
        store.close()


class Output:
    """Text for people on stdout (tables, colour when it is a terminal), notes on stderr;
    or one JSON document on stdout."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.console = Console(highlight=False, soft_wrap=True)
        self.errors = Console(stderr=True, highlight=False, soft_wrap=True)

    def json(self, value: Any) -> None:
        text = json.dumps(value, ensure_ascii=False)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate, which JSON text may carry escaped
            text = json.dumps(value)
        sys.stdout.write(text + "\n")

    def note(self, text: str | Text) -> None:
        """A remark for people (on stderr, so that stdout stays the data)."""
        if not self.as_json:
            self.errors.print(text)

    def failures(self, failed: dict[str, str]) -> None:
        for sid, reason in failed.items():
            self.errors.print(
                Text.assemble(("unreadable", "red"), f" {shown(sid)}: {shown(reason)}")
            )


def shown(value: str, lines: bool = False) -> str:
    """Text from a backend or from a user as it can be printed for people: control characters
    (terminal escape sequences included; new lines and tabs too unless ``lines``) and lone
    surrogates as Python escapes; an id that is empty or has spaces at either end as a Python
    literal (``' x'``). Print it as a ``rich.text.Text``, never as markup."""
    if (not lines and value.strip() != value) or not value:
        return repr(value)
    if value.isprintable():
        return value
    kept = "\n\t" if lines else ""
    return "".join(
        char if char.isprintable() or char in kept else repr(char)[1:-1] for char in value
    )


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    moment = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def human_ttl(ms: int | None) -> str:
    if ms is None:
        return "never"
    if ms <= 0:
        return "expired"
    seconds = ms // 1000
    for unit, size, smaller, smaller_size in (
        ("d", 86400, "h", 3600),
        ("h", 3600, "m", 60),
        ("m", 60, "s", 1),
    ):
        if seconds >= size:
            rest = (seconds % size) // smaller_size
            return (
                f"{seconds // size}{unit} {rest}{smaller}" if rest else f"{seconds // size}{unit}"
            )
    return f"{seconds}s"


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    unit = "KiB"
    if value >= 1024:
        value, unit = value / 1024, "MiB"
    return f"{value:.1f} {unit}"


def text_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))
