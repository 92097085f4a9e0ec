"""MLflow's OTLP span intake through ladle (`POST /v1/traces`, the experiment named by the
`x-mlflow-experiment-id` header): a request naming no experiment is a 400 naming the header, a
user without CAN_EDIT on the experiment a 403; neither reaches MLflow."""

from __future__ import annotations


def test_the_intake_needs_an_experiment_and_edit_on_it(client):
    r = client.post("/v1/traces", content=b"\x0a\x00", headers={"content-type": "application/x-protobuf"})
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "x-mlflow-experiment-id" in r.json()["message"]
    tok = client.post("/api/2.0/token-management/on-behalf-of/tokens",
                      json={"user_name": "otlp-writer", "comment": "intake"}).json()["token_value"]
    r = client.post("/v1/traces", content=b"\x0a\x00",
                    headers={"content-type": "application/x-protobuf", "x-mlflow-experiment-id": "5",
                             "Authorization": f"Bearer {tok}"})
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED", r.text
    assert client.post("/v1/traces", headers={"Authorization": ""}).status_code == 401
