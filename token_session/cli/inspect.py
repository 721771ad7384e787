"""``ls``, ``get``, ``stats`` and ``rm``: looking at the sessions of one store."""

from __future__ import annotations

import bisect
import re
import statistics

import click
from rich.json import JSON
from rich.table import Table
from rich.text import Text

from ..compat.cookie import now_ms
from ..errors import SessionNotFoundError
from ..stores.base import decode_session
from ..stores.records import StoredSession, every_record, readable
from .common import (
    Output,
    human_size,
    human_ttl,
    iso,
    json_option,
    open_store,
    shown,
    store_options,
    store_spec,
    text_size,
)

PAGE = 50
LONE_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")  # any surrogate escape; a pair too
SCAN_BATCH = 1000


def _summary(record: StoredSession, now: int) -> dict[str, object]:
    return {
        "sid": record.sid,
        "expires": iso(record.expires_ms),
        "ttl_ms": record.remaining_ms(now),
        "size": text_size(record.text),
    }


@click.command("ls")
@store_options
@json_option
@click.option("--limit", default=PAGE, show_default=True, help="sessions per page.")
@click.option("--cursor", metavar="CURSOR", help="start after this page (printed by ls).")
@click.option("--all", "show_all", is_flag=True, help="every session, not one page.")
def ls_command(
    store_url: str | None,
    option_pairs: tuple[str, ...],
    config_path: str | None,
    as_json: bool,
    limit: int,
    cursor: str | None,
    show_all: bool,
) -> int:
    """List session ids with their expiry, a page at a time.

    Records that are not sessions (corrupt, not JSON, not an object) are listed on stderr
    (under "failed" with --json) with the reason, after the sessions; the exit status is
    then 1.

    \b
    examples:
      token-session ls --store redis://127.0.0.1:6379/0
      token-session ls --store redis://127.0.0.1:6379/0 --cursor 1536
      token-session ls --store mysql://root@127.0.0.1/app --all --json
    """
    out = Output(as_json)
    now = now_ms()
    rows: list[StoredSession] = []
    failed: dict[str, str] = {}
    with open_store(store_spec(store_url, option_pairs, config_path)) as (_, records):
        while True:
            page = readable(records.page(cursor, limit))
            rows += page.records
            failed.update(page.failed)
            cursor = page.cursor
            if cursor is None or (not show_all and len(rows) >= limit):
                break
    if as_json:
        out.json({"sessions": [_summary(r, now) for r in rows], "cursor": cursor, "failed": failed})
        return 1 if failed else 0
    table = Table("session id", "expires (UTC)", "TTL", "size", box=None)
    table.columns[0].no_wrap = True
    for record in rows:
        table.add_row(
            Text(shown(record.sid)),
            iso(record.expires_ms) or "never",
            human_ttl(record.remaining_ms(now)),
            human_size(text_size(record.text)),
        )
    out.console.print(table)
    out.failures(failed)
    if cursor is not None:
        out.note(f"more: token-session ls ... --cursor {cursor}")
    return 1 if failed else 0


@click.command("get")
@click.argument("sid")
@store_options
@json_option
@click.option("--raw", is_flag=True, help="exactly what is stored: value, row or document.")
def get_command(
    sid: str,
    store_url: str | None,
    option_pairs: tuple[str, ...],
    config_path: str | None,
    as_json: bool,
    raw: bool,
) -> int:
    """Show one session (exit status 1 if there is none, or if what is stored is not a
    session: --raw shows it as it is).

    \b
    examples:
      token-session get 5uUO0_dZ1hgsmZ3uHJVnYrxX0_3p2Wd8 --store redis://127.0.0.1:6379/0
      token-session get 5uUO0_dZ1hgsmZ3uHJVnYrxX0_3p2Wd8 --raw --store mongodb://127.0.0.1/app
    """
    out = Output(as_json)
    with open_store(store_spec(store_url, option_pairs, config_path)) as (_, records):
        if raw:
            stored = records.raw(sid)
            if stored is None:
                raise SessionNotFoundError(sid)
            if as_json:
                out.json({"sid": sid, **stored.fields})
            else:
                click.echo(stored.exact)
            return 0
        record = records.read(sid)
    if record is None:
        raise SessionNotFoundError(sid)
    session = decode_session(sid, record.text)
    now = now_ms()
    if as_json:
        out.json({**_summary(record, now), "session": session})
        return 0
    out.note(
        Text(
            f"{shown(sid)}  expires {iso(record.expires_ms) or 'never'} "
            f"({human_ttl(record.remaining_ms(now))})  {human_size(text_size(record.text))}"
        )
    )
    try:
        # written with \u escapes where the text holds a lone surrogate, which no terminal
        # can take as it is
        pretty = JSON(record.text, ensure_ascii=LONE_SURROGATE.search(record.text) is not None)
    except RecursionError:  # deeper than the indenting encoder goes: the text as stored
        click.echo(record.text)
    else:
        out.console.print(pretty)
    return 0


