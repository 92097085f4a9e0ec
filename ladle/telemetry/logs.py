"""Build logs and runtime logs of a served entity: append-only files under LADLE_HOME/logs.

Replica processes write their stdout/stderr straight into `server.log`; the supervisor
adds its own lines. The API returns the tail of each file.
"""

from __future__ import annotations

import time
from pathlib import Path

MAX_RETURNED = 256 * 1024


def _stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class EntityLogs:
    def __init__(self, logs_dir: Path, endpoint_id: str, entity_name: str) -> None:
        self.dir = logs_dir / endpoint_id / entity_name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.build_path = self.dir / "build.log"
        self.server_path = self.dir / "server.log"

    def build(self, line: str) -> None:
        with open(self.build_path, "a") as f:
            f.write(f"{_stamp()} {line}\n")

    def server(self, line: str) -> None:
        with open(self.server_path, "a") as f:
            f.write(f"{_stamp()} [ladle] {line}\n")

    def reset_build(self) -> None:
        self.build_path.write_text("")

    def read_build(self) -> str:
        return _tail_bytes(self.build_path)

    def read_server(self) -> str:
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
