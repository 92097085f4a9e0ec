"""Runtime logs of Ray Serve replicas that prepare on their node, readable from any server.

Such a replica may run on a node whose disk no ladle server reads, so its `server.log` (the
worker's output and the replica's own lines) is tailed in the replica (`ServerLogTail`) and
its last lines are kept under one key of the cluster's KV per replica (`LogRelay`,
`logs/<app>/<id>`, bounded, sealed with ray_seal's key since the KV is open to every process
of the cluster). The reconciler owner copies new lines into the entity's server.log, each
marked with the node (RayBackend._relay_logs, `relay`); other servers forward logs requests to it.

Imported by Ray worker processes; ray is imported only inside the KV calls (ray_serve).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable

from ladle.runtimes import ray_serve as rs

log = logging.getLogger("ladle.runtimes.ray")


class LogRelay:
    """One replica's window of relayed runtime log lines: the last MAX_RELAYED lines (each
    cut at MAX_LINE characters, MAX_CHARS in all) and how many were written in all, so the reader copies
    each new line once even after the window slid."""

    MAX_RELAYED = 200
    MAX_LINE = 4000
    MAX_CHARS = 64 * 1024

    def __init__(self, app: str, node: str) -> None:
        import uuid

        self.key = f"logs/{app}/{uuid.uuid4().hex[:16]}"
        self.node = node
        self.lines: list[str] = []
        self.count = 0

    def push(self, lines: list[str]) -> None:
        """Append `lines` and write the window (blocking: one KV write per batch)."""
        if not lines:
            return
        from ladle.runtimes.ray_seal import seal, seal_key

        window = (self.lines + [line[:self.MAX_LINE] for line in lines])[-self.MAX_RELAYED:]
        size = sum(len(line) for line in window)
        while size > self.MAX_CHARS and len(window) > 1:   # one KV value stays small
            size -= len(window.pop(0))
        count = self.count + len(lines)
        rs.kv_put(self.key, seal({"node": self.node, "lines": window, "count": count}, seal_key()))
        self.lines, self.count = window, count   # kept only once written: a failed push is redone


def read_log_lines(app: str) -> dict[str, tuple[str, int, list[str]]]:
    """Replica key -> (node, lines written in all, the last of them) relayed by the
    application's replicas (blocking)."""
    from ladle.runtimes.ray_seal import unseal

    return rs.read_windows(f"logs/{app}/", unseal)


def parse_windows(keys: list[str], get: Any) -> dict[str, tuple[str, int, list[str]]]:
    """The sealed runtime-log windows of `keys`."""
    from ladle.runtimes.ray_seal import unseal

    return rs.parse_windows(keys, get, unseal)


def copy_new(relayed: dict[str, tuple[str, int, list[str]]], seen: dict[str, int], write) -> None:
    """Write each line of `relayed` windows not copied before (`seen`: lines copied per key,
    updated), marked with its node."""
    for key, (node, count, lines) in relayed.items():
        new = min(max(count - seen.get(key, 0), 0), len(lines))
        for line in lines[len(lines) - new:]:
            write(f"[{node}] {line}")
        seen[key] = count


class ServerLogTail:
    """Reads the complete lines appended to a log file since the last read and pushes them
    to a LogRelay (blocking; the replica runs it on a thread every INTERVAL_S). A partial
    last line waits for its newline unless it outgrew MAX_CHUNK."""

    INTERVAL_S = 0.5
    MAX_CHUNK = 256 * 1024

    def __init__(self, path: Path, relay: LogRelay) -> None:
        self.path, self.relay, self.offset = path, relay, 0

    def pump(self) -> int:
        """Relay what is new; the number of lines relayed."""
        try:
            size = os.path.getsize(self.path)
        except OSError:
            return 0
        if size < self.offset:   # truncated: start over
            self.offset = 0
        if size == self.offset:
            return 0
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            chunk = f.read(self.MAX_CHUNK)
        end = chunk.rfind(b"\n") + 1
        if end == 0 and len(chunk) < self.MAX_CHUNK:
            return 0
        used = chunk[:end] if end else chunk
        lines = used.decode("utf-8", "replace").splitlines()
        self.relay.push(lines)
        self.offset += len(used)
        return len(lines)


async def relay(backend: Any, what: str, read: Callable[[str], Any], sink: Callable[[Any], Any]) -> None:
    """Copy what replicas preparing on their nodes relayed through the KV (`read(app)`) into
    `sink(group)` of the owning server's groups, each line once."""
    if not backend.prepare_in_replica:
        return
    for g in list(backend._groups.values()):
        if g.app not in backend._apps:
            continue
        try:
            relayed = await backend.run_blocking(read, g.app)
        except Exception as e:
            log.debug("reading relayed %s of %s failed: %s", what, g.app, e)
            continue
        copy_new(relayed, g.relayed, sink(g))


class NoLogs:
    """Entity logs when the backend has no logs dir: lines go to the Python log."""

    def build(self, line: str) -> None:
        log.info("%s", line)

    def server(self, line: str) -> None:
        log.info("%s", line)

    def server_raw(self, line: str) -> None:
        log.info("%s", line)

    def reset_build(self) -> None:
        pass
