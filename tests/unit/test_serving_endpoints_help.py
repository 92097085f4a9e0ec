"""`ladle serving-endpoints <command> -h` shows the JSON body's fields and examples, from the
models the server validates with; the create body's top-level form reads as the config form."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from ladle.api.bodies import validate
from ladle.cli.serving_endpoints import serving_endpoints
from ladle.cli.serving_endpoints_help import BODIES, body_help, body_model
from ladle.schemas import endpoints as s
from ladle.schemas.errors import ApiError

JSON_COMMANDS = sorted(name for name, cmd in serving_endpoints.commands.items()
                       if any(p.name == "json_body" for p in cmd.params) and not cmd.hidden)


def _help(command: str) -> str:
    result = CliRunner().invoke(serving_endpoints, [command, "-h"])
    assert result.exit_code == 0, result.output
    return result.output


def test_every_json_command_documents_its_body() -> None:
    assert "create" in JSON_COMMANDS and "put-ai-gateway" in JSON_COMMANDS
    assert set(JSON_COMMANDS) <= set(BODIES)
    for command in JSON_COMMANDS:
        out = _help(command)
        assert "JSON body (--json):" in out and "Example, " in out, command


def test_create_help_names_fields_types_required_and_enums() -> None:
    out = _help("create")
    lines = out.splitlines()
    assert "  name  string  (required)" in lines
    assert "  config.served_entities[].entity_name  string" in lines
    assert "  config.traffic_config.routes[].traffic_percentage  integer  (required)" in lines
    assert any(line.startswith("  config.served_entities[].workload_size  string  one of: Small, Medium, Large")
               for line in lines)
    assert any("ai_gateway.rate_limits[].key  string  one of: endpoint, user" in line for line in lines)
    for kind in ("custom model", "pay-per-token foundation model", "provisioned throughput", "external model"):
        assert f"Example, {kind}" in out
    assert "may also be given at the top level" in out


def test_commands_without_a_body_show_none() -> None:
    assert "JSON body" not in _help("get")
    assert body_help("get") == ""


@pytest.mark.parametrize("command", sorted(c for c in BODIES if BODIES[c][0] is not None))
def test_every_example_is_accepted_by_the_servers_model(command: str) -> None:
    model, (_, _, examples) = body_model(command), BODIES[command]
    for _, body in examples:
        if command == "create":   # the skill's form: config fields beside the positional name
            body = s.lift_config_fields({"name": "ep", **body})
        validate(model, body)


def test_top_level_form_reads_as_the_config_form() -> None:
    entities = [{"entity_name": "main.default.iris", "entity_version": "1", "workload_size": "Small"}]
    traffic = {"routes": [{"served_entity_name": "iris-1", "traffic_percentage": 100}]}
    top = s.lift_config_fields({"name": "ep", "served_entities": entities, "traffic_config": traffic,
                                "tags": [{"key": "a", "value": "b"}]})
    wrapped = {"name": "ep", "config": {"served_entities": entities, "traffic_config": traffic},
               "tags": [{"key": "a", "value": "b"}]}
    assert top == wrapped
    assert validate(s.CreateEndpointRequest, top) == validate(s.CreateEndpointRequest, wrapped)
    # other config fields given in config stay; the top-level ones join them
    both = s.lift_config_fields({"name": "ep", "served_entities": entities, "config": {"traffic_config": traffic}})
    assert both == {"name": "ep", "config": wrapped["config"]}


@pytest.mark.parametrize("field", ["served_entities", "traffic_config", "served_models", "auto_capture_config"])
def test_a_field_in_both_forms_is_a_400_naming_it(field: str) -> None:
    with pytest.raises(ApiError) as e:
        s.lift_config_fields({"name": "ep", field: {}, "config": {field: {}}})
    assert e.value.status == 400 and e.value.message.startswith(f"{field}: given both at the top level")


def test_not_an_object_is_left_for_validation() -> None:
    assert s.lift_config_fields([1]) == [1]
    assert s.lift_config_fields({"name": "ep", "served_entities": [], "config": "x"})["config"] == "x"
