"""After a run: what went wrong inside ladle, from its own logs (server output and each
served entity's replica log), grouped by message so a run with thousands of identical
errors prints one row."""

from __future__ import annotations

import re
from pathlib import Path

_PATTERNS = re.compile(r"\bERROR\b|Traceback|prediction failed|model error|exited with code|"
                       r"failed to start|Exception in ASGI|CRITICAL", re.I)
_NOISE = [
    (re.compile(r"^\S+T\S+Z\s+|^\d{4}-\d\d-\d\d[ T][\d:,.]+\s+"), ""),                # timestamps
    (re.compile(r"\(request [0-9a-f-]{36}\)"), "(request …)"),
    (re.compile(r"\bpid \d+"), "pid N"),
    (re.compile(r"0x[0-9a-f]+"), "0x…"),
]


def normalize(line: str) -> str:
    out = line.strip()
    for rx, rep in _NOISE:
        out = rx.sub(rep, out)
    return out[:240]


def findings(text: str) -> list[tuple[str, int]]:
    """(normalized message, count) of the problem lines in one log, most frequent first.
    A traceback is summarized by its last line (the exception) too."""
    counts: dict[str, int] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Traceback"):
            j = i + 1
            while j < len(lines) and (lines[j].startswith((" ", "\t")) or not lines[j].strip()):
                j += 1
            if j < len(lines):
                key = "exception: " + normalize(lines[j])
                counts[key] = counts.get(key, 0) + 1
            continue
        if _PATTERNS.search(line):
            key = normalize(line)
            counts[key] = counts.get(key, 0) + 1
    return sorted(counts.items(), key=lambda kv: -kv[1])


def scan_home(home: Path) -> list[tuple[str, str, int]]:
    """(log, message, count) for ladle's server output and every served entity's logs."""
    rows = []
    files = [home / "server-process.log", *sorted((home / "logs").glob("*/*/server.log")),
             *sorted((home / "logs").glob("*/*/build.log"))]
    for f in files:
        try:
            text = f.read_text(errors="replace")
        except OSError:
            continue
        label = f.name if f.parent == home else f"{f.parent.name}/{f.name}"
        rows += [(label, msg, n) for msg, n in findings(text)]
    return rows
