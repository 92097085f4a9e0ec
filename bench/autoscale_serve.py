"""Ray Serve's own autoscaling on the bench's random-forest model, for the side by side in
bench/autoscale.py: the same MLflow model (downloaded from ladle's registry), the same range
(min/max replicas), the same target in-flight per replica and delays, behind Serve's own HTTP
proxy, under the same step load. Replicas are read from `serve.status()`.

Serve's knobs map from ladle's: `target_ongoing_requests` = target in-flight per replica,
`upscale_delay_s` = the up window, `downscale_delay_s` = the cool-down, `max_ongoing_requests`
= the concurrency one replica serves (4).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

from ladle.testing.process import free_port

APP = "bench-rf"


def _deployment(lo: int, hi: int, target: float, up_s: float, down_s: float):
    from ray import serve

    @serve.deployment(name="rf", max_ongoing_requests=4, ray_actor_options={"num_cpus": 1},
                      autoscaling_config={"min_replicas": lo, "initial_replicas": lo, "max_replicas": hi,
                                          "target_ongoing_requests": target, "upscale_delay_s": up_s,
                                          "downscale_delay_s": down_s, "metrics_interval_s": 0.5,
                                          "look_back_period_s": max(1.0, up_s)})
    class RandomForest:
        def __init__(self, model_dir: str) -> None:
            import mlflow.pyfunc

            self.model = mlflow.pyfunc.load_model(model_dir)

        async def __call__(self, request) -> dict[str, Any]:
            import pandas as pd

            split = (await request.json())["dataframe_split"]
            df = pd.DataFrame(split["data"], columns=split["columns"])
            return {"predictions": [int(x) for x in self.model.predict(df)]}

    return RandomForest


class ServeRun:
    """A local Ray cluster with the model deployed under Serve's autoscaling; `url` takes the
    same bodies as ladle's invocations route."""

    def __init__(self, model_dir: str, lo: int, hi: int, target: float, up_s: float, down_s: float,
                 num_cpus: int) -> None:
        self.args = (model_dir, lo, hi, target, up_s, down_s)
        self.num_cpus = num_cpus
        self.url = ""

    def __enter__(self) -> "ServeRun":
        import ray
        from ray import serve

        ray.init(num_cpus=self.num_cpus, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        model_dir, lo, hi, target, up_s, down_s = self.args
        serve.run(_deployment(lo, hi, target, up_s, down_s).bind(model_dir), name=APP, route_prefix="/rf")
        self.url = f"http://127.0.0.1:{port}/rf"
        return self

    def __exit__(self, *exc) -> None:
        import ray
        from ray import serve

        try:
            serve.shutdown()
        finally:
            ray.shutdown()

    @staticmethod
    def replicas() -> tuple[int, int]:
        """(running replicas, the autoscaler's target) as Serve reports them."""
        from ray import serve

        dep = serve.status().applications[APP].deployments["rf"]
        running = sum(n for state, n in dep.replica_states.items() if str(state).endswith("RUNNING"))
        target = sum(dep.replica_states.values())   # every replica Serve keeps: running or starting
        return running, target

    def sampler(self) -> Callable[[], Awaitable[tuple[int, int]]]:
        async def sample() -> tuple[int, int]:
            return await asyncio.to_thread(self.replicas)
        return sample


def wait_running(n: int, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while ServeRun.replicas()[0] < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"Ray Serve did not start {n} replicas")
        time.sleep(0.5)
