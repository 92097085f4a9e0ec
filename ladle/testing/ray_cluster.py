"""A Ray cluster for tests and benchmarks: `ray start --head --block` as a child process in its
own session on loopback, with Ray's token authentication, and more nodes joining it the same
way (`add_node`), each with its own temp dir (its own storage, as separate machines would
have); every node is stopped by its PID (its own session), never with `ray stop`. Nothing
runs at import time."""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import psutil

from ladle.testing.process import ChildProcess, child_env, free_port


class RayCluster:
    """`env`: what a ladle server needs to use the cluster (LADLE_RAY_ADDRESS, Ray's
    RAY_AUTH_MODE / RAY_AUTH_TOKEN and LADLE_RAY_SEAL_KEY, which the nodes have too)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.nodes: list[ChildProcess] = []
        # each node's temp dir: short (Ray's sockets live there; AF_UNIX paths end at 107
        # bytes) and its own, as a separate machine's would be
        self.temp = Path(tempfile.mkdtemp(prefix="ladle-ray-"))

    def _start(self, argv: list[str], work: Path, env: dict[str, str], timeout: float) -> ChildProcess:
        ray = str(Path(sys.executable).parent / "ray")
        auth = {k: v for k, v in self.env.items() if k != "LADLE_RAY_ADDRESS"}
        node = ChildProcess([ray, "start", "--block", "--node-ip-address=127.0.0.1", "--disable-usage-stats",
                             f"--temp-dir={self.temp / str(len(self.nodes))}", "--object-store-memory=200000000",
                             *argv],
                            work / "ray.log", child_env({"RAY_USAGE_STATS_ENABLED": "0", **auth, **env}))
        node.start()
        self.nodes.append(node)
        deadline = time.monotonic() + timeout
        while "Ray runtime started" not in node.output():
            if not node.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"ray start failed:\n{node.output(4000)}")
            time.sleep(0.2)
        return node

    def add_node(self, work: Path, num_cpus: int = 1, resources: dict[str, float] | None = None,
                 env: dict[str, str] | None = None, timeout: float = 120.0) -> ChildProcess:
        """A worker node joining the head, with its own temp dir under `work`, custom
        `resources` (to pin replicas to it) and `env` in its processes' environment."""
        argv = [f"--address={self.env['LADLE_RAY_ADDRESS']}", f"--num-cpus={num_cpus}"]
        if resources:
            argv.append(f"--resources={json.dumps(resources)}")
        return self._start(argv, work, env or {}, timeout)

    def processes(self) -> list[psutil.Process]:
        """Every live process of the nodes started here (raylets, workers, their children)."""
        return [p for node in self.nodes for p in node.tree()]

    def stop(self) -> None:
        # a test cluster in a temporary directory: nothing to save, so a short grace (Ray's own
        # shutdown of a `--block` node took ~30 s, all of it waiting); workers before the head
        for node in reversed(self.nodes):
            node.stop(grace=3)
        shutil.rmtree(self.temp, ignore_errors=True)


@contextlib.contextmanager
def ray_cluster(work: Path, num_cpus: int = 2, timeout: float = 120.0,
                head_env: dict[str, str] | None = None) -> Iterator[RayCluster]:
    """A head node (`num_cpus`, `head_env` in its environment); add nodes with add_node."""
    from cryptography.fernet import Fernet

    port = free_port()
    cluster = RayCluster({"LADLE_RAY_ADDRESS": f"127.0.0.1:{port}", "RAY_AUTH_MODE": "token",
                          "RAY_AUTH_TOKEN": secrets.token_hex(32),
                          "LADLE_RAY_SEAL_KEY": Fernet.generate_key().decode()})
    try:
        cluster._start(["--head", f"--port={port}", f"--num-cpus={num_cpus}", "--include-dashboard=false"],
                       work / "head", head_env or {}, timeout)
        yield cluster
    finally:
        cluster.stop()


@contextlib.contextmanager
def ray_head(work: Path, num_cpus: int = 2, timeout: float = 120.0) -> Iterator[dict[str, str]]:
    """A one-node cluster: yields the environment a ladle server needs to use it."""
    with ray_cluster(work, num_cpus, timeout) as cluster:
        yield cluster.env
