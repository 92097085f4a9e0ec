"""Text generation with transformers (CPU, or CUDA when torch sees a GPU): the tokenizer's
chat template, token streaming with TextIteratorStreamer, stop sequences, cancellation,
real token counts. With a GPU and vLLM installed, foundation_vllm serves the same interface."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Iterator

from ladle.schemas.errors import ApiError
from ladle.schemas.llm import bad, text_of

DEFAULT_MAX_TOKENS = 256


@dataclass
class Outcome:
    completion_tokens: int = 0
    finish_reason: str = "stop"


class Prompting:
    """What every generation engine shares: prompts as token ids (the tokenizer's chat
    template) and the room the context leaves for new tokens."""

    def __init__(self, tokenizer: Any, context: int) -> None:
        self.tokenizer, self.context = tokenizer, context

    def chat_ids(self, data: dict[str, Any]) -> list[int]:
        msgs = [{**m, "content": text_of(m.get("content"))} for m in data["messages"]]
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            kw: dict[str, Any] = {"add_generation_prompt": True, "tokenize": False}
            if data.get("tools"):
                kw["tools"] = data["tools"]
            text = tok.apply_chat_template(msgs, **kw)
        else:
            text = "".join(f"{m['role']}: {m['content']}\n" for m in msgs) + "assistant:"
        return list(tok(text, add_special_tokens=False)["input_ids"])

    def prompt_ids(self, prompt: str) -> list[int]:
        return list(self.tokenizer(prompt)["input_ids"])

    def max_new_tokens(self, n_prompt: int, data: dict[str, Any]) -> int:
        room = self.context - n_prompt
        want = data.get("max_tokens")
        if room <= 0:
            raise bad(f"The prompt is {n_prompt} tokens long; the model's context is {self.context} tokens.")
        if want is not None and n_prompt + want > self.context:
            raise bad(f"max_tokens: {want} plus the prompt's {n_prompt} tokens exceeds the model's context "
                      f"of {self.context} tokens; ask for at most {room}.")
        return int(want) if want is not None else min(DEFAULT_MAX_TOKENS, room)



class Generator(Prompting):
    """transformers' generate() in a thread, one request at a time per replica."""

    def __init__(self, model_dir: str) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir).to(self.device)
        self.model.eval()
        cfg = self.model.config
        super().__init__(tokenizer, int(getattr(cfg, "max_position_embeddings", 0) or getattr(cfg, "n_positions", 0)
                                        or min(getattr(tokenizer, "model_max_length", 2048), 32768)))
        self.lock = threading.Lock()  # one generate() at a time per replica: CPU threads are shared

    def stream(self, ids: list[int], data: dict[str, Any], max_new: int, stops: list[str],
               cancel: threading.Event | None, outcome: Outcome) -> Iterator[str]:
        """Yield text as the model emits it; fill `outcome` when done."""
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        torch = self.torch
        halt = threading.Event()
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)

        class Halt(StoppingCriteria):
            def __call__(self, input_ids, scores, **kw):  # noqa: ANN001
                return halt.is_set() or (cancel is not None and cancel.is_set())

        temperature = data.get("temperature", 1.0)
        kw: dict[str, Any] = {"max_new_tokens": max_new, "streamer": streamer,
                              "stopping_criteria": StoppingCriteriaList([Halt()])}
        if temperature and temperature > 0:
            kw.update(do_sample=True, temperature=float(temperature))
            if data.get("top_p") is not None:
                kw["top_p"] = float(data["top_p"])
            if data.get("top_k") is not None:
                kw["top_k"] = int(data["top_k"])
        else:
            kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        tok = self.tokenizer
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        result: dict[str, Any] = {}

        def run() -> None:
            x = torch.tensor([ids], device=self.device)
            try:
                with self.lock, torch.inference_mode():
                    out = self.model.generate(input_ids=x, attention_mask=torch.ones_like(x),
                                              pad_token_id=pad, **kw)
                new = out[0, len(ids):].tolist()
                result["tokens"] = new
            except Exception as e:  # surfaced to the consumer below
                result["error"] = e
                streamer.end()

        t = threading.Thread(target=run, name="generate", daemon=True)
        t.start()
        held, hold = "", max((len(s) for s in stops), default=1) - 1
        stopped = False
        try:
            for piece in streamer:
                if cancel is not None and cancel.is_set():
                    return
                held += piece
                cut = _first_stop(held, stops)
                if cut is not None:
                    held, stopped = held[:cut], True
                    halt.set()
                    break
                if len(held) > hold:
                    emit, held = (held[:len(held) - hold], held[len(held) - hold:]) if hold else (held, "")
                    yield emit
            if held:
                yield held
            t.join()
            if "error" in result:
                raise ApiError("INTERNAL_ERROR", f"generation failed: {result['error']}", 500)
            new = result.get("tokens", [])
            eos = _eos_ids(self.model, tok)
            outcome.completion_tokens = len(new)
            hit_eos = bool(new) and new[-1] in eos
            outcome.finish_reason = "stop" if stopped or hit_eos or len(new) < max_new else "length"
        finally:
            halt.set()


def _first_stop(text: str, stops: list[str]) -> int | None:
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(hits) if hits else None


def _eos_ids(model, tok) -> set[int]:
    ids = set()
    for v in (getattr(model.generation_config, "eos_token_id", None), tok.eos_token_id):
        if isinstance(v, int):
            ids.add(v)
        elif isinstance(v, (list, tuple)):
            ids.update(int(x) for x in v)
    return ids
