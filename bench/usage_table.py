"""`python -m bench.usage_table [--rows N]`: how long `ladle usage` takes to summarise a usage
table of N rows (default 1,000,000), written as the gateway writes it (appends, then
compaction), in a temporary directory. Prints, side by side in one run, the time of
`summarize_usage` (DuckDB over the Delta table's Parquet files: the needed columns only,
aggregated as they stream) and of loading the whole table into memory and grouping it
there, for each group_by and for one endpoint's rows, and the memory each way takes."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path


def _write(root: Path, rows: int, chunk: int = 100_000) -> None:
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    from ladle.telemetry.tables import arrow_schema
    from ladle.telemetry.usage import USAGE_TABLE, usage_path

    schema = arrow_schema(USAGE_TABLE)
    path = usage_path(root)
    path.mkdir(parents=True)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for base in range(0, rows, chunk):
        n = min(chunk, rows - base)
        ids = range(base, base + n)
        cols = {
            "account_id": ["ladle"] * n, "workspace_id": ["0"] * n,
            "served_entity_id": [f"se{i % 20}" for i in ids], "client_request_id": [None] * n,
            "databricks_request_id": [f"r{i}" for i in ids], "requester": [f"user{i % 50}" for i in ids],
            "status_code": [500 if i % 97 == 0 else 200 for i in ids],
            "request_time": [start + timedelta(seconds=i * 3) for i in ids],
            "input_token_count": [i % 300 for i in ids], "output_token_count": [i % 700 for i in ids],
            "input_character_count": [i % 1200 for i in ids], "output_character_count": [i % 2800 for i in ids],
            "usage_context": [[]] * n, "request_streaming": [i % 2 == 0 for i in ids],
            "endpoint_name": [f"ep{i % 20}" for i in ids], "endpoint_id": [f"id{i % 20}" for i in ids],
            "served_entity_name": [f"ep{i % 20}-1" for i in ids],
            "request_size_bytes": [100 + i % 50 for i in ids], "response_size_bytes": [300 + i % 90 for i in ids],
            "execution_duration_ms": [5 + i % 40 for i in ids],
        }
        write_deltalake(str(path), pa.table(cols, schema=schema), mode="append")
    DeltaTable(str(path)).optimize.compact()


def _full_load(root: Path, group_by: str, endpoint: str | None) -> list[dict]:
    """The whole table in memory, filtered and grouped there (what `ladle usage` did before)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    from ladle.telemetry.usage import GROUP_BY, SUMS, usage_path

    table = DeltaTable(str(usage_path(root))).to_pyarrow_table()
    if endpoint is not None:
        table = table.filter(pc.equal(table["endpoint_name"], endpoint))
    day = pc.cast(table["request_time"], pa.timestamp("us")).cast(pa.date32()).cast(pa.string())
    errors = pc.cast(pc.greater_equal(table["status_code"], 400), pa.int64())
    t = table.append_column("day", day).append_column("error", errors)
    return t.group_by(GROUP_BY[group_by]).aggregate(
        [("databricks_request_id", "count"), ("error", "sum")] + [(c, "sum") for c in SUMS]).to_pylist()


def _peak_rss_mib(root: Path, how: str) -> float:
    """Peak RSS of a fresh process that imports both ways' libraries, then runs one
    `group_by=endpoint` summary `how` (the same imports: the difference is the query's)."""
    query = "summarize_usage(root, 'endpoint')" if how == "fast" else "_full_load(root, 'endpoint', None)"
    # VmHWM, not ru_maxrss: a child's ru_maxrss starts at its parent's (this process holds the
    # rows it wrote), the high-water mark of its own address space does not
    code = ("import re; from pathlib import Path; import duckdb, deltalake, pyarrow.compute; "
            "from bench.usage_table import _full_load; from ladle.telemetry.usage import summarize_usage; "
            f"root = Path({str(root)!r}); {query}; "
            "print(int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1]) / 1024)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _time(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()

    from ladle.telemetry.usage import summarize_usage

    with tempfile.TemporaryDirectory(prefix="ladle-bench-usage-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        _write(root, args.rows)
        print(f"usage table: {args.rows:,} rows written in {time.perf_counter() - t0:.1f} s")
        print(f"{'query':<28}{'summarize_usage':>17}{'full load':>12}{'ratio':>8}")
        for group_by, endpoint in (("endpoint", None), ("requester", None), ("day", None), ("day", "ep3")):
            fast = _time(lambda: summarize_usage(root, group_by, endpoint), args.reps)
            full = _time(lambda: _full_load(root, group_by, endpoint), args.reps)
            label = f"group_by={group_by}" + (f" endpoint={endpoint}" if endpoint else "")
            print(f"{label:<28}{fast * 1000:>14.0f} ms{full * 1000:>9.0f} ms{full / fast:>7.1f}x")
        fast_mib, full_mib = _peak_rss_mib(root, "fast"), _peak_rss_mib(root, "full")
        print(f"{'peak RSS, group_by=endpoint':<28}{fast_mib:>13.0f} MiB{full_mib:>8.0f} MiB"
              f"{full_mib / fast_mib:>7.1f}x")


if __name__ == "__main__":
    main()
