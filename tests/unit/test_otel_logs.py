"""Replica logs over OTLP (telemetry/otel_logs.py): only endpoints whose telemetry config lists
logs are followed, from the end their log had, whole lines only; a full queue drops and counts."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter

from ladle.telemetry.otel import Otel
from ladle.telemetry.otel_logs import LogShipper

LOGS = {"enabled_telemetry_features": ["TELEMETRY_FEATURE_LOGS"]}


def _route(name, telemetry):
    return SimpleNamespace(name=name, id=f"id-{name}", telemetry=telemetry,
                           entities={"m": SimpleNamespace(name="m", external_model=None)})


def _bodies(exporter):
    return [(r.log_record.body, dict(r.log_record.attributes)) for r in exporter.get_finished_logs()]


def test_only_endpoints_asking_for_logs_are_shipped_from_where_their_log_was(tmp_path):
    for ep in ("shipped", "quiet"):
        (tmp_path / f"id-{ep}" / "m").mkdir(parents=True)
        (tmp_path / f"id-{ep}" / "m" / "server.log").write_text("before\n")
    exporter = InMemoryLogRecordExporter()
    otel = Otel(env={}, logs_dir=tmp_path, log_exporter=exporter)
    otel.follow_logs({"quiet": _route("quiet", None)})
    assert otel.logs is None                                  # nobody asked: nothing built
    otel.follow_logs({"shipped": _route("shipped", LOGS), "quiet": _route("quiet", None)})
    try:
        otel.logs.poll()                                      # where the file ends now
        for ep in ("shipped", "quiet"):
            with open(tmp_path / f"id-{ep}" / "m" / "server.log", "a") as f:
                f.write("model loaded\nTraceback: boom\nhalf a li")
        otel.logs.flush()
        got = _bodies(exporter)
        assert [b for b, _ in got] == ["model loaded", "Traceback: boom"]
        assert got[0][1] == {"ladle.endpoint": "shipped", "ladle.served_entity": "m"}
        sev = [r.log_record.severity_text for r in exporter.get_finished_logs()]
        assert sev == ["INFO", "ERROR"]
    finally:
        otel.shutdown()


class Stuck:
    """An exporter that does not return until told (an OTLP endpoint that hangs)."""

    def __init__(self) -> None:
        self.go = threading.Event()

    def export(self, batch):
        self.go.wait(10)
        from opentelemetry.sdk._logs.export import LogRecordExportResult

        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        self.go.set()


def test_a_full_queue_drops_and_counts(tmp_path):
    stuck = Stuck()
    shipper = LogShipper(stuck, tmp_path, max_queue=4)
    try:
        for i in range(20):
            shipper._emit(f"line {i}", "ep", "m")
        assert shipper.dropped == 16 and shipper.pending == 4
    finally:
        stuck.go.set()
        shipper.shutdown()
