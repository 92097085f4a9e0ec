"""Filtered registry searches (api/mlflow_authz.py): a page is refilled from the next upstream
pages while more readable results exist, and its token goes on from where it stopped."""

from __future__ import annotations

import httpx
import pytest

from ladle.api.mlflow_authz import MAX_UPSTREAM_PAGES, UPSTREAM_PAGE, Authorizer
from ladle.control.registry_acl import RegistryAcl
from ladle.control.store import Store
from ladle.schemas.errors import ApiError
from ladle.schemas.principal import Principal

BOB = Principal("bob", groups=frozenset({"users"}))
ADMIN = Principal("root", is_admin=True)


class FakeRegistry:
    """MLflow's registered-models/search over `names`: offset tokens, as MLflow's SQL store."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.calls: list[dict] = []

    async def fetch(self, msg: dict) -> httpx.Response:
        self.calls.append(msg)
        start = int(msg.get("page_token") or 0)
        n = int(msg["max_results"])
        page = self.names[start:start + n]
        body: dict = {"registered_models": [{"name": x} for x in page]} if page else {}
        if start + n < len(self.names):
            body["next_page_token"] = str(start + n)
        return httpx.Response(200, json=body)


@pytest.fixture()
async def acl(tmp_path):
    acl = RegistryAcl(Store(f"sqlite:///{tmp_path / 'ladle.db'}"))
    for i in range(0, 50, 7):                       # bob may read m00, m07, ... m49 (8 models)
        await acl.update("registered-models", f"m{i:02d}", [("user_name", "bob", "CAN_READ")])
    return acl


def _names(body: dict) -> list[str]:
    return [m["name"] for m in body.get("registered_models", [])]


async def _all_pages(authz: Authorizer, fake: FakeRegistry, page_size: int) -> list[list[str]]:
    pages, msg = [], {"max_results": page_size}
    while True:
        status, body = await authz.search(BOB, "filter-models", msg, fake.fetch)
        assert status == 200
        pages.append(_names(body))
        if "next_page_token" not in body:
            return pages
        msg = {"max_results": page_size, "page_token": body["next_page_token"]}


async def test_pages_are_full_while_more_readable_results_exist(acl):
    fake = FakeRegistry([f"m{i:02d}" for i in range(50)])
    pages = await _all_pages(Authorizer(acl, None), fake, 3)   # type: ignore[arg-type]
    assert pages == [["m00", "m07", "m14"], ["m21", "m28", "m35"], ["m42", "m49"]]
    assert len(fake.calls) == 3                    # one whole upstream page per page of ours


async def test_nothing_readable_gives_an_empty_answer_not_an_error(acl):
    fake = FakeRegistry([f"x{i}" for i in range(10)])
    status, body = await Authorizer(acl, None).search(BOB, "filter-models", {}, fake.fetch)  # type: ignore[arg-type]
    assert (status, body) == (200, {})


async def test_a_long_unreadable_stretch_is_cut_short_with_a_token_that_goes_on(acl):
    names = [f"x{i:05d}" for i in range(MAX_UPSTREAM_PAGES * UPSTREAM_PAGE + 5)] + ["m07"]
    fake = FakeRegistry(names)
    authz = Authorizer(acl, None)  # type: ignore[arg-type]
    status, body = await authz.search(BOB, "filter-models", {"max_results": 1}, fake.fetch)
    assert status == 200 and _names(body) == [] and body["next_page_token"]
    assert len(fake.calls) == MAX_UPSTREAM_PAGES
    assert [n for page in await _all_pages(authz, fake, 1) for n in page] == ["m07"]


async def test_a_token_that_is_not_ours_goes_to_mlflow_and_a_forged_one_is_a_400(acl):
    fake = FakeRegistry([f"m{i:02d}" for i in range(50)])
    authz = Authorizer(acl, None)  # type: ignore[arg-type]
    status, body = await authz.search(BOB, "filter-models", {"page_token": "40"}, fake.fetch)
    assert _names(body) == ["m42", "m49"] and fake.calls[0]["page_token"] == "40"
    for forged in ("ladle1.bm90IGpzb24=", "ladle1.!!", 7):
        with pytest.raises(ApiError) as e:
            await authz.search(BOB, "filter-models", {"page_token": forged}, fake.fetch)
        assert e.value.status == 400 and "page_token" in e.value.message


async def test_upstream_errors_and_bad_page_sizes(acl):
    async def failing(msg: dict) -> httpx.Response:
        return httpx.Response(400, json={"error_code": "INVALID_PARAMETER_VALUE", "message": "bad filter"})

    authz = Authorizer(acl, None)  # type: ignore[arg-type]
    assert await authz.search(BOB, "filter-models", {"filter": "nonsense"}, failing) == \
        (400, {"error_code": "INVALID_PARAMETER_VALUE", "message": "bad filter"})
    for bad in ("many", -1):
        with pytest.raises(ApiError) as e:
            await authz.search(BOB, "filter-models", {"max_results": bad}, failing)
        assert e.value.status == 400 and "max_results" in e.value.message


async def test_runs_are_searched_only_in_readable_experiments(acl):
    await acl.update("experiments", "5", [("user_name", "bob", "CAN_READ")])
    authz = Authorizer(acl, None)  # type: ignore[arg-type]
    assert authz.narrow(BOB, {"experiment_ids": ["5", "6", "0"]}) == {"experiment_ids": ["5", "0"]}
    assert authz.narrow(BOB, {"experiment_ids": ["6"]}) is None
    assert authz.narrow(ADMIN, {"experiment_ids": ["6"]}) == {"experiment_ids": ["6"]}


def test_the_message_is_read_as_mlflow_reads_it():
    from starlette.datastructures import QueryParams

    from ladle.api.mlflow_authz import message_of

    q = QueryParams("run_ids=a&run_ids=b&order_by=name&order_by=version&run_id=c")
    assert message_of("GET", q, b'{"run_id": "ignored"}') == {
        "run_ids": ["a", "b"], "order_by": ["name", "version"], "run_id": "c"}
    assert message_of("GET", QueryParams(""), b'{"run_id": "d"}') == {"run_id": "d"}   # no query: the body
    assert message_of("POST", q, b'{"run_id": "e"}') == {"run_id": "e"}               # not a GET: the body
    assert message_of("POST", q, b"  ") == {}
    for bad in (b"{nope", b"[1]", b'"s"'):
        with pytest.raises(ApiError) as e:
            message_of("POST", q, bad)
        assert e.value.status == 400


class FakeLookups:
    """Model versions and where their files are, as MLflow would answer."""

    def __init__(self, versions: dict[tuple[str, str], str]) -> None:
        self._versions = versions        # (name, version) -> download URI
        self.filters: list[str] = []

    async def versions(self, filter_string: str) -> list[tuple[str, str]]:
        self.filters.append(filter_string)
        return list(self._versions)

    async def download_uri(self, name: str, version: str) -> str:
        return self._versions[(name, version)]


async def test_a_model_reader_reads_its_versions_files_and_nothing_else(acl):
    from ladle.control.registry_rules import match

    lm = "m-" + "a" * 32
    await acl.own("experiments", "2", Principal("alice"))
    # bob reads m07 (the fixture's grants), not m08; experiment 2 is alice's
    lookups = FakeLookups({("m07", "1"): f"mlflow-artifacts:/2/models/{lm}/artifacts",
                           ("m08", "1"): f"mlflow-artifacts:/2/models/{lm}-x/artifacts"})
    authz = Authorizer(acl, lookups)  # type: ignore[arg-type]

    async def get(path: str) -> None:
        rule, part = match("GET", f"/api/2.0/mlflow-artifacts/artifacts/{path}")
        await authz.check(BOB, rule, part, {})

    await get(f"2/models/{lm}/artifacts/MLmodel")               # under m07 version 1: allowed
    assert lookups.filters == [f"source_path LIKE '%{lm}%'"]
    for path in (f"2/models/{lm}x/artifacts/MLmodel",            # a prefix of the name is not a dir
                 f"2/models/{'b' * 32}/artifacts/MLmodel",         # not a logged model id
                 f"2/{'c' * 32}/artifacts/notes.txt"):             # a run no version of m07 comes from
        with pytest.raises(ApiError) as e:
            await get(path)
        assert e.value.error_code == "PERMISSION_DENIED"
    with pytest.raises(ApiError):                                 # reading never implies writing
        rule, part = match("PUT", f"/api/2.0/mlflow-artifacts/artifacts/2/models/{lm}/artifacts/x")
        await authz.check(BOB, rule, part, {})
