"""MLflow's deployments client (`get_deploy_client("databricks")`) with DATABRICKS_HOST and
DATABRICKS_TOKEN pointing at ladle: the whole endpoint lifecycle."""

from __future__ import annotations

import time

import pytest

from e2e_support import entity

EP = "mlflow-ep"


def _wait(client, name: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        ep = client.get_endpoint(name)
        if ep["state"]["config_update"] != "IN_PROGRESS":
            return ep
        assert time.monotonic() < deadline, f"{name} still updating: {ep}"
        time.sleep(0.5)


def test_deployments_client_lifecycle(databricks_env, models, sample, v1_model, v2_model):
    from mlflow.deployments import get_deploy_client
    from mlflow.exceptions import MlflowException
    from requests.exceptions import HTTPError

    client = get_deploy_client("databricks")
    created = client.create_endpoint(name=EP, config={"served_entities": [entity("1")]})
    try:
        assert created["name"] == EP
        ep = _wait(client, EP)
        assert ep["state"] == {"ready": "READY", "config_update": "NOT_UPDATING"}
        assert EP in [e["name"] for e in client.list_endpoints()]

        records = sample.to_dict(orient="records")
        out = client.predict(endpoint=EP, inputs={"dataframe_records": records})
        assert out["predictions"] == v1_model.predict(sample).tolist()
        split = sample.to_dict(orient="split")
        out = client.predict(endpoint=EP, inputs={"dataframe_split": {"columns": split["columns"],
                                                                      "data": split["data"]}})
        assert out["predictions"] == v1_model.predict(sample).tolist()

        updated = client.update_endpoint_config(EP, config={"served_entities": [entity("2")]})
        assert updated["name"] == EP
        ep = _wait(client, EP)
        assert ep["state"]["config_update"] == "NOT_UPDATING"
        assert [e["entity_version"] for e in ep["config"]["served_entities"]] == ["2"]
        out = client.predict(endpoint=EP, inputs={"dataframe_records": records})
        assert out["predictions"] == v2_model.predict(sample).tolist()

        # The deprecated update_endpoint() with a full config goes to /config as well.
        client.update_endpoint(EP, config={"served_entities": [entity("1")]})
        ep = _wait(client, EP)
        assert [e["entity_version"] for e in ep["config"]["served_entities"]] == ["1"]
        assert ep["config"]["config_version"] == 3
    finally:
        client.delete_endpoint(EP)
    assert EP not in [e["name"] for e in client.list_endpoints()]
    with pytest.raises((MlflowException, HTTPError)) as exc:
        client.get_endpoint(EP)
    assert "404" in str(exc.value) and "RESOURCE_DOES_NOT_EXIST" in str(exc.value)
