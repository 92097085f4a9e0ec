"""Model files of the embedded registry are copied from its store on disk: only a model
directory inside the store, made of plain files, is taken that way (anything else is
downloaded as before)."""

from __future__ import annotations

import asyncio
import os

from ladle.entities.prepare import PyfuncPreparer, local_artifacts
from ladle.schemas.replicas import GroupSpec


def _model(d):
    d.mkdir(parents=True)
    (d / "MLmodel").write_text("flavors: {}\n")
    (d / "model.skops").write_bytes(b"weights")
    return d


def test_only_a_plain_model_inside_the_store_is_taken(tmp_path):
    store = tmp_path / "artifacts"
    m = _model(store / "0" / "models" / "m-1" / "artifacts")
    assert local_artifacts(store, "mlflow-artifacts:/0/models/m-1/artifacts") == m.resolve()
    assert local_artifacts(store, "mlflow-artifacts:/0/models/m-2/artifacts") is None   # not there
    outside = _model(tmp_path / "elsewhere")
    assert local_artifacts(store, "mlflow-artifacts:/../elsewhere") is None             # outside the store
    assert local_artifacts(store, f"file://{outside}") is None
    assert local_artifacts(store, "mlflow-artifacts://otherhost/0/models/m-1/artifacts") is None
    assert local_artifacts(store, "s3://bucket/0/models/m-1/artifacts") is None
    os.symlink(tmp_path / "elsewhere" / "model.skops", m / "link")
    assert local_artifacts(store, "mlflow-artifacts:/0/models/m-1/artifacts") is None   # a link in it


class _Registry:
    tracking_uri, token = "http://registry.invalid", "t"

    def __init__(self, uri):
        self.uri = uri

    async def get_version(self, name, version):
        from ladle.entities.registry import ModelVersion

        return ModelVersion(name, version, "models:/m-1", None, "READY")

    async def download_uri(self, name, version):
        return self.uri


def test_the_preparer_copies_from_the_store_and_leaves_it_untouched(tmp_path):
    store = tmp_path / "artifacts"
    src = _model(store / "0" / "models" / "m-1" / "artifacts")
    prep = PyfuncPreparer(_Registry("mlflow-artifacts:/0/models/m-1/artifacts"), tmp_path / "models",
                          tmp_path / "envs", store)
    lines: list[str] = []
    spec = GroupSpec(key="k", endpoint_id="e", endpoint_name="ep", entity_name="m-1",
                     model_name="main.default.m", model_version="3")
    got = asyncio.run(prep(spec, lines.append))
    copied = tmp_path / "models" / "main.default.m" / "3"
    assert got.model_dir == str(copied) and (copied / "model.skops").read_bytes() == b"weights"
    assert os.stat(copied / "model.skops").st_ino != os.stat(src / "model.skops").st_ino  # a copy, not a link
    assert any("Copied 3 files" in line for line in lines), lines   # and registered_model_meta, as MLflow
    import yaml

    assert yaml.safe_load((copied / "registered_model_meta").read_text()) == {
        "model_name": "main.default.m", "model_version": "3"}
    assert not (src / "registered_model_meta").exists()
