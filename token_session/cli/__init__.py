"""The ``token-session`` command.

``demo`` works on the base install; the other commands need the ``cli`` extra (click and
rich): ``pip install 'token-session[cli]'``.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    try:
        from .app import run
    except ImportError as exc:
        if exc.name not in ("click", "rich"):
            raise
        from .demo import main_without_cli_extra

        return main_without_cli_extra(argv)
    return run(argv)
