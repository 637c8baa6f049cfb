"""Fixtures shared by the integration tests (the services themselves: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from harness import ReferenceRedis


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferenceRedis]:
    server = ReferenceRedis(tmp_path_factory.mktemp("reference-redis"))
    yield server
    server.close()
