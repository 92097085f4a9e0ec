"""The embedded registry's look-ups are kept until a write goes through the MLflow proxy, so
an endpoint created on a version seen before does not wake a registry stopped while idle."""

import asyncio

import httpx

from ladle.api.mlflow_proxy import upstream_client
from ladle.entities.registry import Registry


class FakeMlflow:
    """Answers model-versions/get with a status it is told; counts the calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.status = "READY"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/model-versions/get"):
            self.calls += 1
            return httpx.Response(200, json={"model_version": {
                "name": request.url.params["name"], "version": request.url.params["version"],
                "source": "mlflow-artifacts:/m", "status": self.status}})
        if request.url.path.endswith("/get-download-uri"):
            self.calls += 1
            return httpx.Response(200, json={"artifact_uri": "mlflow-artifacts:/1/m"})
        return httpx.Response(200, json={})


def registry(fake: FakeMlflow, cached: bool) -> Registry:
    reg = Registry("http://mlflow.test", "t", cached=cached)
    reg._client = httpx.AsyncClient(base_url=reg.tracking_uri, transport=httpx.MockTransport(fake))
    return reg


def test_ready_versions_are_kept_until_a_write_goes_through_the_proxy():
    async def go():
        fake = FakeMlflow()
        reg = registry(fake, cached=True)
        proxy = upstream_client("http://mlflow.test", reg.changed)
        proxy._transport = httpx.MockTransport(fake)
        assert (await reg.get_version("m", "1")).status == "READY"
        assert await reg.download_uri("m", "1") == "mlflow-artifacts:/1/m"
        await reg.get_version("m", "1")
        await reg.download_uri("m", "1")
        assert fake.calls == 2                       # the second look-ups asked nobody
        await proxy.get("/api/2.0/mlflow/registered-models/get", params={"name": "m"})
        await reg.get_version("m", "1")
        assert fake.calls == 2                       # a read through the proxy changes nothing
        await proxy.post("/api/2.0/mlflow/model-versions/delete", json={"name": "m", "version": "1"})
        await reg.get_version("m", "1")
        assert fake.calls == 3                       # a write: asked again
    asyncio.run(go())


def test_versions_not_ready_and_a_registry_of_the_users_own_are_asked_every_time():
    async def go():
        fake = FakeMlflow()
        fake.status = "PENDING_REGISTRATION"
        reg = registry(fake, cached=True)
        await reg.get_version("m", "1")
        await reg.get_version("m", "1")
        assert fake.calls == 2
        fake.status = "READY"
        own = registry(fake, cached=False)
        await own.get_version("m", "1")
        await own.get_version("m", "1")
        assert fake.calls == 4
    asyncio.run(go())


def test_a_read_that_a_write_overlapped_is_not_kept():
    async def go():
        fake = FakeMlflow()
        reg = registry(fake, cached=True)
        real = reg._get_version

        async def overlapped(*a):
            got = await real(*a)
            reg.changed()                            # a write answered while this read was out
            return got
        reg._get_version = overlapped
        await reg.get_version("m", "1")
        reg._get_version = real
        await reg.get_version("m", "1")
        assert fake.calls == 2
    asyncio.run(go())
