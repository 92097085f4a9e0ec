"""Text generation with vLLM on a GPU: the same interface as foundation_generate.Generator
(prompts, stream, Outcome), with continuous batching across a replica's concurrent requests.

One engine thread owns the vLLM `LLMEngine`: it adds and aborts requests and calls `step()`
while any are unfinished, and hands each step's outputs to the stream that asked. A stream
whose client goes away (its cancel event is set) aborts its request in the engine, so the
GPU stops working for nobody. Stop sequences are vLLM's own (`SamplingParams.stop`, the stop
text is not returned, as in OpenAI's API).

Chosen by `FoundationEntity.load` when LADLE_LLM_ENGINE is `vllm`, or `auto` (the default)
and vLLM is installed and torch sees a GPU. LADLE_VLLM_ARGS holds extra EngineArgs as JSON
(e.g. `{"gpu_memory_utilization": 0.5, "max_model_len": 8192}`).

The calls used were checked against vLLM 0.33's `LLMEngine` (the V1 engine behind the old
name): `add_request(request_id, {"prompt_token_ids": ...}, SamplingParams)`, `step()`
returning `RequestOutput`s under the id we gave (vLLM suffixes its internal id but reports
the external one), `abort_request([id])` taking that id, `has_unfinished_requests()`, and
`get_tokenizer()` returning a subclass of the model's Hugging Face tokenizer. Outputs are
asked for cumulatively (`RequestOutputKind.CUMULATIVE`): each carries the whole text so far.
"""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import threading
import time
import uuid
from typing import Any, Callable, Iterator

from ladle.entities.foundation_generate import Outcome, Prompting
from ladle.schemas.errors import ApiError

_POLL_S = 0.05


def vllm_usable() -> bool:
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def _engine_for(model_dir: str) -> Any:
    from vllm import EngineArgs, LLMEngine

    extra = json.loads(os.environ.get("LADLE_VLLM_ARGS") or "{}")
    return LLMEngine.from_engine_args(EngineArgs(model=model_dir, **extra))


def sampling_params(data: dict[str, Any], max_new: int, stops: list[str]) -> dict[str, Any]:
    """vLLM SamplingParams fields for an OpenAI-shaped request (temperature 0 is greedy)."""
    temperature = data.get("temperature", 1.0)
    out: dict[str, Any] = {"max_tokens": max_new, "stop": stops or None,
                           "temperature": float(temperature) if temperature is not None else 1.0}
    if data.get("top_p") is not None:
        out["top_p"] = float(data["top_p"])
    if data.get("top_k") is not None:
        out["top_k"] = int(data["top_k"])
    return out


class VllmGenerator(Prompting):
    def __init__(self, model_dir: str, engine: Any = None,
                 make_params: Callable[[dict[str, Any]], Any] | None = None) -> None:
        self.engine = engine if engine is not None else _engine_for(model_dir)
        cfg = getattr(self.engine, "model_config", None)
        super().__init__(self.engine.get_tokenizer(), int(getattr(cfg, "max_model_len", 0) or 2048))
        self.make_params = make_params or _vllm_params
        self._ops: queue.SimpleQueue = queue.SimpleQueue()
        self._streams: dict[str, queue.SimpleQueue] = {}
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="vllm-engine", daemon=True)
        self._thread.start()

    # -- the engine thread -------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            self._wake.wait(None if not self.engine.has_unfinished_requests() else 0)
            self._wake.clear()
            try:
                while True:
                    try:
                        op = self._ops.get_nowait()
                    except queue.Empty:
                        break
                    if op[0] == "add":
                        _, rid, ids, params = op
                        self.engine.add_request(rid, {"prompt_token_ids": ids}, params)
                    else:
                        self.engine.abort_request([op[1]])
                        print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} vLLM: request {op[1]} aborted "
                              "(its client went away)", flush=True)
                if self.engine.has_unfinished_requests():
                    for out in self.engine.step():
                        q = self._streams.get(out.request_id)
                        if q is not None:
                            q.put(out)
            except Exception as e:  # the engine failed: every waiting stream hears it
                for q in list(self._streams.values()):
                    q.put(e)

    def _submit(self, *op: Any) -> None:
        self._ops.put(op)
        self._wake.set()

    # -- one request ---------------------------------------------------------------------
    def stream(self, ids: list[int], data: dict[str, Any], max_new: int, stops: list[str],
               cancel: threading.Event | None, outcome: Outcome) -> Iterator[str]:
        rid = uuid.uuid4().hex
        q: queue.SimpleQueue = queue.SimpleQueue()
        self._streams[rid] = q
        self._submit("add", rid, ids, self.make_params(sampling_params(data, max_new, stops)))
        sent, done = "", False
        try:
            while True:
                if cancel is not None and cancel.is_set():
                    return
                try:
                    out = q.get(timeout=_POLL_S)
                except queue.Empty:
                    continue
                if isinstance(out, BaseException):
                    done = True
                    raise ApiError("INTERNAL_ERROR", f"generation failed: {out}", 500)
                o = out.outputs[0]
                if len(o.text) > len(sent):
                    yield o.text[len(sent):]
                    sent = o.text
                if out.finished:
                    done = True
                    outcome.completion_tokens = len(o.token_ids)
                    outcome.finish_reason = "length" if o.finish_reason == "length" else "stop"
                    return
        finally:
            self._streams.pop(rid, None)
            if not done:
                self._submit("abort", rid)


def _vllm_params(fields: dict[str, Any]) -> Any:
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    return SamplingParams(**fields, output_kind=RequestOutputKind.CUMULATIVE)
