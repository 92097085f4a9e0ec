"""Load generators: wrk (preferred) and an asyncio/aiohttp fallback, with one result shape.

`parse_wrk` is pure and unit-tested; everything else starts processes or sockets.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class LoadResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    non2xx: int          # HTTP answers >= 400 (wrk: "Non-2xx or 3xx responses")
    errors: int          # socket errors: connect/read/write/timeout
    tool: str
    statuses: dict[int, int] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)    # first few error bodies/messages

    @property
    def failed(self) -> int:
        return self.non2xx + self.errors


# -- wrk ----------------------------------------------------------------------------------
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_NUM = r"([0-9]+(?:\.[0-9]+)?)"


def parse_duration_ms(text: str) -> float:
    """'812.00us' -> 0.812, '1.20ms' -> 1.2, '2.00s' -> 2000.0, '1.50m' -> 90000.0."""
    m = re.fullmatch(_NUM + r"(us|ms|s|m|h)", text.strip())
    if not m:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(m.group(1)) * _UNITS_MS[m.group(2)]


def parse_wrk(output: str) -> LoadResult:
    """Parse `wrk --latency` output (text) into a LoadResult."""
    def pct(p: str) -> float | None:
        m = re.search(rf"^\s*{p}%\s+(\S+)\s*$", output, re.M)
        return parse_duration_ms(m.group(1)) if m else None

    m = re.search(r"(\d+) requests in " + _NUM + r"(us|ms|s|m|h)", output)
    if not m:
        raise ValueError("wrk output has no 'N requests in T' line:\n" + output[-2000:])
    requests = int(m.group(1))
    duration_s = float(m.group(2)) * _UNITS_MS[m.group(3)] / 1000.0
    rm = re.search(r"Requests/sec:\s+" + _NUM, output)
    rps = float(rm.group(1)) if rm else (requests / duration_s if duration_s else 0.0)
    nm = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sm = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors = sum(int(g) for g in sm.groups()) if sm else 0
    return LoadResult(requests=requests, duration_s=duration_s, rps=rps, p50_ms=pct("50"),
                      p99_ms=pct("99"), non2xx=int(nm.group(1)) if nm else 0, errors=errors, tool="wrk")


def wrk_script(body_path: Path, headers: dict[str, str]) -> str:
    """A wrk Lua script that POSTs the bytes of body_path with the given headers."""
    lines = [
        f'local f = assert(io.open("{_lua_escape(str(body_path))}", "rb"))',
        "wrk.method = \"POST\"",
        "wrk.body = f:read(\"*a\")",
        "f:close()",
    ]
    for k, v in headers.items():
        lines.append(f'wrk.headers["{_lua_escape(k)}"] = "{_lua_escape(v)}"')
    return "\n".join(lines) + "\n"


def _lua_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


def find_wrk(install: bool = True) -> str | None:
    """The wrk binary; installs the Debian package when missing and we are root."""
    found = shutil.which("wrk")
    if found or not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "install", "-y", "wrk"], ["apt-get", "update"], ["apt-get", "install", "-y", "wrk"]):
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        if shutil.which("wrk"):
            break
    return shutil.which("wrk")


def run_wrk(wrk: str, url: str, script: Path, concurrency: int, duration_s: float,
            timeout_s: float = 10.0) -> LoadResult:
    threads = max(1, min(concurrency, 2))
    cmd = [wrk, "-t", str(threads), "-c", str(concurrency), "-d", f"{max(1, round(duration_s))}s",
           "--timeout", f"{int(timeout_s)}s", "--latency", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + timeout_s + 30)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout[-1000:]}")
    return parse_wrk(out.stdout)


# -- asyncio fallback ---------------------------------------------------------------------
def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(p / 100.0 * (len(s) - 1))))
    return s[k]


class AsyncLoad:
    """Closed-loop load from `concurrency` aiohttp tasks until `stop` is set or the
    duration ends; records latency, status codes and the served-model-name header."""

    def __init__(self, url: str, body: bytes, headers: dict[str, str], concurrency: int) -> None:
        self.url, self.body, self.headers, self.concurrency = url, body, headers, concurrency
        self.latencies_ms: list[float] = []
        self.statuses: dict[int, int] = {}
        self.served: dict[str, int] = {}
        self.errors = 0
        self.samples: list[str] = []
        self.stop = asyncio.Event()

    def _sample(self, text: str) -> None:
        if len(self.samples) < 5:
            self.samples.append(text[:300])

    async def _one(self, session) -> None:
        import aiohttp

        while not self.stop.is_set():
            t0 = time.perf_counter()
            try:
                async with session.post(self.url, data=self.body, headers=self.headers) as r:
                    data = await r.read()
                    self.statuses[r.status] = self.statuses.get(r.status, 0) + 1
                    name = r.headers.get("served-model-name")
                    if name:
                        self.served[name] = self.served.get(name, 0) + 1
                    if r.status >= 400:
                        self._sample(f"{r.status} {data.decode(errors='replace')}")
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
                self.errors += 1
                self._sample(f"{type(e).__name__}: {e}")
                continue
            self.latencies_ms.append((time.perf_counter() - t0) * 1000.0)

    async def run(self, duration_s: float | None = None) -> LoadResult:
        import aiohttp

        conn = aiohttp.TCPConnector(limit=self.concurrency, force_close=False)
        timeout = aiohttp.ClientTimeout(total=60)
        t0 = time.perf_counter()
        async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
            tasks = [asyncio.ensure_future(self._one(session)) for _ in range(self.concurrency)]
            if duration_s is not None:
                try:
                    await asyncio.wait_for(self.stop.wait(), duration_s)
                except asyncio.TimeoutError:
                    self.stop.set()
            await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t0
        n = sum(self.statuses.values())
        non2xx = sum(c for s, c in self.statuses.items() if s >= 400)
        return LoadResult(requests=n, duration_s=elapsed, rps=n / elapsed if elapsed else 0.0,
                          p50_ms=percentile(self.latencies_ms, 50), p99_ms=percentile(self.latencies_ms, 99),
                          non2xx=non2xx, errors=self.errors, tool="python-aiohttp",
                          statuses=dict(self.statuses), samples=list(self.samples))


def run_async_load(url: str, body: bytes, headers: dict[str, str], concurrency: int,
                   duration_s: float) -> LoadResult:
    return asyncio.run(AsyncLoad(url, body, headers, concurrency).run(duration_s))
