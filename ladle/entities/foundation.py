"""The foundation entity kind: a Hugging Face model directory from ladle's catalog, served
with the OpenAI-shaped chat, completions or embeddings API.

The preparer passes the task and the model's real name in LADLE_FOUNDATION_TASK and
LADLE_FOUNDATION_MODEL, and HF_HUB_OFFLINE=1 so nothing is ever downloaded. Imported inside
replica processes; torch and transformers (or vLLM) are imported on load. Generation runs on
vLLM when LADLE_LLM_ENGINE is `vllm`, or `auto` (the default) with vLLM installed and a GPU;
otherwise on transformers (`LADLE_LLM_ENGINE=transformers` forces it).
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from ladle.entities.foundation_generate import Outcome
from ladle.schemas import llm


class FoundationEntity:
    def __init__(self, task: str, model_id: str, impl: Any) -> None:
        self.task = task
        self.model_id = model_id
        self.impl = impl

    @classmethod
    def load(cls, model_dir: str) -> "FoundationEntity":
        task = os.environ.get("LADLE_FOUNDATION_TASK") or _guess_task(model_dir)
        model_id = os.environ.get("LADLE_FOUNDATION_MODEL") or Path(model_dir).name
        if task == llm.EMBEDDINGS:
            from ladle.entities.foundation_embed import Embedder

            return cls(task, model_id, Embedder(model_dir))
        engine = os.environ.get("LADLE_LLM_ENGINE", "auto")
        if engine not in ("auto", "vllm", "transformers"):
            raise ValueError(f"LADLE_LLM_ENGINE must be auto, vllm or transformers, not {engine!r}")
        if engine != "transformers":
            from ladle.entities.foundation_vllm import VllmGenerator, vllm_usable

            if engine == "vllm" or vllm_usable():
                return cls(task, model_id, VllmGenerator(model_dir))
        from ladle.entities.foundation_generate import Generator

        return cls(task, model_id, Generator(model_dir))

    def predict(self, meta: dict, body: bytes, cancel: threading.Event | None = None):
        data = llm.parse_body(body)
        llm.check_request(self.task, data)
        if self.task == llm.EMBEDDINGS:
            texts = [data["input"]] if isinstance(data["input"], str) else data["input"]
            vectors, tokens = self.impl.embed(texts)
            out = llm.embeddings_response(self.model_id, vectors, tokens, data.get("encoding_format") or "float")
            return 200, "application/json", json.dumps(out).encode()
        gen = self.impl
        if self.task == llm.CHAT:
            prompts = [gen.chat_ids(data)]
        else:
            p = data["prompt"]
            prompts = [gen.prompt_ids(x) for x in ([p] if isinstance(p, str) else p)]
        limits = [gen.max_new_tokens(len(ids), data) for ids in prompts]   # 400s before any generation
        n = int(data.get("n") or 1)
        jobs = [(ids, mx) for ids, mx in zip(prompts, limits) for _ in range(n)]
        if llm.wants_stream(data):
            return 200, "text/event-stream", self._sse(jobs, data, cancel)
        return 200, "application/json", json.dumps(self._unary(jobs, data, cancel)).encode()

    def _unary(self, jobs, data: dict, cancel) -> dict[str, Any]:
        choices, completion = [], 0
        for ids, mx in jobs:
            oc = Outcome()
            text = "".join(self.impl.stream(ids, data, mx, llm.stops(data), cancel, oc))
            choices.append((text, oc.finish_reason))
            completion += oc.completion_tokens
        prompt = sum(len(ids) for ids, _ in jobs[:: int(data.get("n") or 1)])
        u = llm.usage(prompt, completion)
        rid = llm.new_id(self.task)
        if self.task == llm.CHAT:
            return llm.chat_response(rid, self.model_id, choices, u)
        return llm.completion_response(rid, self.model_id, choices, u)

    def _sse(self, jobs, data: dict, cancel) -> Iterator[bytes]:
        rid, created, chat = llm.new_id(self.task), int(time.time()), self.task == llm.CHAT
        completion = 0
        for index, (ids, mx) in enumerate(jobs):
            if chat:
                yield llm.sse(llm.chat_chunk(rid, self.model_id, created, index, content="", role="assistant"))
            oc = Outcome()
            for piece in self.impl.stream(ids, data, mx, llm.stops(data), cancel, oc):
                if chat:
                    yield llm.sse(llm.chat_chunk(rid, self.model_id, created, index, content=piece))
                else:
                    yield llm.sse(llm.completion_chunk(rid, self.model_id, created, index, text=piece))
            if cancel is not None and cancel.is_set():
                return
            completion += oc.completion_tokens
            if chat:
                yield llm.sse(llm.chat_chunk(rid, self.model_id, created, index, finish=oc.finish_reason))
            else:
                yield llm.sse(llm.completion_chunk(rid, self.model_id, created, index, finish=oc.finish_reason))
        if llm.include_usage(data):
            prompt = sum(len(ids) for ids, _ in jobs[:: int(data.get("n") or 1)])
            yield llm.sse(llm.usage_chunk(rid, self.model_id, created, self.task, llm.usage(prompt, completion)))
        yield llm.SSE_DONE


def _guess_task(model_dir: str) -> str:
    try:
        cfg = json.loads((Path(model_dir) / "config.json").read_text())
    except (FileNotFoundError, ValueError):
        return llm.CHAT
    archs = " ".join(cfg.get("architectures") or [])
    return llm.CHAT if "CausalLM" in archs or "LMHead" in archs else llm.EMBEDDINGS
