"""Credentials for Ray Serve replicas that fetch their model themselves.

A replica on a node other than the preparing server's downloads its model version from the
registry over HTTP, through ladle's MLflow proxy, with a token of its own: a short-lived
JWT signed with ladle's OAuth keys (control/oauth_keys.py) whose `ladle_model` claim names
one model version and its artifact path. Such a token reads that version's registry entry
and files and nothing else (gateway/scope.py); it names no user and is never the admin's
or the registry's own token. Any server sharing the database verifies it.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable
from urllib.parse import urlparse

TTL_S = 3600   # the owner mints a fresh one well before this (runtimes/ray.py)


def artifacts_path(download_uri: str) -> str:
    """The path on MLflow's artifact proxy of a `mlflow-artifacts:` download URI ("" for any
    other store: the replica then reads only the registry entry through ladle)."""
    u = urlparse(download_uri)
    if u.scheme != "mlflow-artifacts":
        return ""
    return u.path.strip("/")


class ReplicaTokens:
    """issue(name, version) -> a fetch token for that one model version."""

    def __init__(self, issue: Callable[[dict[str, Any], int], str],
                 download_uri: Callable[[str, str], Awaitable[str]], ttl_s: int = TTL_S) -> None:
        self._issue = issue
        self._download_uri = download_uri
        self.ttl_s = ttl_s

    async def __call__(self, name: str, version: str) -> str:
        artifacts = artifacts_path(await self._download_uri(name, version))
        return self._issue({"sub": f"replica:{name}/{version}",
                            "ladle_model": {"name": name, "version": version, "artifacts": artifacts}},
                           self.ttl_s)
