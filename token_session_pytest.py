"""The ``pytest11`` entry point of token_session.testing: only its options, ini keys and
marker, nothing that costs a run that does not use them (a module outside the
``token_session`` package, so that pytest loading it imports nothing else).

The fixtures are in :mod:`token_session.testing`, enabled with ``-p token_session.testing``,
``pytest_plugins = ["token_session.testing"]`` or ``token_session_node = true`` in the ini."""

from __future__ import annotations

import importlib

import pytest

PLUGIN = "token_session.testing"
MARKER = "token_session_node: uses the real Node packages (token_session.testing's fixtures)"


def add_options(parser: pytest.Parser) -> None:
    """Once per parser: both the entry point and ``-p token_session.testing`` ask."""
    if getattr(parser, "_token_session_options", False):
        return
    setattr(parser, "_token_session_options", True)  # noqa: B010
    group = parser.getgroup("token-session", "token-session's Node interop fixtures")
    group.addoption(
        "--token-session-node",
        choices=["error", "skip"],
        default=None,
        help="without node/npm (or when the Node packages cannot be installed): fail the "
        "tests that need them (error, the default) or skip them",
    )
    group.addoption(
        "--token-session-cache",
        default=None,
        metavar="DIR",
        help="where the Node packages are installed once per lock file "
        "(default: $TOKEN_SESSION_NODE_CACHE, else ~/.cache/token-session/node)",
    )
    parser.addini(
        "token_session_node", "enable token_session.testing's fixtures", type="bool", default=False
    )
    parser.addini(
        "token_session_node_missing", "error or skip (as --token-session-node)", default="error"
    )


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def add_marker(config: pytest.Config) -> None:
    if MARKER not in config.getini("markers"):
        config.addinivalue_line("markers", MARKER)


def pytest_configure(config: pytest.Config) -> None:
    add_marker(config)
    if config.getini("token_session_node") and not config.pluginmanager.has_plugin(PLUGIN):
        config.pluginmanager.register(importlib.import_module(PLUGIN), PLUGIN)
