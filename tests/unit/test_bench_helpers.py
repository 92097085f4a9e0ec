"""Pure helpers of the bench/ harness: wrk output parsing, log/metrics scraping, tables.
(The benchmark itself never runs in the suite.)"""

from __future__ import annotations

import pytest

from bench.clients import socket_path_from_logs
from bench.context import replica_count_from_metrics
from bench.load import LoadResult, parse_duration_ms, parse_wrk, percentile, wrk_script
from bench.report import Cell, Results, summary_tables, target_rows, throughput_rows

WRK_OUTPUT = """\
Running 10s test @ http://127.0.0.1:8080/serving-endpoints/bench-rf/invocations
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    15.32ms    4.12ms  80.11ms   75.00%
    Req/Sec     1.05k   120.33     1.40k    70.00%
  Latency Distribution
     50%   14.80ms
     75%   17.10ms
     90%   20.00ms
     99%    1.20s
  20934 requests in 10.01s, 4.12MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:   2091.41
Transfer/sec:    421.55KB
"""


def test_parse_wrk_reads_rate_percentiles_and_failures():
    r = parse_wrk(WRK_OUTPUT)
    assert r.requests == 20934
    assert r.duration_s == pytest.approx(10.01)
    assert r.rps == pytest.approx(2091.41)
    assert r.p50_ms == pytest.approx(14.8)
    assert r.p99_ms == pytest.approx(1200.0)
    assert (r.non2xx, r.errors, r.failed) == (7, 5, 12)
    assert r.tool == "wrk"


def test_parse_wrk_without_error_lines_counts_zero():
    out = "\n".join(line for line in WRK_OUTPUT.splitlines()
                    if "Socket errors" not in line and "Non-2xx" not in line)
    r = parse_wrk(out)
    assert (r.non2xx, r.errors) == (0, 0)


def test_parse_wrk_rejects_garbage():
    with pytest.raises(ValueError):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused")


@pytest.mark.parametrize("text,ms", [("812.00us", 0.812), ("1.20ms", 1.2), ("2.00s", 2000.0),
                                     ("1.50m", 90000.0), ("7ms", 7.0)])
def test_parse_duration_ms(text, ms):
    assert parse_duration_ms(text) == pytest.approx(ms)


def test_wrk_script_posts_file_with_escaped_headers(tmp_path):
    s = wrk_script(tmp_path / "b.json", {"Authorization": 'Bearer a"b', "Content-Type": "application/json"})
    assert f'io.open("{tmp_path / "b.json"}", "rb")' in s
    assert 'wrk.method = "POST"' in s
    assert 'wrk.headers["Authorization"] = "Bearer a\\"b"' in s


def test_percentile_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile(list(map(float, range(1, 101))), 99) == 99.0


def test_socket_path_from_logs_takes_the_last_replica():
    logs = ("2025-01-01T00:00:00Z loading mlflow_pyfunc model from /m\n"
            "model loaded in 1.20s; listening on /h/run/abc-1.sock (concurrency 4)\n"
            "2025-01-01T00:00:05Z [ladle] replica pid 12 exited with code 1; restarting\n"
            "model loaded in 1.10s; listening on /h/run/abc-2.sock (concurrency 4)\n")
    assert socket_path_from_logs(logs) == "/h/run/abc-2.sock"
    assert socket_path_from_logs("nothing here") is None


def test_replica_count_from_metrics():
    text = ('# HELP replica_count Running replicas\n# TYPE replica_count gauge\n'
            'replica_count{served_entity="bench_rf-1"} 0.0\nreplica_count{served_entity="other"} 2.0\n')
    assert replica_count_from_metrics(text, "bench_rf-1") == 0
    assert replica_count_from_metrics(text, "other") == 2
    assert replica_count_from_metrics(text, "missing") is None


def _lr(rps: float, p50: float, p99: float, non2xx: int = 0) -> LoadResult:
    return LoadResult(requests=int(rps * 10), duration_s=10.0, rps=rps, p50_ms=p50, p99_ms=p99,
                      non2xx=non2xx, errors=0, tool="wrk")


