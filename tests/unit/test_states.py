import pytest

from ladle.control.states import (
    ConfigUpdate, Deployment, InvalidTransition, check_config_update,
)


def test_update_cycle_allowed():
    s = check_config_update(ConfigUpdate.NOT_UPDATING, ConfigUpdate.IN_PROGRESS)
    assert check_config_update(s, ConfigUpdate.UPDATE_FAILED) == ConfigUpdate.UPDATE_FAILED
    assert check_config_update(ConfigUpdate.UPDATE_FAILED, ConfigUpdate.IN_PROGRESS) == ConfigUpdate.IN_PROGRESS


def test_cannot_finish_an_update_that_never_started():
    with pytest.raises(InvalidTransition):
        check_config_update(ConfigUpdate.NOT_UPDATING, ConfigUpdate.UPDATE_FAILED)


def test_enum_strings_are_the_wire_strings():
    assert [s.value for s in ConfigUpdate] == ["NOT_UPDATING", "IN_PROGRESS", "UPDATE_FAILED", "UPDATE_CANCELED"]
    assert Deployment.READY.value == "DEPLOYMENT_READY"
