"""Adaptive batching: requests that arrive while a batch runs are predicted together, and
every answer is exactly what `mlflow models serve` gives for that request alone."""

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from ladle.replica.batching import Batcher, batch_settings
from ladle.testing.waiting import wait_until_async


def test_requests_arriving_together_are_batched_and_split_back():
    sizes = []
    gate, running = threading.Event(), threading.Event()

    def predict_batch(items):
        running.set()
        gate.wait(5)
        sizes.append(len(items))
        return [(200, "application/json", b + b"!") for _, b in items]

    async def main():
        b = Batcher(predict_batch, ThreadPoolExecutor(1), max_size=8, max_wait_s=0.0)
        first = asyncio.ensure_future(b.submit({}, b"0"))
        await wait_until_async(running.is_set, what="the first batch (one request) running")
        rest = [asyncio.ensure_future(b.submit({}, str(i).encode())) for i in range(1, 11)]
        await wait_until_async(lambda: b.queue.qsize() == 10, what="ten requests queued behind it")
        gate.set()
        return await first, await asyncio.gather(*rest)

    first, rest = asyncio.run(main())
    assert first == (200, "application/json", b"0!")
    assert [r[2] for r in rest] == [f"{i}!".encode() for i in range(1, 11)]
    assert sizes == [1, 8, 2]               # idle: no wait; busy: up to max_size together


def test_after_a_concurrent_batch_the_next_one_waits_for_as_many_requests():
    sizes = []

    def predict_batch(items):
        sizes.append(len(items))
        return [(200, "application/json", b) for _, b in items]

    async def main():
        b = Batcher(predict_batch, ThreadPoolExecutor(1), max_size=8, max_wait_s=0.5)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        assert (await b.submit({}, b"alone"))[2] == b"alone"          # a lone client: no wait
        lone = loop.time() - t0
        await asyncio.gather(*(b.submit({}, b"x") for _ in range(3)))  # three together: a batch of 3
        # Three more, one every 20 ms (the arrival times are the input here, not a wait): the
        # batch waits for the late two (well within 0.5 s).
        first = asyncio.ensure_future(b.submit({}, b"a"))
        await asyncio.sleep(0.02)
        second = asyncio.ensure_future(b.submit({}, b"b"))
        await asyncio.sleep(0.02)
        third = asyncio.ensure_future(b.submit({}, b"c"))
        t1 = loop.time()
        await asyncio.gather(first, second, third)
        return lone, loop.time() - t1

    lone, last = asyncio.run(main())
    assert sizes == [1, 3, 3]
    assert lone < 0.25 and last < 0.25       # nobody waited out the 0.5 s limit


def test_a_batch_answered_short_fails_every_request_instead_of_hanging():
    def predict_batch(items):
        return [(200, "application/json", b"only one")]

    async def main():
        b = Batcher(predict_batch, ThreadPoolExecutor(1), max_size=8, max_wait_s=0.0)
        return await asyncio.wait_for(asyncio.gather(*(b.submit({}, b"x") for _ in range(3)),
                                                     return_exceptions=True), 5)

    out = asyncio.run(main())
    assert len(out) == 3 and all(isinstance(r, RuntimeError) for r in out), out


def test_batch_settings_from_environment():
    assert batch_settings({}) == (64, 0.001)
    assert batch_settings({"LADLE_MAX_BATCH_SIZE": "1", "LADLE_MAX_BATCH_WAIT_MS": "5"}) == (1, 0.005)


@pytest.fixture(scope="module")
def rf_entity(tmp_path_factory):
    mlflow = pytest.importorskip("mlflow")
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    from ladle.entities.mlflow_pyfunc import PyfuncEntity

    x, y = make_classification(n_samples=300, n_features=5, random_state=0)
    df = pd.DataFrame(x, columns=[f"f{i}" for i in range(5)])
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(df, y)
    path = tmp_path_factory.mktemp("m") / "rf"
    # explicit requirements: MLflow would otherwise start a process to infer them (~15 s on a busy machine)
    mlflow.sklearn.save_model(model, str(path), input_example=df.head(2), serialization_format="cloudpickle",
                              pip_requirements=["mlflow", "scikit-learn"])
    return PyfuncEntity.load(str(path)), df


def _reference(entity, body: bytes):
    """What `mlflow models serve` answers: MLflow's own scoring path, one request alone."""
    from mlflow.pyfunc import scoring_server

    r = scoring_server.invocations(body, "application/json", entity.model, entity.input_schema)
    return r.response.encode()


def test_batched_answers_equal_mlflow_serve(rf_entity):
    entity, df = rf_entity
    cols = list(df.columns)
    bodies = [
        json.dumps({"dataframe_split": {"columns": cols, "data": df.iloc[i:i + 3].values.tolist()}}).encode()
        for i in range(0, 30, 3)
    ]
    bodies.append(json.dumps({"dataframe_records": df.iloc[40:45].to_dict(orient="records")}).encode())
    rev = cols[::-1]
    bodies.append(json.dumps({"dataframe_split": {"columns": rev, "data": df[rev].iloc[50:52].values.tolist()}}).encode())
    out = entity.predict_batch([({"content_type": "application/json"}, b) for b in bodies])
    assert [o[0] for o in out] == [200] * len(bodies)
    assert [o[2] for o in out] == [_reference(entity, b) for b in bodies]
    single = entity.predict_batch([({}, bodies[0])])
    assert single[0][2] == _reference(entity, bodies[0])


def test_a_bad_request_in_a_batch_gets_its_own_error(rf_entity):
    entity, df = rf_entity
    good = json.dumps({"dataframe_split": {"columns": list(df.columns), "data": df.head(2).values.tolist()}}).encode()
    bad = json.dumps({"dataframe_split": {"columns": ["f0", "f1"], "data": [[1, 2]]}}).encode()
    out = entity.predict_batch([({}, good), ({}, bad), ({}, good)])
    assert out[0][0] == 200 and out[2][0] == 200 and out[0][2] == _reference(entity, good)
    assert out[1][0] == 400 and b"f2" in out[1][2]
