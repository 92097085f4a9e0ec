"""Build logs and runtime logs of a served entity: append-only files under LADLE_HOME/logs.

Replica processes write their stdout/stderr straight into `server.log`; the supervisor
adds its own lines. The API returns the tail of each file.

The supervisor's lines are appended by one writer thread, in the order they were given, so
the event loop (the reconciler, the runtimes) never waits on the disk; a read first waits
until the lines given before it are written, so it sees them.
"""

from __future__ import annotations

import atexit
import os
import queue
import threading
import time
from pathlib import Path

MAX_RETURNED = 256 * 1024


def _stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class _Appender:
    """A queue of (path, text) appends (text None: truncate) and the one thread that writes
    them. A hand-written loop: the standard library's QueueHandler/QueueListener write
    log records to handlers, not lines to per-entity files that are also truncated and read."""

    def __init__(self) -> None:
        self._q: queue.SimpleQueue[tuple[Path, str | None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._given = self._written = 0
        self._thread: threading.Thread | None = None
        self._pid = 0

    def put(self, path: Path, text: str | None) -> None:
        with self._lock:
            if self._thread is None or self._pid != os.getpid():   # first use, or a forked child
                self._q, self._given, self._written = queue.SimpleQueue(), 0, 0
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, args=(self._q,),
                                                name="ladle-entity-logs", daemon=True)
                self._thread.start()
                atexit.register(self.flush, 5.0)
            self._given += 1
            self._q.put((path, text))

    def flush(self, timeout: float | None = 30.0) -> None:
        """Wait until every append given so far is written."""
        with self._lock:
            target = self._given
            self._done.wait_for(lambda: self._written >= target, timeout)

    def _run(self, q: "queue.SimpleQueue[tuple[Path, str | None] | None]") -> None:
        while True:
            item = q.get()
            if item is None:
                return
            path, text = item
            try:
                if text is None:
                    path.write_text("")
                else:
                    with open(path, "a") as f:
                        f.write(text)
            except OSError:   # the entity's directory went away (deleted endpoint): drop the line
                pass
            with self._lock:
                self._written += 1
                self._done.notify_all()


_appender = _Appender()


class EntityLogs:
    def __init__(self, logs_dir: Path, endpoint_id: str, entity_name: str) -> None:
        self.dir = logs_dir / endpoint_id / entity_name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.build_path = self.dir / "build.log"
        self.server_path = self.dir / "server.log"

    def build(self, line: str) -> None:
        _appender.put(self.build_path, f"{_stamp()} {line}\n")

    def server(self, line: str) -> None:
        _appender.put(self.server_path, f"{_stamp()} [ladle] {line}\n")

    def server_raw(self, line: str) -> None:
        """A line as another process wrote it (already stamped or not), e.g. relayed from a
        replica on another machine."""
        _appender.put(self.server_path, f"{line}\n")

    def reset_build(self) -> None:
        _appender.put(self.build_path, None)

    def read_build(self) -> str:
        _appender.flush()
        return _tail_bytes(self.build_path)

    def read_server(self) -> str:
        _appender.flush()
        return _tail_bytes(self.server_path)

    def tail(self, n: int) -> str:
        return "\n".join(self.read_server().splitlines()[-n:])


def _tail_bytes(path: Path) -> str:
    if not path.exists():
        return ""
    size = path.stat().st_size
    with open(path, "rb") as f:
        if size > MAX_RETURNED:
            f.seek(size - MAX_RETURNED)
        return f.read().decode("utf-8", "replace")
