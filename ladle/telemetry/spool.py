"""A server's journal of table rows: each row is appended to a local file before the answer
it logs is sent, so a server that is killed loses no row it answered for; a writer task
drains the journal into the Delta tables (telemetry/spooled.py).

Rows are JSON lines in segment files `<base offset>.jsonl` under the spool directory; a row
is known by the journal offset just past its line, which only grows (across segments and
restarts). Segments the writer has drained are deleted. A line torn by a kill in the
middle of its write is cut off when the journal is opened again. The directory's `id` file
names this journal for good (the writer's Delta transaction id), so a restarted server
resumes where its table commits say it stopped. `Spool.claim` gives each live process a
journal of its own (an advisory lock per journal directory); a writer also drains, once at
its start, the journals beside its own that no live process holds.

Hand-written: the journal is a few dozen lines of appends and reads; a queue library
(a broker, an embedded database) would put a round trip or a lock on the request path for
what one `write` to the page cache does.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from pathlib import Path

SUFFIX = ".jsonl"


class Spool:
    def __init__(self, root: Path, segment_bytes: int = 64 * 1024 * 1024, lock_fd: int | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_fd = lock_fd
        self.segment_bytes = segment_bytes
        self.id = self._identity()
        bases = self.bases()
        self._base = bases[-1] if bases else 0
        size = _cut_torn_tail(self._path(self._base))
        self.end = self._base + size              # the offset just past the last whole line
        self._fd = os.open(self._path(self._base), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def _identity(self) -> str:
        p = self.root / "id"
        if not p.exists():
            tmp = self.root / f"id.{os.getpid()}"
            tmp.write_text(uuid.uuid4().hex)
            os.replace(tmp, p)
        return p.read_text().strip()

    def _path(self, base: int) -> Path:
        return self.root / f"{base:020d}{SUFFIX}"

    def bases(self) -> list[int]:
        return sorted(int(p.name[:-len(SUFFIX)]) for p in self.root.glob("*" + SUFFIX))

    def append(self, line: bytes) -> int:
        """Append one whole line (ending in a newline); returns its end offset. One `write`
        to the page cache (no fsync): it survives the process, not the machine."""
        if self.end - self._base >= self.segment_bytes:
            os.close(self._fd)
            self._base = self.end
            self._fd = os.open(self._path(self._base), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        view = memoryview(line)
        while view:
            view = view[os.write(self._fd, view):]
        self.end += len(line)
        return self.end

    def read(self, start: int, limit: int) -> list[tuple[int, bytes]]:
        """Whole lines from offset `start` (about `limit` bytes, at least one line when there
        is one), each with its end offset. Blocking: call it off the event loop."""
        out: list[tuple[int, bytes]] = []
        bases = self.bases()
        for i, base in enumerate(bases):
            nxt = bases[i + 1] if i + 1 < len(bases) else None
            if nxt is not None and nxt <= start:
                continue
            with open(self._path(base), "rb") as f:
                f.seek(max(0, start - base))
                data = f.read(max(limit, 1))
                while data and not data.endswith(b"\n"):   # finish the last line
                    more = f.read(65536)
                    if not more:
                        break
                    data += more
            pos = max(start, base)
            for line in data.split(b"\n")[:-1]:
                pos += len(line) + 1
                out.append((pos, line))
            start = pos
            limit -= len(data)
            if limit <= 0 or (nxt is not None and start < nxt):
                break
        return out

    def release(self, upto: int) -> None:
        """Delete the segments wholly before offset `upto` (drained), never the current one."""
        bases = self.bases()
        for base, nxt in zip(bases, bases[1:]):
            if nxt <= upto and base != self._base:
                self._path(base).unlink(missing_ok=True)

    def close(self) -> None:
        os.close(self._fd)
        if self._lock_fd is not None:
            os.close(self._lock_fd)   # releases the claim

    @classmethod
    def claim(cls, parent: Path, **kw: int) -> "Spool":
        """The first journal under `parent` (`0`, `1`, ...) no other live process holds: each
        process that writes rows (a server, its gateway workers) gets one of its own, and a
        restarted one takes over the journal its predecessor left."""
        parent = Path(parent)
        parent.mkdir(parents=True, exist_ok=True)
        for i in range(1024):
            got = cls.try_claim(parent / str(i), **kw)
            if got is not None:
                return got
        raise OSError(f"every journal under {parent} is held")

    @classmethod
    def try_claim(cls, root: Path, **kw: int) -> "Spool | None":
        """The journal at `root` when no other live process holds it, else None."""
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return cls(root, lock_fd=fd, **kw)

    def orphans(self) -> list[Path]:
        """The other journals beside this one (a process that held one may have died with
        rows in it while this one took another)."""
        return sorted(p for p in self.root.parent.iterdir()
                      if p.is_dir() and p != self.root and (p / "id").exists())


def _cut_torn_tail(path: Path) -> int:
    """Cut a partial last line (a write a kill interrupted); returns the file's size."""
    if not path.exists():
        return 0
    with open(path, "rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        f.seek(max(0, size - 1))
        if f.read(1) == b"\n":
            return size
        step, pos = 65536, size
        while pos > 0:
            pos = max(0, pos - step)
            f.seek(pos)
            chunk = f.read(min(step, size - pos))
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                keep = pos + nl + 1
                f.truncate(keep)
                return keep
        f.truncate(0)
        return 0