@click.command("rm")
@click.argument("sids", metavar="SID...", nargs=-1, required=True)
@store_options
@json_option
@click.option("-f", "--force", is_flag=True, help="no error for an id with no session.")
def rm_command(
    sids: tuple[str, ...],
    store_url: str | None,
    option_pairs: tuple[str, ...],
    config_path: str | None,
    as_json: bool,
    force: bool,
) -> int:
    """Delete sessions (exit status 1 if one was not there, unless --force).

    \b
    example:
      token-session rm 5uUO0_dZ1hgsmZ3uHJVnYrxX0_3p2Wd8 --store redis://127.0.0.1:6379/0
    """
    out = Output(as_json)
    removed: list[str] = []
    missing: list[str] = []
    with open_store(store_spec(store_url, option_pairs, config_path)) as (_, records):
        for sid in sids:
            (removed if records.delete(sid) else missing).append(sid)
    if as_json:
        out.json({"removed": removed, "missing": missing})
    else:
        for sid in removed:
            out.console.print(Text(f"removed {shown(sid)}"))
        for sid in missing:
            out.errors.print(Text(f"no session {shown(sid)}"))
    return 1 if missing and not force else 0


# upper bounds (exclusive) and labels of the histogram buckets
TTL_BUCKETS = [
    (60_000, "< 1 min"),
    (600_000, "< 10 min"),
    (3_600_000, "< 1 h"),
    (86_400_000, "< 1 day"),
    (7 * 86_400_000, "< 7 days"),
    (30 * 86_400_000, "< 30 days"),
]
SIZE_BUCKETS = [
    (256, "< 256 B"),
    (1024, "< 1 KiB"),
    (4096, "< 4 KiB"),
    (16384, "< 16 KiB"),
    (65536, "< 64 KiB"),
]


def _bucket(value: int, buckets: list[tuple[int, str]], last: str) -> str:
    index = bisect.bisect_right([bound for bound, _ in buckets], value)
    return buckets[index][1] if index < len(buckets) else last


def _chart(title: str, counts: dict[str, int]) -> Table:
    table = Table(title=title, title_justify="left", box=None, show_header=False)
    widest = max(counts.values(), default=0) or 1
    for label, count in counts.items():
        bar = "█" * round(30 * count / widest) or ("▏" if count else "")
        table.add_row(label, f"{count:>8}", f"[cyan]{bar}[/]")
    return table


@click.command("stats")
@store_options
@json_option
def stats_command(
    store_url: str | None, option_pairs: tuple[str, ...], config_path: str | None, as_json: bool
) -> int:
    """Count the live sessions; histograms of time to expiry and of size.

    Records that are not sessions are not counted: they are listed on stderr (under
    "failed" with --json) with the reason, and the exit status is then 1.

    \b
    example:
      token-session stats --store mysql://root@127.0.0.1/app
    """
    out = Output(as_json)
    now = now_ms()
    ttl = {label: 0 for _, label in TTL_BUCKETS} | {"≥ 30 days": 0, "never": 0}
    size = {label: 0 for _, label in SIZE_BUCKETS} | {"≥ 64 KiB": 0}
    sizes: list[int] = []
    failed: dict[str, str] = {}
    with open_store(store_spec(store_url, option_pairs, config_path)) as (_, records):
        for record in every_record(records, SCAN_BATCH, failed):
            remaining = record.remaining_ms(now)
            label = "never" if remaining is None else _bucket(remaining, TTL_BUCKETS, "≥ 30 days")
            ttl[label] += 1
            sizes.append(text_size(record.text))
            size[_bucket(sizes[-1], SIZE_BUCKETS, "≥ 64 KiB")] += 1
    b = {
        "total": sum(sizes),
        "min": min(sizes, default=0),
        "median": int(statistics.median(sizes)) if sizes else 0,
        "max": max(sizes, default=0),
    }
    if as_json:
        out.json(
            {"count": len(sizes), "bytes": b, "expires_in": ttl, "size": size, "failed": failed}
        )
        return 1 if failed else 0
    out.console.print(
        f"[bold]{len(sizes)}[/] live sessions, {human_size(b['total'])} "
        f"(min {human_size(b['min'])}, median {human_size(b['median'])}, "
        f"max {human_size(b['max'])})"
    )
    out.console.print(_chart("expires in", ttl))
    out.console.print(_chart("size", size))
    out.failures(failed)
    return 1 if failed else 0
