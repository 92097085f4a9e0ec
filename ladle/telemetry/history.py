"""An hour of each endpoint's request metrics, kept by the server: every `interval_s` the
request counters and the latency histogram are copied out of the endpoint's Prometheus
registry, with what other servers counted added (MetricsHub.families). The web UI charts
rates and latency quantiles from these snapshots, so its "last hour" is complete when the
page opens (the Prometheus route has no history).

Served as `GET /api/2.0/ladle/serving-endpoints/{name}/metrics-history` (CAN_VIEW):
{"interval_s": 15, "samples": [{"t": epoch ms, "series": [{"name", "labels", "value"}]}]}.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any, Callable

from ladle.telemetry.metrics import MetricsHub

KEEP_S = 3600.0
KEPT = ("request_count_total", "request_4xx_count_total", "request_5xx_count_total",
        "request_latency_ms_bucket", "replica_count", "replica_target_count", "in_flight_requests",
        "queued_requests")


class MetricsHistory:
    def __init__(self, hub: MetricsHub, interval_s: float, clock: Callable[[], float] = time.time) -> None:
        self.hub, self.interval_s, self.clock = hub, interval_s, clock
        self.keep = max(1, int(KEEP_S / interval_s))
        self._by_endpoint: dict[str, deque] = {}

    def sample(self) -> None:
        now = self.clock()
        live = self.hub.endpoint_ids()
        for gone in self._by_endpoint.keys() - live:
            del self._by_endpoint[gone]   # the endpoint was deleted: its history goes too
        for endpoint_id in sorted(live):
            series = [{"name": s.name, "labels": dict(s.labels), "value": s.value}
                      for metric in self.hub.families(endpoint_id) for s in metric.samples if s.name in KEPT]
            if not series:
                continue
            dq = self._by_endpoint.setdefault(endpoint_id, deque(maxlen=self.keep))
            dq.append({"t": int(now * 1000), "series": series})

    def samples(self, endpoint_id: str) -> list[dict[str, Any]]:
        return list(self._by_endpoint.get(endpoint_id, ()))

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            self.sample()
