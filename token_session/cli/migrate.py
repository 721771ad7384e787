"""``migrate``: copy every live session from one backend to another."""

from __future__ import annotations

import time

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ..migration import DEFAULT_BATCH, MigrationState, migrate
from .common import Output, config_option, json_option, open_store, redact, shown
from .config import load_config, resolve

FAILED_SHOWN = 20


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:,.0f}/s", style="progress.data.speed")


@click.command("migrate")
@click.option(
    "--from",
    "source_url",
    metavar="URL",
    envvar="TOKEN_SESSION_FROM",
    help="store to copy from (or $TOKEN_SESSION_FROM).",
)
@click.option(
    "--to",
    "target_url",
    metavar="URL",
    envvar="TOKEN_SESSION_TO",
    help="store to copy to (or $TOKEN_SESSION_TO).",
)
@click.option(
    "--from-option",
    "source_pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="option of the source store (repeatable).",
)
@click.option(
    "--to-option",
    "target_pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="option of the target store (repeatable).",
)
@config_option
@click.option(
    "--batch",
    "batch_size",
    default=DEFAULT_BATCH,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="sessions read and written at a time.",
)
@click.option(
    "--state",
    "state_path",
    metavar="FILE",
    help="save progress here after each batch; run again to resume.",
)
@click.option("--dry-run", is_flag=True, help="read and count, write nothing.")
@json_option
def migrate_command(
    source_url: str | None,
    target_url: str | None,
    source_pairs: tuple[str, ...],
    target_pairs: tuple[str, ...],
    config_path: str | None,
    batch_size: int,
    state_path: str | None,
    dry_run: bool,
    as_json: bool,
) -> int:
    """Copy every live session from one store to another.

    Each session keeps its exact JSON text and its expiry (so its remaining TTL) and is
    written as the target's Node store keeps it: a Node app pointed at the target sees the
    same sessions. Sessions already in the target are overwritten, so running it again is
    harmless. With --state an interrupted migration continues where it stopped. Sessions
    that expire before they are written are skipped. A record that is not a session
    (corrupt, not JSON, not an object) is not copied: it is listed as failed with the
    reason and the copy carries on. Exit status 1 if any failed.

    \b
    examples:
      token-session migrate --from redis://127.0.0.1:6379/0 --to mysql://root@127.0.0.1/app
      token-session migrate --from mysql://root@127.0.0.1/app \\
          --to mongodb://127.0.0.1:27017/app --state migrate.json
      token-session migrate --from redis://old:6379/0 --from-option prefix=app: \\
          --to redis://new:6379/0 --dry-run
    """
    out = Output(as_json)
    config = load_config(config_path)
    source_spec = resolve("from", source_url, source_pairs, config, "--from or $TOKEN_SESSION_FROM")
    target_spec = resolve("to", target_url, target_pairs, config, "--to or $TOKEN_SESSION_TO")
    state = MigrationState.load_or_new(state_path, redact(source_spec.url), redact(target_spec.url))
    resumed = state.cursor is not None
    started = time.monotonic()
    with open_store(source_spec) as (source_store, source), open_store(target_spec) as (_, target):
        total = source_store.length()
        progress = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=out.errors,
            disable=as_json or not out.errors.is_terminal,
        )
        with progress:
            task = progress.add_task(
                "dry run" if dry_run else "copying",
                total=max(total, state.read),
                completed=state.read,
            )

            def on_batch(state: MigrationState, read: int) -> None:
                progress.advance(task, read)
                if state_path and not dry_run:
                    state.save(state_path)

            if resumed:
                out.note(f"resuming after {state.read} sessions read")
            migrate(
                source, target, state, batch_size=batch_size, dry_run=dry_run, on_batch=on_batch
            )
    elapsed = time.monotonic() - started
    summary = {
        "from": state.source,
        "to": state.target,
        "dry_run": dry_run,
        "read": state.read,
        "copied": state.copied,
        "skipped": len(state.skipped),
        "failed": state.failed,
        "seconds": round(elapsed, 3),
    }
    if as_json:
        out.json({**summary, "skipped_ids": state.skipped})
    else:
        verb = "would copy" if dry_run else "copied"
        out.console.print(
            f"{verb} [bold green]{state.copied}[/], skipped {len(state.skipped)} (expired "
            f"during the copy), failed [bold red]{len(state.failed)}[/] "
            f"in {elapsed:.1f} s ({state.read / elapsed if elapsed else 0:,.0f} sessions/s)"
        )
        for sid, reason in list(state.failed.items())[:FAILED_SHOWN]:
            out.console.print(Text(f"  failed {shown(sid)}: {shown(reason)}"))
        if len(state.failed) > FAILED_SHOWN:
            out.console.print(f"  ... and {len(state.failed) - FAILED_SHOWN} more (see --json)")
    return 1 if state.failed else 0
