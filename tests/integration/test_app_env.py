"""An app's environment built by two deployments at once (same requirements): both get it."""

from __future__ import annotations

import asyncio

import pytest

from ladle.runtimes.app_env import build_env

pytestmark = pytest.mark.integration


def test_two_builds_of_the_same_requirements_at_once_both_succeed(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "requirements.txt").write_text("")
    envs = tmp_path / "envs"

    async def both():
        return await asyncio.gather(build_env(src, envs, lambda _m: None),
                                    build_env(src, envs, lambda _m: None))

    a, b = asyncio.run(both())
    assert a == b and (a / ".complete").exists() and (a / "bin" / "python").exists()
    assert not list(envs.glob(".*.building"))          # the loser's directory is gone
