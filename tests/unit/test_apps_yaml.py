"""app.yaml: command and env, valueFrom resolved from the app's resources, each mistake named."""

from __future__ import annotations

import pytest

from ladle.control.apps_yaml import AppYamlError, parse
from ladle.schemas.apps import CreateApp
from ladle.api.bodies import validate
from ladle.schemas.errors import ApiError

RESOURCES = [{"name": "serving-endpoint", "serving_endpoint": {"name": "churn", "permission": "CAN_QUERY"}},
             {"name": "key", "secret": {"scope": "s", "key": "k", "permission": "READ"}}]


def _parse(tmp_path, text, name="app.yaml"):
    (tmp_path / name).write_text(text)
    return parse(tmp_path, RESOURCES, {"DATABRICKS_HOST"}, lambda scope, key: f"value-of-{scope}/{key}")


def test_no_app_yaml_runs_python_app_py(tmp_path):
    assert parse(tmp_path, [], set(), lambda s, k: "") == (["python", "app.py"], {})


def test_value_and_value_from(tmp_path):
    cmd, env = _parse(tmp_path, "command: ['uvicorn', 'app:app']\nenv:\n"
                                "  - {name: SERVING_ENDPOINT, valueFrom: serving-endpoint}\n"
                                "  - {name: API_KEY, valueFrom: key}\n  - {name: N, value: 3}\n"
                                "  - {name: FLAG, value: true}\n", name="app.yml")
    assert cmd == ["uvicorn", "app:app"]
    assert env == {"SERVING_ENDPOINT": "churn", "API_KEY": "value-of-s/k", "N": "3", "FLAG": "true"}


@pytest.mark.parametrize("text,message", [
    ("env:\n  - {name: X, valueFrom: serving-endpiont}\n",
     "app.yaml: env[0].valueFrom (X): 'serving-endpiont' is not a resource of this app "
     "(its resources: key, serving-endpoint)"),
    ("env:\n  - {name: X, value: a, valueFrom: key}\n", "env[0] (X): exactly one of `value` or `valueFrom`"),
    ("env:\n  - {value: a}\n", "env[0]: each entry needs a `name`"),
    ("env:\n  - {name: 1X, value: a}\n", "env[0].name: '1X' is not an environment variable name"),
    ("env:\n  - {name: DATABRICKS_HOST, value: a}\n", "env[0].name: DATABRICKS_HOST is set by ladle"),
    ("env:\n  - {name: X, value: a, from: b}\n", "env[0]: unknown field 'from'"),
    ("env: {X: 1}\n", "env: must be a list"),
    ("command: []\n", "command: must be a non-empty list"),
    ("command: [python, {a: 1}]\n", "command: must be a non-empty list"),
    ("cmd: [x]\n", "unknown field 'cmd'"),
    ("- a\n", "must be a mapping"),
    ("env: [\n", "not valid YAML"),
])
def test_each_mistake_is_named(tmp_path, text, message):
    with pytest.raises(AppYamlError) as e:
        _parse(tmp_path, text)
    assert message in str(e.value)


@pytest.mark.parametrize("name,ok", [("ab", True), ("my-app-2", True), ("a" * 30, True), ("a", False),
                                     ("a" * 31, False), ("My-app", False), ("my_app", False),
                                     ("-ab", False), ("ab-", False), ("a b", False)])
def test_app_names(name, ok):
    if ok:
        assert validate(CreateApp, {"name": name}).name == name
    else:
        with pytest.raises(ApiError) as e:
            validate(CreateApp, {"name": name})
        assert e.value.message.startswith("name:")
