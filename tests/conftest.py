from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from .node import NodeOracle, NodeUnavailable

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("default")


@pytest.fixture(scope="session")
def node() -> Iterator[NodeOracle]:
    """The real Node packages behind a pipe; a missing Node fails the run, never skips."""
    try:
        oracle = NodeOracle()
    except NodeUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    yield oracle
    oracle.close()
