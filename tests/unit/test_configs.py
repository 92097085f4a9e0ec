import pytest

from ladle.control.configs import build_config, replicas_for
from ladle.schemas.endpoints import EndpointCoreConfigInput
from ladle.schemas.errors import ApiError


def build(body, previous=None):
    return build_config(EndpointCoreConfigInput.model_validate(body), "a" * 32, 1, "me", 5, previous)


def test_default_name_and_route():
    c = build({"served_entities": [{"entity_name": "main.default.churn", "entity_version": 3}]})
    e = c["served_entities"][0]
    assert e["name"] == "churn-3" and e["entity_version"] == "3"
    assert c["traffic_config"]["routes"] == [
        {"served_model_name": "churn-3", "served_entity_name": "churn-3", "traffic_percentage": 100}]


def test_legacy_served_models_and_string_percentages():
    c = build({"served_models": [{"model_name": "a", "model_version": "1", "scale_to_zero_enabled": True},
                                 {"model_name": "a", "model_version": "2", "scale_to_zero_enabled": True}],
               "traffic_config": {"routes": [{"served_model_name": "a-1", "traffic_percentage": "90"},
                                             {"served_model_name": "a-2", "traffic_percentage": "10"}]}})
    assert c["legacy_served_models"] and [r["traffic_percentage"] for r in c["traffic_config"]["routes"]] == [90, 10]


@pytest.mark.parametrize("body, field", [
    ({"served_entities": []}, "served_entities"),
    ({"served_entities": [{"entity_name": "a", "entity_version": "1"}] * 2}, "duplicate"),
    ({"served_entities": [{"entity_name": "a", "entity_version": str(i)} for i in range(16)]}, "at most 15"),
    ({"served_entities": [{"entity_name": "a", "entity_version": "1"}, {"entity_name": "a", "entity_version": "2"}]},
     "traffic_config"),
    ({"served_entities": [{"entity_name": "a", "entity_version": "1"}, {"entity_name": "a", "entity_version": "2"}],
      "traffic_config": {"routes": [{"served_entity_name": "a-1", "traffic_percentage": 50},
                                    {"served_entity_name": "a-2", "traffic_percentage": 40}]}}, "sum to 100"),
    ({"served_entities": [{"entity_name": "a", "entity_version": "1"}],
      "traffic_config": {"routes": [{"served_entity_name": "zzz", "traffic_percentage": 100}]}}, "zzz"),
])
def test_invalid_configs_name_the_problem(body, field):
    with pytest.raises(ApiError) as e:
        build(body)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE" and field in e.value.message


def test_replica_sizing():
    assert replicas_for({"workload_size": "Small"}, 8) == (1, 4)
    n, conc = replicas_for({"workload_size": "Large"}, 2)
    assert n == 2 and n * conc >= 64
