"""Results of one benchmark run and how they are shown: pure row builders (unit-tested)
and a thin rich renderer. Targets: the ratios against `mlflow models serve` ladle aims at
(README.md, "Reading the tables")."""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import median

from bench.load import LoadResult


@dataclass
class Cell:
    model: str
    rows: int
    concurrency: int
    server: str          # "ladle" | "mlflow"
    result: LoadResult


@dataclass
class Results:
    loadgen: str = ""
    ladle_server_start_s: float | None = None
    mlflow_startup_s: float | None = None
    ladle_ready_s: float | None = None
    throughput: list[Cell] = field(default_factory=list)
    cold_starts: list[tuple[float, int]] = field(default_factory=list)   # (seconds, status)
    memory: list[tuple[str, int, float, float | None]] = field(default_factory=list)  # what, pid, rss, uss
    overhead: dict | None = None    # ladle_p50, direct_p50, ladle_p99, direct_p99, n
    overhead_na: str | None = None
    update: dict | None = None      # result: LoadResult, served: {...}, update_s
    chat: dict | None = None        # ladle_p50, upstream_p50, ladle_p99, upstream_p99, n
    chat_na: str | None = None
    identical: list[tuple[str, bool, str]] = field(default_factory=list)
    log_findings: list[tuple[str, str, int]] = field(default_factory=list)   # log, message, count
    notes: list[str] = field(default_factory=list)


def fmt_ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:.0f}"


def fmt_x(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}x"


def fmt_s(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f} s"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def find(cells: list[Cell], rows: int, conc: int, server: str, model: str = "rf") -> LoadResult | None:
    for c in cells:
        if (c.model, c.rows, c.concurrency, c.server) == (model, rows, conc, server):
            return c.result
    return None


THROUGHPUT_HEADER = ["model", "rows", "conc", "server", "req/s", "p50 ms", "p99 ms", "non-2xx",
                     "rps ladle/mlflow", "p50 ladle/mlflow"]


def throughput_rows(cells: list[Cell]) -> list[list[str]]:
    out = []
    for c in cells:
        r = c.result
        rps_ratio = p50_ratio = ""
        if c.server == "ladle":
            other = find(cells, c.rows, c.concurrency, "mlflow", c.model)
            if other is not None:
                rps_ratio = fmt_x(_ratio(r.rps, other.rps))
                p50_ratio = fmt_x(_ratio(r.p50_ms, other.p50_ms))
        out.append([c.model, str(c.rows), str(c.concurrency), c.server, f"{r.rps:.0f}", fmt_ms(r.p50_ms),
                    fmt_ms(r.p99_ms), str(r.failed), rps_ratio, p50_ratio])
    return out


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def target_rows(res: Results) -> list[list[str]]:
    """[target, measured, met|MISSED|n/a] for each target ladle aims at."""
    rows = []
    cells = res.throughput
    for conc, need in ((32, 20.0), (8, 10.0)):
        lad, mlf = find(cells, 1, conc, "ladle"), find(cells, 1, conc, "mlflow")
        ratio = _ratio(lad.rps if lad else None, mlf.rps if mlf else None)
        ok = None if ratio is None else ratio >= need
        measured = fmt_x(ratio)
        if conc == 32:
            p99 = lad.p99_ms if lad else None
            ok = None if ratio is None or p99 is None else (ok and p99 < 100.0)
            measured += f", ladle p99 {fmt_ms(p99)} ms"
        rows.append([f"RF 1-row, c={conc}: req/s >= {need:g}x mlflow"
                     + (", p99 < 100 ms" if conc == 32 else ""), measured, _met(ok)])
    c1 = [(rows_, _ratio(find(cells, rows_, 1, "ladle").p50_ms, find(cells, rows_, 1, "mlflow").p50_ms))
          for rows_ in sorted({c.rows for c in cells})
          if find(cells, rows_, 1, "ladle") and find(cells, rows_, 1, "mlflow")]
    c1 = [(r, v) for r, v in c1 if v is not None]
    rows.append(["c=1: p50 <= 0.7x mlflow", ", ".join(f"{r}-row {fmt_x(v)}" for r, v in c1) or "-",
                 _met(all(v <= 0.7 for _, v in c1) if c1 else None)])
    ov = res.overhead
    delta = ov["ladle_p50"] - ov["direct_p50"] if ov else None
    rows.append(["gateway overhead: p50 <= 1 ms over the replica", "-" if delta is None else f"{delta:.2f} ms",
                 _met(None if delta is None else delta <= 1.0)])
    a, b = res.ladle_ready_s, res.mlflow_startup_s
    rows.append(["create -> READY <= mlflow serve start-up", f"{fmt_s(a)} vs {fmt_s(b)}",
                 _met(None if a is None or b is None else a <= b)])
    cold = [s for s, st in res.cold_starts]
    ok_cold = None if not cold else (max(cold) <= 2.0 and all(st == 200 for _, st in res.cold_starts))
    rows.append(["cold start from zero <= 2 s to first answer",
                 "-" if not cold else f"median {median(cold):.2f} s, max {max(cold):.2f} s", _met(ok_cold)])
    up = res.update
    failed = up["result"].failed if up else None
    rows.append(["update-config under load: 0 failed requests",
                 "-" if up is None else f"{failed} failed of {up['result'].requests + up['result'].errors}",
                 _met(None if failed is None else failed == 0)])
    ch = res.chat
    added = ch["ladle_p50"] - ch["upstream_p50"] if ch else None
    rows.append(["streamed chat: <= 2 ms added to TTFT",
                 res.chat_na if ch is None and res.chat_na else ("-" if added is None else f"{added:.2f} ms"),
                 _met(None if added is None else added <= 2.0)])
    ids = res.identical
    n_ok = sum(1 for _, ok, _ in ids if ok)
    rows.append(["outputs identical to mlflow serve (batched or not)",
                 "-" if not ids else f"{n_ok}/{len(ids)} checks OK",
                 _met(all(ok for _, ok, _ in ids) if ids else None)])
    return rows


