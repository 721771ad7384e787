"""The Node packages of ``token_session/testing/node/``, installed with ``npm ci`` once into a
cache folder named after the lock file's hash, then shared by every run that uses them."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

NODE_FILES = Path(__file__).resolve().parent / "node"
CACHE_ENV = "TOKEN_SESSION_NODE_CACHE"
NPM_CI = ["npm", "ci", "--no-audit", "--no-fund", "--legacy-peer-deps"]
# connect-mongo 4 (through the mongodb4 alias) beside connect-mongo 6 (mongodb 7): their peer
# dependencies cannot both be met, so npm leaves them to us (--legacy-peer-deps).


class NodeUnavailableError(RuntimeError):
    """node or npm missing, or the Node packages could not be installed."""


def lock_hash() -> str:
    return hashlib.sha256((NODE_FILES / "package-lock.json").read_bytes()).hexdigest()[:16]


def default_cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "token-session" / "node"


def cache_root(option: str | None = None) -> Path:
    """The folder that holds one installed copy per lock file: the option, else
    ``$TOKEN_SESSION_NODE_CACHE``, else ``~/.cache/token-session/node``."""
    chosen = option or os.environ.get(CACHE_ENV)
    return Path(chosen).expanduser() if chosen else default_cache_root()


def check_tools() -> None:
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise NodeUnavailableError(
                f"`{tool}` is not on PATH: token_session.testing drives the real Node "
                "packages. Install Node.js 20+ with npm (or run with "
                "--token-session-node=skip to skip these tests)."
            )


def node_modules(root: Path | None = None) -> Path:
    """``<root>/<lock hash>/node_modules``, installed by ``npm ci`` if it is not there yet.

    A file lock keeps parallel runs (pytest-xdist workers, two suites) from installing at
    the same time; the install goes to a temporary folder renamed into place when npm is
    done, so a run that was killed half-way leaves nothing that looks installed. Once the
    folder is there nothing touches the network."""
    root = root or cache_root()
    target = root / lock_hash()
    done = target / "node_modules"
    if done.is_dir():
        return done
    check_tools()
    root.mkdir(parents=True, exist_ok=True)
    with _file_lock(root / f"{target.name}.lock"):
        if done.is_dir():  # another run installed it while we waited
            return done
        work = root / f"{target.name}.tmp-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(NODE_FILES / name, work / name)
        result = subprocess.run(NPM_CI, cwd=work, capture_output=True, text=True)
        if result.returncode != 0:
            shutil.rmtree(work, ignore_errors=True)
            raise NodeUnavailableError(
                f"`npm ci` of token_session.testing's Node packages failed (offline? the "
                f"cache {root} holds no copy of this lock file yet):\n{result.stderr[-2000:]}"
            )
        shutil.rmtree(target, ignore_errors=True)
        work.rename(target)
    return done


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "a+b") as handle:
        if sys.platform == "win32":  # pragma: no cover
            import msvcrt

            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
            try:
                yield
            finally:
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def node_env(modules: Path) -> dict[str, str]:
    """The environment node runs token_session.testing's scripts in: their ``require``s
    resolve in the cache (``NODE_PATH``), the scripts stay in the package."""
    return {**os.environ, "NODE_PATH": str(modules)}
