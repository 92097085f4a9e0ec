"""The embedded registry's process stops when nobody used it for LADLE_REGISTRY_IDLE_S, and
MLflow's own client, calling after it stopped, is answered (the call starts it again). A
server of its own (a short idle time): the slow tier."""

from __future__ import annotations

import secrets

import psutil

from ladle.testing.process import LadleProcess
from ladle.testing.registry import tracking

from e2e_support import wait_for


def registry_pids(srv: LadleProcess) -> set[int]:
    pids = set()
    for p in srv.descendants():
        try:
            if "ladle.runtimes.mlflow_gate" in " ".join(p.cmdline()) and p.status() != psutil.STATUS_ZOMBIE:
                pids.add(p.pid)
        except psutil.Error:
            pass
    return pids


def test_an_mlflow_client_call_after_the_registry_stopped_is_answered(tmp_path):
    srv = LadleProcess(tmp_path / "home", "dapi" + secrets.token_hex(16),
                       extra_env={"LADLE_REGISTRY_IDLE_S": "1", "LADLE_LOG_LEVEL": "info"})
    srv.start()
    try:
        from mlflow import MlflowClient

        with tracking(srv.url, srv.admin_token):
            MlflowClient().create_registered_model("naps")
            first = registry_pids(srv)
            assert len(first) == 1
            # idle 1 s, then its (and the server's pooled) connections close: keep-alive 15 s
            wait_for(lambda: "MLflow registry stopped" in srv.output(), 90, what="the idle registry to stop")
            assert not registry_pids(srv)
            got = MlflowClient().get_registered_model("naps")
        assert got.name == "naps"
        again = registry_pids(srv)
        assert len(again) == 1 and again != first
    finally:
        srv.stop()
