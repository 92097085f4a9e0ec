"""Writing `~/.databrickscfg` (or `DATABRICKS_CONFIG_FILE`) the way the Databricks CLI does.

ConfigUpdater edits the file in place, so other profiles, comments and key order survive. A new
file starts with the CLI's comment and an empty `[DEFAULT]` section; the first profile with a
host becomes `[__settings__] default_profile`; the previous content is kept as `<file>.bak`.
Both files are written 0600 (the file holds tokens), atomically.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from configupdater import ConfigUpdater
from configupdater.parser import ParsingError

SETTINGS = "__settings__"
DEFAULT_PROFILE_KEY = "default_profile"
DEFAULT_COMMENT = (
    "; The profile defined in the DEFAULT section is to be used as a fallback when no profile is "
    "explicitly specified.\n"
)
# Every credential key of the SDKs' config attributes: a new login/configure clears the others.
AUTH_KEYS = (
    "token", "username", "password", "client_id", "client_secret", "auth_type", "databricks_cli_path",
    "azure_client_id", "azure_client_secret", "azure_tenant_id", "azure_use_msi", "google_credentials",
    "google_service_account", "metadata_service_url", "oidc_token_env", "databricks_id_token_filepath",
    "scopes", "azure_workspace_resource_id",
)


class ConfigFileError(Exception):
    pass


def load(path: Path) -> ConfigUpdater:
    updater = ConfigUpdater(allow_no_value=True)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = DEFAULT_COMMENT + "[DEFAULT]\n"
    except OSError as exc:
        raise ConfigFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        updater.read_string(text)
    except (ParsingError, ValueError) as exc:
        raise ConfigFileError(f"cannot parse config file {path}: {exc}") from exc
    return updater


def profiles(updater: ConfigUpdater) -> list[tuple[str, dict[str, str]]]:
    """(name, keys) of each section but `[__settings__]`, in file order."""
    out = []
    for section in updater.iter_sections():
        if section.name == SETTINGS:
            continue
        out.append((section.name, {k.lower(): (o.value or "").strip() for k, o in section.items()}))
    return out


def configured_default(updater: ConfigUpdater) -> str:
    if updater.has_option(SETTINGS, DEFAULT_PROFILE_KEY):
        value = (updater[SETTINGS][DEFAULT_PROFILE_KEY].value or "").strip()
        return "" if value == SETTINGS else value
    return ""


def _section(updater: ConfigUpdater, name: str):  # noqa: ANN202 - configupdater's Section
    if not updater.has_section(name):
        sections = updater.sections()
        updater.add_section(name)
        if sections:
            last = updater[sections[-1]]
            if last.last_block is None or type(last.last_block).__name__ != "Space":
                updater[name].add_before.space()
    return updater[name]


def _set(section, key: str, value: str) -> None:  # noqa: ANN001 - configupdater's Section
    """Set a key; a new one goes after the section's last key (before its trailing blank line)."""
    if section.has_option(key):
        section[key] = value
        return
    options = [b for b in section.iter_blocks() if type(b).__name__ == "Option"]
    if options:
        options[-1].add_after.option(key, value)
    else:
        section[key] = value


def _write(path: Path, updater: ConfigUpdater) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = str(updater)
    if not text.endswith("\n"):
        text += "\n"
    if path.exists():
        _atomic(path.with_name(path.name + ".bak"), path.read_bytes())
    _atomic(path, text.encode("utf-8"))


def _atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # created 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_profile(path: Path, name: str, values: Mapping[str, str], clear: Iterable[str] = AUTH_KEYS) -> None:
    """Set `values` in profile `name` (created when absent), dropping the `clear` keys first."""
    if name == SETTINGS:
        raise ConfigFileError(f'profile name "{SETTINGS}" is reserved for internal use')
    updater = load(path)
    first = not any("host" in keys for _, keys in profiles(updater))
    section = _section(updater, name)
    for key in clear:
        if key not in values and section.has_option(key):
            del section[key]
    for key, value in values.items():
        _set(section, key, value)
    if first:
        _set(_section(updater, SETTINGS), DEFAULT_PROFILE_KEY, name)
    _write(path, updater)


def set_default(path: Path, name: str) -> None:
    if name == SETTINGS:
        raise ConfigFileError(f'profile name "{SETTINGS}" is reserved for internal use')
    updater = load(path)
    _set(_section(updater, SETTINGS), DEFAULT_PROFILE_KEY, name)
    _write(path, updater)


def delete_profile(path: Path, name: str) -> None:
    """Remove the section (`[DEFAULT]` is emptied, not removed) and a default_profile naming it."""
    updater = load(path)
    if not updater.has_section(name):
        raise ConfigFileError(f'profile "{name}" not found')
    if name == "DEFAULT":
        for key in list(updater[name].keys()):
            del updater[name][key]
    else:
        updater.remove_section(name)
    if configured_default(updater) == name:
        del updater[SETTINGS][DEFAULT_PROFILE_KEY]
    _write(path, updater)
