"""The Query tab of an agent endpoint (agent/v1/responses, an MLflow ResponsesAgent using MLflow
Tracing): the playground speaks the Responses API and, after the answer, shows the request's
trace read back through ladle's MLflow proxy: the agent's own span under ladle's replica span,
each with its duration."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from ladle.testing.model_code import TRACED_AGENT_CODE
from ladle.testing.process import LadleProcess
from ladle.testing.waiting import wait_until

from web_support import sign_in

AGENT = "main.default.web_traced_agent"
EP = "agent-ui"


@pytest.fixture(scope="module")
def agent_ep(ladle: LadleProcess, tmp_path_factory):
    work = tmp_path_factory.mktemp("agent-ui")
    # registered in a process of its own: MLflow's client must not run beside Playwright's loop
    code = ("from pathlib import Path; from ladle.testing.registry import register_code_model; "
            f"register_code_model({ladle.url!r}, {ladle.admin_token!r}, {AGENT!r}, {TRACED_AGENT_CODE!r}, "
            f"Path({str(work)!r}))")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300, cwd=work,
                   env={**os.environ, "HOME": str(work)}, capture_output=True)
    with ladle.client(timeout=60) as api:
        r = api.post("/api/2.0/mlflow/experiments/create", json={"name": "agent-ui-" + secrets.token_hex(4)})
        assert r.status_code == 200, r.text
        exp = r.json()["experiment_id"]
        r = api.post("/api/2.0/serving-endpoints", json={
            "name": EP, "config": {"served_entities": [{
                "entity_name": AGENT, "entity_version": "1", "workload_size": "Small",
                "scale_to_zero_enabled": False, "environment_vars": {"MLFLOW_EXPERIMENT_ID": exp}}]},
            "telemetry_config": {"enabled_telemetry_features": ["TELEMETRY_FEATURE_TRACES"]}})
        assert r.status_code == 200, r.text
        ep = wait_until(lambda: (e := api.get(f"/api/2.0/serving-endpoints/{EP}").json())["state"]["config_update"]
                        != "IN_PROGRESS" and e, 240, 0.25, what=f"{EP} to settle")
        assert ep["state"] == {"ready": "READY", "config_update": "NOT_UPDATING"}, ep["state"]
        yield ep
        api.delete(f"/api/2.0/serving-endpoints/{EP}")


def test_agent_playground_speaks_responses_and_shows_the_trace(page, ladle: LadleProcess, agent_ep,
                                                               shots: Path):
    from playwright.sync_api import expect

    assert agent_ep["task"] == "agent/v1/responses"
    sign_in(page, ladle.admin_token)
    page.goto(f"/ui/endpoints/{EP}")
    page.get_by_role("tab", name="Query").click()
    expect(page.get_by_role("heading", name="Agent (Responses API)")).to_be_visible()
    box = page.get_by_role("textbox", name="Message")
    box.fill("weather?")
    box.press("Enter")
    expect(page.locator("#chat-log .msg-assistant .msg-text").last).to_have_text("it is sunny")
    rows = page.locator("#trace-spans tbody tr")
    expect(page.locator('#trace-spans tr[data-span="lookup"]')).to_be_visible(timeout=30_000)
    names = rows.evaluate_all("rs => rs.map(r => [r.dataset.span, r.children[0].style.paddingLeft])")
    order = [n for n, _ in names]
    # depth-first: the request span, then replica, then the agent's predict span, then lookup
    assert order[0] == "POST /serving-endpoints/responses", order
    assert order.index("replica") < order.index("lookup") and order[-1] == "lookup", order
    depth = {n: float(re.sub("rem", "", pad)) for n, pad in names}
    assert depth["lookup"] > depth["replica"] > depth[order[0]]
    expect(page.locator('#trace-spans tr[data-span="lookup"] td').nth(1)).to_have_text(re.compile(r"^\d+\.\d ms$"))
    page.get_by_role("button", name="openai").click()
    expect(page.locator("#snippet")).to_contain_text("client.responses.create(")
    page.screenshot(path=str(shots / "agent-trace.png"), full_page=True)
