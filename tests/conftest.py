"""Fixtures every tier shares: real backing services the tests start themselves."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory):
    """A real PostgreSQL server (pgserver's binaries) for this test session."""
    from ladle.testing.postgres_server import postgres_server

    with postgres_server(tmp_path_factory.mktemp("pgdata")) as pg:
        yield pg
