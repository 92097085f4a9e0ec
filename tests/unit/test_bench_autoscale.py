"""The autoscaling bench's pure summary: replica-seconds, time to scale up and down, per-phase
latency and failures from a recorded run."""

from bench.autoscale import summarize


def test_summary_of_a_step_run():
    run = {"phases": [("c=1", 1, 10), ("c=32", 32, 20), ("c=1 again", 1, 10), ("idle", 0, 30)],
           "bounds": {"c=32": (10.0, 30.0)},
           "reqs": [("c=1", 0, 5.0, 200), ("c=32", 11, 50.0, 200), ("c=32", 12, 70.0, 503)],
           "samples": [(0, 2, 2), (10.5, 2, 4), (12, 3, 4), (15, 4, 4), (31, 4, 4), (61, 2, 2), (70, 2, 2)]}
    s = summarize(run, "c=32")
    assert s["replica_s"] == 2 * 12 + 3 * 3 + 4 * 46 + 2 * 9
    assert (s["decided_s"], s["up_s"], s["down_s"]) == (0.5, 5, 31)
    assert (s["low"], s["top"], s["failed"]) == (2, 4, 1)
    assert s["per_phase"]["c=32"] == (2, 50.0, 50.0)    # latency of the answered requests only


def test_a_fixed_count_has_no_scaling_times():
    run = {"phases": [("c=32", 32, 5)], "bounds": {"c=32": (0.0, 5.0)}, "reqs": [],
           "samples": [(0, 4, 4), (3, 4, 4), (6, 4, 4)]}
    s = summarize(run, "c=32")
    assert (s["up_s"], s["down_s"], s["decided_s"]) == (None, None, None)