def _cells() -> list[Cell]:
    return [Cell("rf", 1, 1, "ladle", _lr(300, 3.0, 5.0)), Cell("rf", 1, 1, "mlflow", _lr(100, 9.0, 12.0)),
            Cell("rf", 1, 8, "ladle", _lr(1500, 5.0, 9.0)), Cell("rf", 1, 8, "mlflow", _lr(100, 80.0, 90.0)),
            Cell("rf", 1, 32, "ladle", _lr(2500, 12.0, 150.0, non2xx=3)),
            Cell("rf", 1, 32, "mlflow", _lr(100, 400.0, 500.0))]


def test_throughput_rows_put_ratios_on_ladle_rows():
    rows = throughput_rows(_cells())
    assert rows[0] == ["rf", "1", "1", "ladle", "300", "3.00", "5.00", "0", "3.00x", "0.33x"]
    assert rows[1][-2:] == ["", ""]
    assert rows[4][7] == "3"


def test_targets_mark_met_missed_and_na():
    res = Results(throughput=_cells(), ladle_ready_s=3.0, mlflow_startup_s=4.0,
                  overhead={"ladle_p50": 1.5, "direct_p50": 0.2, "ladle_p99": 2.0, "direct_p99": 0.3, "n": 10},
                  cold_starts=[(1.5, 200)], chat_na="n/a (external models not available)",
                  identical=[("1-row sequential", True, "20 inputs")])
    by_name = {r[0]: r for r in target_rows(res)}
    assert by_name["RF 1-row, c=32: req/s >= 20x mlflow, p99 < 100 ms"][2] == "MISSED"   # p99 150 ms
    assert by_name["RF 1-row, c=8: req/s >= 10x mlflow"][2] == "met"
    assert by_name["c=1: p50 <= 0.7x mlflow"][2] == "met"
    assert by_name["gateway overhead: p50 <= 1 ms over the replica"][2] == "MISSED"
    assert by_name["create -> READY <= mlflow serve start-up"][2] == "met"
    assert by_name["cold start from zero <= 2 s to first answer"][2] == "met"
    assert by_name["update-config under load: 0 failed requests"][2] == "n/a"
    assert by_name["streamed chat: <= 2 ms added to TTFT"][1:] == ["n/a (external models not available)", "n/a"]
    assert by_name["outputs identical to mlflow serve (batched or not)"][2] == "met"


def test_summary_tables_skip_what_was_not_measured():
    titles = [t for t, _, _ in summary_tables(Results(loadgen="wrk"))]
    assert titles == ["Targets"]


def test_log_findings_group_errors_and_summarize_tracebacks():
    from bench.logscan import findings

    text = (
        "ladle: serving on http://127.0.0.1:1\n"
        "2026-11-25 10:56:08,344 ERROR ladle.api: internal error on GET /x "
        "(request 000a8157-786c-4f62-b025-8be16c8716d4)\n"
        "Traceback (most recent call last):\n  File \"a.py\", line 1, in f\n    g()\n"
        "starlette.requests.ClientDisconnect\n"
        "2026-11-25 10:56:09,001 ERROR ladle.api: internal error on GET /x "
        "(request 03f87da3-1d13-481c-bb6e-54e28af7ce24)\n"
        "2026-11-25T11:00:00Z [ladle] replica pid 123 exited with code 1; restarting\n"
        "all good here\n")
    got = dict(findings(text))
    assert got["ERROR ladle.api: internal error on GET /x (request …)"] == 2
    assert got["exception: starlette.requests.ClientDisconnect"] == 1
    assert got["[ladle] replica pid N exited with code 1; restarting"] == 1
    assert len(got) == 3


def test_compare_outputs_reports_status_and_json_differences():
    from bench.parts_load import _compare

    same = [(200, b'{"predictions": [1, 0]}')]
    assert _compare(same, [(200, b'{"predictions":[1,0]}')]) == (True, "1 inputs")
    ok, detail = _compare([(200, b'{"predictions": [1]}'), (503, b"busy")],
                          [(200, b'{"predictions": [2]}'), (200, b'{"predictions": [0]}')])
    assert not ok
    assert "input 0: ladle" in detail and "input 1: status ladle 503 mlflow 200" in detail


def test_cold_start_timeout_is_shown_and_missed():
    res = Results(cold_starts=[(1.2, 200), (30.0, 0)])
    tables = {t: rows for t, _, rows in summary_tables(res)}
    cold = next(rows for t, rows in tables.items() if t.startswith("Cold start"))
    assert cold[1] == ["2", "30.00", "timeout"]
    target = next(r for r in tables["Targets"] if r[0].startswith("cold start"))
    assert target[2] == "MISSED"
