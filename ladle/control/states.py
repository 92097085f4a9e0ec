"""Every state an endpoint or served entity can be in, and the allowed config_update transitions.

The reconciler is the only writer of these; API handlers only move an endpoint into
IN_PROGRESS when they record a new desired config.
"""

from __future__ import annotations

from enum import Enum

from ladle.schemas.replicas import GroupState


class Ready(str, Enum):
    READY = "READY"
    NOT_READY = "NOT_READY"


class ConfigUpdate(str, Enum):
    NOT_UPDATING = "NOT_UPDATING"
    IN_PROGRESS = "IN_PROGRESS"
    UPDATE_FAILED = "UPDATE_FAILED"
    UPDATE_CANCELED = "UPDATE_CANCELED"


class Deployment(str, Enum):
    CREATING = "DEPLOYMENT_CREATING"
    READY = "DEPLOYMENT_READY"
    FAILED = "DEPLOYMENT_FAILED"
    ABORTED = "DEPLOYMENT_ABORTED"
    RECOVERING = "DEPLOYMENT_RECOVERING"


CONFIG_UPDATE_TRANSITIONS: dict[ConfigUpdate, set[ConfigUpdate]] = {
    ConfigUpdate.NOT_UPDATING: {ConfigUpdate.IN_PROGRESS},
    ConfigUpdate.IN_PROGRESS: {
        ConfigUpdate.NOT_UPDATING, ConfigUpdate.UPDATE_FAILED, ConfigUpdate.UPDATE_CANCELED,
    },
    ConfigUpdate.UPDATE_FAILED: {ConfigUpdate.IN_PROGRESS},
    ConfigUpdate.UPDATE_CANCELED: {ConfigUpdate.IN_PROGRESS},
}

# How a replica group's state shows as a served entity's deployment state.
DEPLOYMENT_FOR_GROUP: dict[GroupState, Deployment] = {
    GroupState.BUILDING: Deployment.CREATING,
    GroupState.STARTING: Deployment.CREATING,
    GroupState.READY: Deployment.READY,
    GroupState.SCALED_TO_ZERO: Deployment.READY,
    GroupState.RECOVERING: Deployment.RECOVERING,
    GroupState.FAILED: Deployment.FAILED,
    GroupState.STOPPING: Deployment.ABORTED,
}


class InvalidTransition(Exception):
    pass


def check_config_update(old: ConfigUpdate, new: ConfigUpdate) -> ConfigUpdate:
    if old != new and new not in CONFIG_UPDATE_TRANSITIONS[old]:
        raise InvalidTransition(f"config_update {old.value} -> {new.value} is not allowed")
    return new

