"""``purge-expired`` and ``doctor``: keeping a backend as the Node store expects it."""

from __future__ import annotations

from dataclasses import asdict

import click
from rich.text import Text

from .common import Output, json_option, open_store, redact, shown, store_options, store_spec

LEVEL_STYLE = {"ok": "green", "info": "blue", "warning": "yellow", "error": "bold red"}


@click.command("purge-expired")
@store_options
@json_option
def purge_command(
    store_url: str | None, option_pairs: tuple[str, ...], config_path: str | None, as_json: bool
) -> int:
    """Delete the expired sessions now.

    MySQL, PostgreSQL and MongoDB keep expired sessions until removed (express-mysql-session's
    and connect-pg-simple's clean-up, connect-mongo's TTL index or interval); Redis expires
    keys itself, so there it does nothing.

    \b
    examples:
      token-session purge-expired --store mysql://root@127.0.0.1/app
      TOKEN_SESSION_STORE=mongodb://127.0.0.1/app token-session purge-expired --json
    """
    out = Output(as_json)
    with open_store(store_spec(store_url, option_pairs, config_path)) as (_, records):
        purged = records.purge_expired()
    if as_json:
        out.json({"purged": purged})
    elif purged is None:
        out.console.print("nothing to purge: this backend removes expired sessions itself")
    else:
        out.console.print(f"purged {purged} expired sessions")
    return 0


@click.command("doctor")
@click.argument("url", required=False, metavar="[URL]")
@store_options
@json_option
def doctor_command(
    url: str | None,
    store_url: str | None,
    option_pairs: tuple[str, ...],
    config_path: str | None,
    as_json: bool,
) -> int:
    """Check the backend is set up as the Node store expects; print findings and fixes.

    MySQL: the table, its columns' types and collation as express-mysql-session 3.0.3
    creates them. PostgreSQL: the table, column types, primary key and expiry index as
    connect-pg-simple 10.0.0 (or connect-session-knex 5.0.0) creates them, and the time zone
    its timestamps are in. MongoDB: the TTL index on `expires`. Redis: keys under the prefix
    without a TTL, and a maxmemory-policy that could evict sessions. Exit status 1 if there
    is a warning or an error.

    \b
    examples:
      token-session doctor redis://127.0.0.1:6379/0
      token-session doctor 'mysql://root@127.0.0.1/app?table_name=web_sessions'
      token-session doctor mongodb://127.0.0.1/app --json
      token-session doctor 'postgresql://postgres@127.0.0.1/app?table_name=session'
    """
    out = Output(as_json)
    spec = store_spec(url or store_url, option_pairs, config_path)
    with open_store(spec) as (_, records):
        findings = records.doctor()
    bad = any(finding.level in ("warning", "error") for finding in findings)
    if as_json:
        out.json({"store": redact(spec.url), "findings": [asdict(f) for f in findings]})
        return 1 if bad else 0
    out.console.print(Text(shown(redact(spec.url)), style="bold"))
    for finding in findings:
        level = (f"{finding.level:<8}", LEVEL_STYLE[finding.level])
        out.console.print(
            Text.assemble(level, f" {shown(finding.check)}: {shown(finding.message, lines=True)}")
        )
        if finding.fix:
            out.console.print(
                Text.assemble("         ", ("fix:", "dim"), f" {shown(finding.fix, lines=True)}")
            )
    return 1 if bad else 0
