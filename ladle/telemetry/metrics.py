"""Per-endpoint Prometheus metrics with the names Databricks' serving endpoints export
(`/api/2.0/serving-endpoints/{name}/metrics`): request_count, request_4xx_count,
request_5xx_count, request_latency_ms, cpu_usage_percentage, mem_usage_percentage, ..."""

from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric

LATENCY_BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class EndpointMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("request_count", "Requests served", ["served_entity"], registry=r)
        self.req_4xx = Counter("request_4xx_count", "Requests answered 4xx", ["served_entity"], registry=r)
        self.req_5xx = Counter("request_5xx_count", "Requests answered 5xx", ["served_entity"], registry=r)
        self.latency = Histogram("request_latency_ms", "Request latency in milliseconds",
                                 ["served_entity"], buckets=LATENCY_BUCKETS_MS, registry=r)
        self.rate_limited = Counter("request_rate_limited_count", "Requests refused by rate limits",
                                    ["served_entity"], registry=r)
        self.guardrail_blocked = Counter("request_guardrail_blocked_count",
                                         "Requests blocked by guardrails", ["served_entity"], registry=r)
        self.cpu = Gauge("cpu_usage_percentage", "CPU usage of the served entity's replicas",
                         ["served_entity"], registry=r)
        self.mem = Gauge("mem_usage_percentage", "Memory usage of the served entity's replicas",
                         ["served_entity"], registry=r)
        self.replicas = Gauge("replica_count", "Running replicas", ["served_entity"], registry=r)
        self.target = Gauge("replica_target_count", "Replicas the autoscaler wants running",
                            ["served_entity"], registry=r)
        self.in_flight = Gauge("in_flight_requests", "Requests in progress on the replicas",
                               ["served_entity"], registry=r)
        self.queued = Gauge("queued_requests", "Requests waiting for a replica or beyond a "
                            "replica's concurrency", ["served_entity"], registry=r)

    def scale(self, entity: str, replicas: int, target: int, in_flight: int, queued: int) -> None:
        self.replicas.labels(entity).set(replicas)
        self.target.labels(entity).set(target)
        self.in_flight.labels(entity).set(in_flight)
        self.queued.labels(entity).set(queued)

    def observe(self, entity: str, status: int, elapsed_ms: float) -> None:
        self.requests.labels(entity).inc()
        if 400 <= status < 500:
            self.req_4xx.labels(entity).inc()
        elif status >= 500:
            self.req_5xx.labels(entity).inc()
        self.latency.labels(entity).observe(elapsed_ms)


Sample = tuple[str, dict[str, str], float]     # (sample name, labels, value)
SUMMED = ("counter", "histogram")             # the kinds whose samples add up across servers


class MetricsHub:
    """Every endpoint's metrics on this server, plus what other servers counted (`remote`,
    filled by telemetry/metrics_share.py): counters and histograms are rendered summed over
    all servers; gauges (replicas, CPU, memory) are this server's own."""

    def __init__(self) -> None:
        self._by_endpoint: dict[str, EndpointMetrics] = {}
        self.remote: dict[str, list[list[Sample]]] = {}   # endpoint id -> other servers' samples
        self.live: set[str] | None = None                 # the endpoints that exist (None: unknown)

    def for_endpoint(self, endpoint_id: str) -> EndpointMetrics:
        m = self._by_endpoint.get(endpoint_id)
        if m is None:
            m = self._by_endpoint[endpoint_id] = EndpointMetrics()
        return m

    def retain(self, endpoint_ids: set[str]) -> None:
        """Drop the metrics of every endpoint not in `endpoint_ids` (deleted ones)."""
        self.live = set(endpoint_ids)
        for gone in self._by_endpoint.keys() - endpoint_ids:
            del self._by_endpoint[gone]

    def endpoint_ids(self) -> set[str]:
        """The endpoints with metrics here or on another server (existing ones only)."""
        remote = set(self.remote) if self.live is None else set(self.remote) & self.live
        return set(self._by_endpoint) | remote

    def local_samples(self) -> dict[str, list[Sample]]:
        """This server's counter and histogram samples per endpoint (what it shares)."""
        return {eid: _summed_samples(m) for eid, m in list(self._by_endpoint.items())}

    def families(self, endpoint_id: str) -> list[Metric]:
        """The endpoint's metric families, counters and histograms summed over every server."""
        m = self.for_endpoint(endpoint_id)
        total: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for samples in [*self.remote.get(endpoint_id, ()), _summed_samples(m)]:
            for name, labels, value in samples:
                k = (name, tuple(sorted(labels.items())))
                total[k] = total.get(k, 0.0) + value
        out = []
        for fam in m.registry.collect():
            if fam.type not in SUMMED:
                out.append(fam)
                continue
            merged = Metric(fam.name, fam.documentation, fam.type)
            mine = [k for k in total if k[0].rsplit("_", 1)[0] == fam.name]
            for name, labels in sorted(mine, key=_exposition_order):
                merged.add_sample(name, dict(labels), total[(name, labels)])
            out.append(merged)
        return out

    def items(self) -> list[tuple[str, EndpointMetrics]]:
        return list(self._by_endpoint.items())

    def render(self, endpoint_id: str, usage: Callable[[], dict[str, tuple[float, float, int]]]) -> bytes:
        m = self.for_endpoint(endpoint_id)
        total_mem = _total_mem_mib()
        for entity, (cpu, mem_mib, replicas) in usage().items():
            m.cpu.labels(entity).set(cpu)
            m.mem.labels(entity).set(100.0 * mem_mib / total_mem if total_mem else 0.0)
            m.replicas.labels(entity).set(replicas)
        families = self.families(endpoint_id)
        view = CollectorRegistry(auto_describe=False)
        view.register(_Fixed(families))
        return generate_latest(view)


def _summed_samples(m: EndpointMetrics) -> list[Sample]:
    return [(s.name, dict(s.labels), s.value) for f in m.registry.collect() if f.type in SUMMED
            for s in f.samples if not s.name.endswith("_created")]


class _Fixed:
    """A collector of families already computed (what generate_latest renders)."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families


def _exposition_order(key: tuple[str, tuple[tuple[str, str], ...]]) -> tuple:
    """Samples of one label set together; a histogram's buckets by `le`, then count and sum."""
    name, labels = key
    suffix = name.rsplit("_", 1)[1]
    rest = tuple(kv for kv in labels if kv[0] != "le")
    le = next((float(v) for k, v in labels if k == "le"), 0.0)
    return rest, {"bucket": 0, "count": 1, "sum": 2}.get(suffix, 0), le


def _total_mem_mib() -> float:
    import psutil

    return psutil.virtual_memory().total / 2**20
