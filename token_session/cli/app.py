"""The ``token-session`` command group (click), its commands and its error handling."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass

import click

from .. import __version__
from ..errors import TokenSessionError
from .demo import run_demo
from .inspect import get_command, ls_command, rm_command, stats_command
from .maintain import doctor_command, purge_command
from .migrate import migrate_command

__all__ = ["DEBUG_ENV", "cli", "run"]

DEBUG_ENV = "TOKEN_SESSION_DEBUG"


@dataclass
class Settings:
    """What the group's options set for the whole run (click's ``obj``)."""

    debug: bool = False


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="""\b
examples:
  token-session demo
  token-session ls --store redis://127.0.0.1:6379/0
  token-session get SID --raw --store mysql://root@127.0.0.1/app
  token-session stats --store mongodb://127.0.0.1:27017/app
  token-session migrate --from redis://127.0.0.1:6379/0 --to mysql://root@127.0.0.1/app
  token-session doctor redis://127.0.0.1:6379/0

\b
Each command takes the store as --store URL, $TOKEN_SESSION_STORE or the [store] table of a
TOML file given with --config (or $TOKEN_SESSION_CONFIG); store options as -o NAME=VALUE or
in that table. `token-session COMMAND --help` tells more.

\b
exit status: 0 done; 1 an error (one line on stderr), a session not found, or records
that could not be read (ls, stats, migrate: listed on stderr or under "failed", after
everything readable); 2 a usage error.""",
)
@click.version_option(__version__, "--version", prog_name="token-session")
@click.option("-v", "--verbose", is_flag=True, help="log what happens.")
@click.option(
    "--debug",
    is_flag=True,
    help=f"print the traceback of an unexpected error (or ${DEBUG_ENV}=1).",
)
@click.pass_obj
def cli(settings: Settings, verbose: bool, debug: bool) -> None:
    """Sessions shared between Python and Node express-session stores: look at them, move
    them between backends and check the backends."""
    settings.debug = settings.debug or debug
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING)


@cli.command("demo")
@click.option("--store", default="memory://", metavar="URL", show_default=True, help="store URL.")
@click.option(
    "--ttl",
    type=float,
    default=120.0,
    show_default=True,
    help="per-session TTL in seconds for new_with_ttl.",
)
def demo_command(store: str, ttl: float) -> None:
    """Run a token's whole lifecycle on a store and print each step.

    Create, read, touch, update, regenerate and destroy tokens.
    """
    run_demo(store, ttl, sys.stdout)


for command in (
    ls_command,
    get_command,
    stats_command,
    rm_command,
    migrate_command,
    purge_command,
    doctor_command,
):
    cli.add_command(command)


def _error(message: str) -> int:
    # one line, whatever the message holds (a driver's may span several)
    click.echo(f"token-session: error: {' '.join(message.split())}", err=True)
    return 1


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command group; errors become one line on stderr and an exit status (1 for
    a failure, 2 for a usage error). An error that is not one of ours is named with its
    type; its traceback follows only with ``--debug`` or $TOKEN_SESSION_DEBUG=1."""
    settings = Settings(debug=os.environ.get(DEBUG_ENV, "") not in ("", "0"))
    try:
        status = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="token-session",
            standalone_mode=False,
            obj=settings,
        )
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("aborted", err=True)
        return 130
    except TokenSessionError as exc:
        if settings.debug:
            traceback.print_exc()
        return _error(str(exc))
    except Exception as exc:
        if settings.debug:
            traceback.print_exc()
            return _error(f"{type(exc).__name__}: {exc}")
        return _error(
            f"{type(exc).__name__}: {exc} (unexpected: --debug or {DEBUG_ENV}=1 shows where)"
        )
    return status if isinstance(status, int) else 0
