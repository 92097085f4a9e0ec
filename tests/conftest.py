"""Fixtures every tier shares: real backing services the tests start themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

TIERS = ("unit", "integration", "e2e", "web")
# The `slow` tier: deselected by default (pyproject addopts), `pytest -m slow` runs it. The whole
# suite measured 6 min 37 s on this 2-core machine with two workers (the machine busy); CI's
# machines have measured from 0.6 to 2.4 times this one's time, and CI allows 12 minutes with
# the install, so the default stays under 5 minutes here. The schema fuzz and the demo (the
# README's first command) are in the default for what they guard, though each starts a server.
SLOW = {"integration/test_ray_backend.py", "e2e/test_e2e_ray.py",
        "e2e/test_e2e_autoscale.py", "e2e/test_e2e_external_mlflow.py", "e2e/test_e2e_database_outage.py",
        "e2e/test_e2e_restart.py", "e2e/test_e2e_shared_state.py", "e2e/test_llm_chat_models.py",
        "e2e/test_e2e_scale_out.py", "e2e/test_e2e_ray_nodes.py", "e2e/test_e2e_gateway_workers_models.py",
        "e2e/test_e2e_registry_idle.py"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test carries its tier's marker (the directory it lives in), so `-m` selects tiers:
    the quick tier of the edit loop is `-m "unit or integration"`."""
    here = Path(__file__).parent
    for item in items:
        rel = item.path.relative_to(here) if here in item.path.parents else None
        if rel is not None and rel.parts[0] in TIERS:
            item.add_marker(rel.parts[0])
            if rel.parts[0] == "web" or rel.as_posix() in SLOW:
                item.add_marker("slow")
    # `ends_module`: a test that stops what its module's other tests share runs after them
    # (the order is otherwise pytest-randomly's, or the file's). The browser tier runs last:
    # Playwright's sync API keeps an event loop running in the main thread while its session
    # browser lives, and every asyncio.run() after it would fail.
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        first.setdefault(str(item.path), i)
    # `file_order`: a module whose tests each ensure what they need (so each passes alone) but
    # whose file order reuses it (Ray groups: in a shuffled order every test rebuilt replicas).
    # Under pytest-xdist (whole modules per worker, in this order) the tiers that start servers
    # go first and the short unit modules fill the end, so no worker is left with a long module
    # at the end; within a tier the order stays pytest-randomly's.
    items.sort(key=lambda it: (it.get_closest_marker("web") is not None, _TIER_ORDER.get(_tier(it), 9),
                               first[str(it.path)],
                               it.get_closest_marker("ends_module") is not None,
                               it.location[1] if it.get_closest_marker("file_order") else 0))


_TIER_ORDER = {"e2e": 0, "integration": 1, "unit": 2}


def _tier(item: pytest.Item) -> str:
    return next((t for t in TIERS if item.get_closest_marker(t) is not None), "")


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory):
    """A real PostgreSQL server (pgserver's binaries) for this test session."""
    from ladle.testing.postgres_server import postgres_server

    with postgres_server(tmp_path_factory.mktemp("pgdata")) as pg:
        yield pg


@pytest.fixture(scope="session", autouse=True)
def _mlflow_tracking_in_tmp(tmp_path_factory: pytest.TempPathFactory):
    """Tests write only to temporary directories: MLflow's default store (./mlflow.db and
    ./mlruns in the working directory) would otherwise catch any MLflow call made without an
    explicit tracking URI, and ladle's cache would be the user's. Tests that use a ladle
    server set theirs explicitly."""
    import os

    mp = pytest.MonkeyPatch()
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path_factory.mktemp('mlflow-default')}/mlflow.db")
    # ladle's own cache (the migrated MLflow database it copies into a new home) in a temporary
    # directory too, never the user's ~/.cache/ladle
    mp.setenv("LADLE_CACHE_DIR", str(tmp_path_factory.mktemp("ladle-cache")))
    yield
    mp.undo()
