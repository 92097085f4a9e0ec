"""Replica logs over OTLP: for each endpoint whose `telemetry_config` lists
TELEMETRY_FEATURE_LOGS, the lines its replicas write (their `server.log`, telemetry/logs.py) are
sent as OpenTelemetry log records (attributes `ladle.endpoint`, `ladle.served_entity`) with the
official SDK's BatchLogRecordProcessor and OTLP/HTTP log exporter.

Replicas have no network: the server follows their log files, from the end they had when the
feature was turned on, in one thread that reads what was appended every POLL_S. The export queue
is bounded: records that do not fit are dropped and counted (`dropped`), and an OTLP endpoint
that is slow or away never slows a request (nothing here is on the request path).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Callable

from ladle.telemetry.otel_export import Admission, Counting

log = logging.getLogger("ladle.otel")

POLL_S = 0.5
MAX_LINE = 16 * 1024
MAX_READ = 1024 * 1024          # per file per poll: a flood is read over several polls


class LogShipper(Admission):
    def __init__(self, exporter: Any, logs_dir: Path, max_queue: int = 2048,
                 report: Callable[[int], None] | None = None) -> None:
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
        from opentelemetry.sdk.resources import Resource

        super().__init__(max_queue, report)
        self.logs_dir = logs_dir
        self._provider = LoggerProvider(resource=Resource.create({"service.name": "ladle.replica"}))
        self._provider.add_log_record_processor(BatchLogRecordProcessor(
            Counting(exporter, self), max_queue_size=max_queue + 1, schedule_delay_millis=500,
            max_export_batch_size=min(512, max_queue)))
        self._logger = self._provider.get_logger("ladle.replica")
        self._files: dict[Path, tuple[str, str, int, bytes]] = {}   # path -> endpoint, entity, offset, partial
        self._polling = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def follow(self, wanted: dict[Path, tuple[str, str]]) -> None:
        """Follow exactly these files (path -> endpoint name, served entity), new ones from
        their current end."""
        with self._lock:
            for path in list(self._files):
                if path not in wanted:
                    del self._files[path]
            for path, (endpoint, entity) in wanted.items():
                if path not in self._files:
                    # from its end as of now: a line the replica writes right after (the first
                    # request's) is shipped even when the thread's next poll comes later. One
                    # stat per newly followed file, under LADLE_HOME on local disk.
                    self._files[path] = (endpoint, entity, _size(path), b"")
        if wanted and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ladle-otel-logs", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            self.poll()

    def poll(self) -> None:
        """Read what was appended to each followed file and emit its whole lines."""
        with self._polling:                 # the thread's polls and a flush's, one at a time
            self._poll()

    def _poll(self) -> None:
        with self._lock:
            files = dict(self._files)
        for path, (endpoint, entity, offset, partial) in files.items():
            size = _size(path)
            if size < offset:               # truncated or replaced: start over
                offset, partial = 0, b""
            if size == offset:
                with self._lock:
                    if path in self._files:
                        self._files[path] = (endpoint, entity, offset, partial)
                continue
            try:
                with open(path, "rb") as f:
                    f.seek(offset)
                    data = f.read(min(size - offset, MAX_READ))
            except OSError:
                continue
            lines = (partial + data).split(b"\n")
            partial = lines.pop()[-MAX_LINE:]
            for line in lines:
                if line.strip():
                    self._emit(line[:MAX_LINE].decode("utf-8", "replace"), endpoint, entity)
            with self._lock:
                if path in self._files:
                    self._files[path] = (endpoint, entity, offset + len(data), partial)

    def _emit(self, line: str, endpoint: str, entity: str) -> None:
        from opentelemetry._logs import SeverityNumber

        if not self._admit():
            return
        error = "Error" in line or "Traceback" in line or "error" in line
        self._logger.emit(body=line, severity_number=SeverityNumber.ERROR if error else SeverityNumber.INFO,
                          severity_text="ERROR" if error else "INFO",
                          attributes={"ladle.endpoint": endpoint, "ladle.served_entity": entity})

    def flush(self) -> None:
        self.poll()
        self._provider.force_flush()

    def shutdown(self) -> None:
        self._stop.set()
        self._provider.shutdown()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
