"""A Ray head node for tests and benchmarks: `ray start --head --block` as a child process in
its own session on loopback, with Ray's token authentication; stopped by its PID (its own
session), never with `ray stop`. Nothing runs at import time."""

from __future__ import annotations

import contextlib
import secrets
import sys
import time
from pathlib import Path
from typing import Iterator

from ladle.testing.process import ChildProcess, child_env, free_port


@contextlib.contextmanager
def ray_head(work: Path, num_cpus: int = 2, timeout: float = 120.0) -> Iterator[dict[str, str]]:
    """Yields the environment a ladle server needs to use it: LADLE_RAY_ADDRESS, Ray's
    RAY_AUTH_MODE / RAY_AUTH_TOKEN and LADLE_RAY_SEAL_KEY (the nodes have it too)."""
    from cryptography.fernet import Fernet

    port = free_port()
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
            "LADLE_RAY_SEAL_KEY": Fernet.generate_key().decode()}
    ray = str(Path(sys.executable).parent / "ray")
    head = ChildProcess([ray, "start", "--head", "--block", f"--port={port}", f"--num-cpus={num_cpus}",
                         "--node-ip-address=127.0.0.1", "--include-dashboard=false", "--disable-usage-stats",
                         f"--temp-dir={work / 't'}", "--object-store-memory=200000000"],
                        work / "ray.log", child_env({"RAY_USAGE_STATS_ENABLED": "0", **auth}))
    head.start()
    try:
        deadline = time.monotonic() + timeout
        while "Ray runtime started" not in head.output():
            if not head.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"ray start failed:\n{head.output(4000)}")
            time.sleep(0.2)
        yield {"LADLE_RAY_ADDRESS": f"127.0.0.1:{port}", **auth}
    finally:
        # a test cluster in a temporary directory: nothing to save, so a short grace (Ray's own
        # shutdown of a `--block` head took ~30 s, all of it waiting)
        head.stop(grace=3)
