"""Look-ups in the MLflow model registry over its REST API (no MLflow import needed)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from ladle.schemas.errors import ApiError, invalid
from ladle.support.retry import retrying

# Where a read (GET) is sent again: the connection was refused, or closed or reset under the
# request (a registry child that crashed and is started again by the next connection; a
# pooled connection closed by the registry at the moment it was reused).
RESENDABLE = (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    source: str
    run_id: str | None
    status: str


class Registry:
    """`cached`: the registry is ladle's own, which only this server writes to (through its
    MLflow proxy, whose client calls `changed()` around every write): READY versions and their
    download URIs are kept, so an endpoint created on a version seen before does not wake a
    registry that stopped while idle. Any write through the proxy forgets them all."""

    def __init__(self, tracking_uri: str, token: str | None, cached: bool = False) -> None:
        self.tracking_uri = tracking_uri.rstrip("/")
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.AsyncClient(base_url=self.tracking_uri, headers=headers, timeout=30.0)
        self._cached = cached
        self._seen: dict[tuple[str, str, str], object] = {}
        self._generation = 0   # a read that a write overlapped is not kept

    def changed(self) -> None:
        """A write reached (or is about to reach) the registry: forget what was kept."""
        self._generation += 1
        self._seen.clear()

    async def _kept(self, key: tuple[str, str, str], fetch, keep) -> object:
        if key in self._seen:
            return self._seen[key]
        gen = self._generation
        got = await fetch()
        if self._cached and keep(got) and gen == self._generation:
            self._seen[key] = got
        return got

    async def get_version(self, name: str, version: str | None, field: str = "entity_name") -> ModelVersion:
        if not version:
            raise invalid(f"{field.replace('name', 'version')}: a version is required for model '{name}'")
        return await self._kept(("version", name, str(version)), lambda: self._get_version(name, version, field),
                                lambda mv: mv.status == "READY")   # type: ignore[return-value]

    async def _get_version(self, name: str, version: str, field: str) -> ModelVersion:
        r = await self._get("/api/2.0/mlflow/model-versions/get", {"name": name, "version": version})
        if r.status_code == 404 or (r.status_code == 400 and "RESOURCE_DOES_NOT_EXIST" in r.text):
            raise invalid(f"{field}: model '{name}' version '{version}' does not exist in the registry")
        if r.status_code >= 400:
            raise invalid(f"{field}: could not look up model '{name}' version '{version}': {r.text[:200]}")
        mv = r.json().get("model_version", {})
        return ModelVersion(
            name=mv.get("name", name), version=str(mv.get("version", version)),
            source=mv.get("source", ""), run_id=mv.get("run_id"), status=mv.get("status", "READY"),
        )

    async def download_uri(self, name: str, version: str) -> str:
        """Where the version's files are (`mlflow-artifacts:/<path>` on ladle's registry)."""
        return await self._kept(("uri", name, str(version)), lambda: self._download_uri(name, version),
                                bool)   # type: ignore[return-value]

    async def _download_uri(self, name: str, version: str) -> str:
        r = await self._get("/api/2.0/mlflow/model-versions/get-download-uri", {"name": name, "version": version})
        if r.status_code >= 400:
            raise invalid(f"could not find where model '{name}' version '{version}' is stored: {r.text[:200]}")
        return str(r.json().get("artifact_uri", ""))

    async def _get(self, path: str, params: dict, wait_s: float = 60.0) -> httpx.Response:
        """GET with retries while the registry is starting (connection refused) or its
        connection failed under the request (a read: sending it again is harmless)."""
        try:
            return await retrying(RESENDABLE, within=wait_s, delay=0.5)(self._client.get, path, params=params)
        except httpx.HTTPError as e:
            raise ApiError("TEMPORARILY_UNAVAILABLE", f"The model registry at "
                           f"{self.tracking_uri} is not reachable: {e}", 503) from e

    async def aclose(self) -> None:
        await self._client.aclose()
