"""The ``token-session`` command."""

from __future__ import annotations

import subprocess
import sys

import pytest

from token_session.cli import main


def test_demo_runs_the_token_lifecycle_on_the_memory_store(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    for step in ("new", "get", "set", "touch", "new_with_ttl", "regenerate", "destroy"):
        assert f"\n{step} " in out
    assert "STILL THERE" not in out
    assert '"cookie":{"maxAge":0}' in out
    assert "sessions left: 0" in out


def test_demo_reports_a_bad_store_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--store", "nosuch://x"]) == 1
    assert "unknown store URL scheme" in capsys.readouterr().err


def test_python_dash_m_and_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "token_session", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert "demo" in result.stdout