def render(console, title: str, header: list[str], rows: list[list[str]]) -> None:
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for h in header:
        t.add_column(h, justify="left" if h in ("model", "server", "what", "target", "check", "side") else "right")
    for r in rows:
        style = "red" if r and r[-1] in ("MISSED", "DIFF") else None
        t.add_row(*r, style=style)
    console.print(t)


def summary_tables(res: Results) -> list[tuple[str, list[str], list[list[str]]]]:
    """Every table of the final report, in order: (title, header, rows). Empty ones are left out."""
    out: list[tuple[str, list[str], list[list[str]]]] = []
    start = [[w, fmt_s(v)] for w, v in (
        ("mlflow models serve: process start -> /ping 200", res.mlflow_startup_s),
        ("ladle: create endpoint -> READY (random forest)", res.ladle_ready_s),
        ("ladle server start (incl. embedded MLflow registry; not compared)", res.ladle_server_start_s),
    ) if v is not None]
    if start:
        out.append(("Start-up", ["what", "seconds"], start))
    if res.throughput:
        out.append((f"Throughput and latency (load generator: {res.loadgen})", THROUGHPUT_HEADER,
                    throughput_rows(res.throughput)))
    if res.overhead:
        o = res.overhead
        out.append((f"Gateway overhead (no-op model, concurrency 1, {o['n']} requests)",
                    ["side", "p50 ms", "p99 ms"],
                    [["ladle HTTP gateway", f"{o['ladle_p50']:.3f}", f"{o['ladle_p99']:.3f}"],
                     ["replica socket directly", f"{o['direct_p50']:.3f}", f"{o['direct_p99']:.3f}"],
                     ["added by the gateway", f"{o['ladle_p50'] - o['direct_p50']:.3f}", ""]]))
    elif res.overhead_na:
        out.append(("Gateway overhead", ["side", "p50 ms", "p99 ms"], [[res.overhead_na, "", ""]]))
    if res.chat:
        c = res.chat
        out.append((f"Streamed chat, time to first token ({c['n']} requests)", ["side", "p50 ms", "p99 ms"],
                    [["ladle (external model)", f"{c['ladle_p50']:.2f}", f"{c['ladle_p99']:.2f}"],
                     ["upstream directly", f"{c['upstream_p50']:.2f}", f"{c['upstream_p99']:.2f}"],
                     ["added by ladle", f"{c['ladle_p50'] - c['upstream_p50']:.2f}", ""]]))
    elif res.chat_na:
        out.append(("Streamed chat, time to first token", ["side", "p50 ms", "p99 ms"], [[res.chat_na, "", ""]]))
    if res.cold_starts:
        out.append(("Cold start from zero (first request after the replica stopped)", ["rep", "seconds", "status"],
                    [[str(i + 1), f"{s:.2f}", str(st) if st else "timeout"]
                     for i, (s, st) in enumerate(res.cold_starts)]))
    if res.memory:
        out.append(("Resident memory", ["what", "pid", "RSS MiB", "USS MiB"],
                    [[w, str(pid), f"{rss:.0f}", "-" if uss is None else f"{uss:.0f}"]
                     for w, pid, rss, uss in res.memory]))
    if res.update:
        u, r = res.update, res.update["result"]
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(r.statuses.items()))
        served = ", ".join(f"{k}: {v}" for k, v in sorted(u["served"].items()))
        out.append((f"update-config under load (aiohttp, concurrency {u['concurrency']})",
                    ["answered", "non-2xx", "conn. errors", "statuses", "served-model-name", "update s"],
                    [[str(r.requests), str(r.non2xx), str(r.errors), statuses, served, f"{u['update_s']:.1f}"]]))
    if res.identical:
        out.append(("Outputs identical to mlflow serve", ["check", "detail", "result"],
                    [[n, d, "OK" if ok else "DIFF"] for n, ok, d in res.identical]))
    if res.log_findings:
        out.append(("Problems in ladle's logs during the run", ["log", "message", "count"],
                    [[lg, msg, str(n)] for lg, msg, n in res.log_findings[:15]]))
    out.append(("Targets", ["target", "measured", "result"], target_rows(res)))
    return out
