"""``token-session demo``, and the command as it is without the ``cli`` extra: demo only."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TextIO

from .. import __version__
from ..compat.jsjson import dumps
from ..errors import TokenSessionError
from ..session import TokenSession
from ..stores import from_url

__all__ = ["main_without_cli_extra", "run_demo"]

log = logging.getLogger("token_session.cli")


def run_demo(store_url: str, ttl: float, out: TextIO) -> None:
    store = from_url(store_url)
    with TokenSession(store) as tokens:

        def show(step: str, detail: str) -> None:
            print(f"{step:<14} {detail}", file=out)

        print(f"token-session demo on {store_url}", file=out)
        created = tokens.new({"user": "ada", "roles": ["admin"], "visits": 1})
        sid = created.sid
        show("new", f"token {sid}")
        show("stored", dumps(created.data))
        session = tokens.get(sid)
        assert session is not None
        show("get", f"visits={session['visits']} (and touched: auto_touch is on)")
        session["visits"] += 1
        tokens.set(sid, session)
        show("set", f"visits={session['visits']}")
        show("touch", "found" if tokens.touch(sid) else "missing")
        short = tokens.new_with_ttl({"purpose": "email-code", "code": "493817"}, ttl)
        expires = short.data["cookie"]["expires"]
        show("new_with_ttl", f"token {short.sid} lives {ttl:g}s, until {expires}")
        new_sid = tokens.regenerate(sid)
        show("regenerate", f"{sid} -> {new_sid}")
        show("old token", "gone" if tokens.get(sid) is None else "STILL THERE")
        show("new token", f"user={(tokens.get(new_sid) or {}).get('user')}")
        tokens.destroy(new_sid)
        show("destroy", "gone" if tokens.get(new_sid) is None else "STILL THERE")
        tokens.destroy(short.sid)
        print(f"sessions left: {store.length()}", file=out)
    store.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="token-session",
        description="Sessions shared between Python and Node express-session stores.",
        epilog="example: token-session demo --store memory://\n\n"
        "ls, get, stats, rm, migrate, purge-expired and doctor need the cli extra:\n"
        "  pip install 'token-session[cli]'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="run a token's whole lifecycle on a store and print each step",
        description="Create, read, touch, update, regenerate and destroy tokens on a store.",
    )
    demo.add_argument(
        "--store", default="memory://", metavar="URL", help="store URL (default: memory://)"
    )
    demo.add_argument(
        "--ttl", type=float, default=120.0, help="per-session TTL in seconds for new_with_ttl"
    )
    return parser


_NEED_CLI_EXTRA = ("ls", "get", "stats", "rm", "migrate", "purge-expired", "doctor")


def main_without_cli_extra(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    command = next((word for word in words if not word.startswith("-")), None)
    if command in _NEED_CLI_EXTRA:
        print(
            f"token-session: error: {command} needs the cli extra: "
            "pip install 'token-session[cli]'",
            file=sys.stderr,
        )
        return 2
    args = _parser().parse_args(words)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    try:
        if args.command == "demo":
            run_demo(args.store, args.ttl, sys.stdout)
    except TokenSessionError as exc:
        print(f"token-session: error: {exc}", file=sys.stderr)
        return 1
    return 0
