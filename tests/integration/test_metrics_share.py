"""Request metrics shared through a real Redis: each server's export shows every server's
requests summed (counters and histograms; gauges stay its own), the history samples the
sum, and a restarted server (same id) keeps counting from where its predecessor stopped."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from ladle.telemetry.history import MetricsHistory
from ladle.telemetry.metrics import MetricsHub
from ladle.telemetry.metrics_share import MetricsShare
from ladle.testing.redis_server import redis_server


def _values(text: bytes) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text.decode()) for s in f.samples}


def test_every_server_exports_the_sum_and_a_restart_keeps_counting(tmp_path):
    with redis_server(tmp_path / "redis") as url:
        async def main() -> None:
            hubs = [MetricsHub(), MetricsHub()]
            shares = [MetricsShare.from_url(url, f"srv-{i}", h) for i, h in enumerate(hubs)]
            for _ in range(3):
                hubs[0].for_endpoint("e1").observe("iris-1", 200, 4.0)
            hubs[1].for_endpoint("e1").observe("iris-1", 500, 40.0)
            hubs[1].for_endpoint("e1").scale("iris-1", 2, 2, 0, 0)        # a gauge: b's own
            for s in shares + shares:                # two rounds: each has read the other's
                await s.share()
            usage = lambda: {}  # noqa: E731
            for hub in hubs:
                v = _values(hub.render("e1", usage))
                assert v[("request_count_total", (("served_entity", "iris-1"),))] == 4
                assert v[("request_5xx_count_total", (("served_entity", "iris-1"),))] == 1
                assert v[("request_latency_ms_count", (("served_entity", "iris-1"),))] == 4
                assert v[("request_latency_ms_bucket", (("le", "5.0"), ("served_entity", "iris-1")))] == 3
            assert ("replica_count", (("served_entity", "iris-1"),)) not in _values(hubs[0].render("e1", usage))
            history = MetricsHistory(hubs[0], 15.0)
            history.sample()
            (snap,) = history.samples("e1")
            assert {"name": "request_count_total", "labels": {"served_entity": "iris-1"}, "value": 4.0} \
                in snap["series"]

            # server 1 restarts (same id, counters from zero) and serves one more request
            await shares[1].aclose()
            hubs[1] = MetricsHub()
            shares[1] = MetricsShare.from_url(url, "srv-1", hubs[1])
            hubs[1].for_endpoint("e1").observe("iris-1", 200, 4.0)
            for s in shares + shares:
                await s.share()
            for hub in hubs:
                v = _values(hub.render("e1", usage))
                assert v[("request_count_total", (("served_entity", "iris-1"),))] == 5
                assert v[("request_5xx_count_total", (("served_entity", "iris-1"),))] == 1
            # a deleted endpoint's shared counts are not shown
            hubs[0].retain(set())
            assert hubs[0].endpoint_ids() == set()
            for s in shares:
                await s.aclose()

        asyncio.run(main())
