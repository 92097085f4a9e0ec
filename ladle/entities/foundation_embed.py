"""Embeddings with transformers on the CPU: the sentence-transformers recipe (token
embeddings, mean pooling over the attention mask, L2 normalization when the model's
modules.json says so), without importing sentence-transformers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class Embedder:
    def __init__(self, model_dir: str) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        d = Path(model_dir)
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModel.from_pretrained(model_dir)
        self.model.eval()
        self.normalize = _has_normalize(d)
        self.max_length = _max_length(d, self.tokenizer)
        self.batch = 32

    def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        torch = self.torch
        vectors: list[list[float]] = []
        tokens = 0
        with torch.inference_mode():
            for i in range(0, len(texts), self.batch):
                enc = self.tokenizer(texts[i:i + self.batch], padding=True, truncation=True,
                                     max_length=self.max_length, return_tensors="pt")
                out = self.model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(out.dtype)
                pooled = (out * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                if self.normalize:
                    pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                vectors.extend(pooled.tolist())
                tokens += int(enc["attention_mask"].sum())
        return vectors, tokens


def _has_normalize(d: Path) -> bool:
    try:
        modules: list[dict[str, Any]] = json.loads((d / "modules.json").read_text())
    except (FileNotFoundError, ValueError):
        return True  # embedding endpoints answer unit vectors unless the model says otherwise
    return any(str(m.get("type", "")).endswith("Normalize") for m in modules)


def _max_length(d: Path, tokenizer) -> int:
    try:
        return int(json.loads((d / "sentence_bert_config.json").read_text())["max_seq_length"])
    except (FileNotFoundError, ValueError, KeyError):
        n = getattr(tokenizer, "model_max_length", 512) or 512
        return min(int(n), 8192)
