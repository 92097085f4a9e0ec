"""Helpers for the LLM tests: a tiny causal LM built here with random weights and
a tokenizer trained here (nothing is downloaded), fake provider upstreams, and a pyfunc
model with predict_stream. Nothing runs at import time."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

from ladle.testing.model_code import STREAMING_PYFUNC_CODE
from ladle.testing.registry import register_code_model

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{{ eos_token }}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "hello world, this is a tiny language model for tests",
    "ladle serves models with streaming chat completions",
    "paris is the capital of france and berlin is the capital of germany",
    "one two three four five six seven eight nine ten",
] * 20


def build_tiny_chat_model(dest: Path, context: int = 128, hidden: int = 32) -> Path:
    """A 2-layer LLaMA-shaped model (random weights) and a byte-level BPE tokenizer with a chat
    template, saved with save_pretrained: a real Hugging Face model directory. (vLLM's CPU
    attention wants heads of 32+ dimensions: hidden=128 gives two heads of 64.)"""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    dest.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<s>", "</s>", "<pad>", "<|system|>", "<|user|>", "<|assistant|>"]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>", model_max_length=context)
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(dest)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=context,
                      bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
                      pad_token_id=fast.pad_token_id)
    LlamaForCausalLM(cfg).save_pretrained(dest)
    return dest


# -- fake upstream providers ----------------------------------------------------------------

Handler = Callable[[str, dict[str, str], dict[str, Any]], tuple[int, dict[str, str], Any]]


class FakeUpstream:
    """A threaded HTTP server; `handler(path, headers, body)` answers (status, headers, body)
    where body is a dict (JSON), bytes, or a list of SSE payload strings streamed one by one."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(n) if n else b""
                body = json.loads(raw) if raw else {}
                headers = {k.lower(): v for k, v in self.headers.items()}
                outer.requests.append((self.path, headers, body))
                status, extra, out = outer.handler(self.path, headers, body)
                if isinstance(out, list):
                    self.send_response(status)
                    self.send_header("content-type", "text/event-stream")
                    self.send_header("transfer-encoding", "chunked")
                    for k, v in extra.items():
                        self.send_header(k, v)
                    self.end_headers()
                    for item in out:
                        data = item if isinstance(item, bytes) else f"data: {item}\n\n".encode()
                        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                    return
                data = out if isinstance(out, bytes) else json.dumps(out).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "FakeUpstream":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def log_streaming_pyfunc(server_url: str, token: str, name: str, workdir: Path) -> None:
    """Register the streaming pyfunc under `name` with the real MLflow client."""
    register_code_model(server_url, token, name, STREAMING_PYFUNC_CODE, workdir)
