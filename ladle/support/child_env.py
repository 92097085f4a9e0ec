"""What the server gives the helper processes it starts (the MLflow registry, model
downloads, uv): its environment less ladle's own settings. Below every package, so the
runtimes and the entities' build steps share it."""

from __future__ import annotations

import os
import sys
from typing import Mapping


def server_child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The server's environment less ladle's own settings (tokens, keys, database URLs), for
    the helper processes it starts (the MLflow registry, model downloads, uv)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LADLE_")}
    env.update(extra or {})
    return env


def set_non_dumpable() -> None:
    """Close this process's /proc/<pid>/environ, mem and fds to same-uid processes."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE
        except (OSError, AttributeError):
            pass
