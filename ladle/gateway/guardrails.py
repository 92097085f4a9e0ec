"""Guardrails on input and output (AI Gateway `guardrails.{input,output}`).

What text is checked: for LLM endpoints (a task), `messages[].content` (strings or text
parts), `prompt` and `input` of the request and `choices[].message.content|text|delta.content`
of the answer; for custom models, every string value anywhere in the JSON (but
`client_request_id` and `usage_context`). CSV and Parquet bodies are not inspected.

- `pii`: NONE, BLOCK (400 naming the kinds found) or MASK (values replaced by `<KIND>`; the
  masked request is what the model receives). Detectors: ladle.gateway.pii.
- `invalid_keywords`: case-insensitive, whole-word match; any hit blocks (400).
- `valid_topics`: a keyword heuristic, no model: the text is on-topic when one of its words
  shares a stem (suffixes such as -s, -ing, -ed, -ation stripped; prefixes of 4+ letters
  match) with a word of one of the topics, or contains a topic verbatim. Only the user's
  text counts (`role: user` messages when there are messages). On the output side the answer
  is on-topic when it or its request is. Off-topic: 400.
- `safety`: needs a classifier (ladle.gateway.capabilities); ladle ships none, so without an
  installed one configuring it is refused at PUT time.

A block answers 400 `BAD_REQUEST` with a readable message plus Databricks' verdict object
(`input_guardrail`/`output_guardrail`, `finishReason`, zero `usage`) in the body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from ladle.gateway import pii
from ladle.schemas.errors import ApiError

SKIP_KEYS = frozenset({"client_request_id", "usage_context"})
_STOP = frozenset("""a an the and or but if of to in on at by for with about as is are was were be
been being it its this that these those i you he she we they me my your our their what which who
whom how when where why can could should would will shall may might do does did have has had not
no yes so than then there here from into over under up down out any all some more most other such
only own same too very just also please tell give me want need like know get make""".split())
_SUFFIXES = ("ations", "ation", "ings", "ing", "ers", "er", "ies", "es", "ed", "s", "ly")


class GuardrailBlocked(ApiError):
    def __init__(self, side: str, message: str, verdict: dict[str, Any]) -> None:
        super().__init__("BAD_REQUEST", message, 400)
        self.side = side
        self.verdict = verdict

    def body(self, request_id: str | None = None) -> dict:
        return {**super().body(request_id), **self.verdict}


@dataclass(frozen=True)
class Rules:
    """One side's compiled guardrail parameters."""
    pii: str = "NONE"
    keywords: tuple[str, ...] = ()
    keyword_rx: re.Pattern[str] | None = None
    topics: tuple[str, ...] = ()
    topic_stems: frozenset[str] = frozenset()
    safety: bool = False

    @property
    def active(self) -> bool:
        return self.pii != "NONE" or bool(self.keywords) or bool(self.topics) or self.safety

    @property
    def blocks(self) -> bool:
        """Whether this side can refuse (streams must then be checked whole)."""
        return self.pii == "BLOCK" or bool(self.keywords) or bool(self.topics) or self.safety


def compile_rules(params: dict[str, Any] | None) -> Rules:
    if not params:
        return Rules()
    kws = tuple(k for k in (params.get("invalid_keywords") or []) if k and k.strip())
    rx = None
    if kws:
        parts = [(r"(?<!\w)" if k[0].isalnum() or k[0] == "_" else "") + re.escape(k)
                 + (r"(?!\w)" if k[-1].isalnum() or k[-1] == "_" else "") for k in kws]
        rx = re.compile("|".join(parts), re.IGNORECASE)
    topics = tuple(t for t in (params.get("valid_topics") or []) if t and t.strip())
    return Rules(pii=((params.get("pii") or {}).get("behavior") or "NONE"), keywords=kws, keyword_rx=rx,
                 topics=topics, topic_stems=frozenset(s for t in topics for s in _stems(t)),
                 safety=bool(params.get("safety")))


# -- text selection ----------------------------------------------------------------------
def map_request_texts(obj: Any, fn: Callable[[str], str], llm: bool) -> Any:
    if not isinstance(obj, dict):
        return _map_all(obj, fn) if not llm else obj
    if not llm:
        return {k: (v if k in SKIP_KEYS else _map_all(v, fn)) for k, v in obj.items()}
    out = dict(obj)
    if isinstance(obj.get("messages"), list):
        out["messages"] = [_map_message(m, fn) for m in obj["messages"]]
    for key in ("prompt", "input"):
        if key in obj:
            out[key] = _map_all(obj[key], fn)
    return out


def map_response_texts(obj: Any, fn: Callable[[str], str], llm: bool) -> Any:
    if not llm:
        return _map_all(obj, fn)
    if not isinstance(obj, dict) or not isinstance(obj.get("choices"), list):
        return obj
    out = dict(obj)
    choices = []
    for c in obj["choices"]:
        if isinstance(c, dict):
            c = dict(c)
            for holder in ("message", "delta"):
                if isinstance(c.get(holder), dict):
                    c[holder] = _map_message(c[holder], fn)
            if isinstance(c.get("text"), str):
                c["text"] = fn(c["text"])
        choices.append(c)
    out["choices"] = choices
    return out


def _map_message(m: Any, fn: Callable[[str], str]) -> Any:
    if not isinstance(m, dict) or "content" not in m:
        return m
    content = m["content"]
    if isinstance(content, str):
        return {**m, "content": fn(content)}
    if isinstance(content, list):
        parts = [{**p, "text": fn(p["text"])} if isinstance(p, dict) and isinstance(p.get("text"), str)
                 else p for p in content]
        return {**m, "content": parts}
    return m


def _map_all(v: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(v, str):
        return fn(v)
    if isinstance(v, list):
        return [_map_all(x, fn) for x in v]
    if isinstance(v, dict):
        return {k: _map_all(x, fn) for k, x in v.items()}
    return v


def texts(obj: Any, llm: bool, response: bool = False) -> list[str]:
    found: list[str] = []

    def grab(s: str) -> str:
        found.append(s)
        return s
    (map_response_texts if response else map_request_texts)(obj, grab, llm)
    return found


def user_texts(obj: Any, llm: bool) -> list[str]:
    if isinstance(obj, dict) and isinstance(obj.get("messages"), list):
        users = [m for m in obj["messages"] if isinstance(m, dict) and m.get("role") == "user"]
        if users:
            return texts({"messages": users}, True)
    return texts(obj, llm)


# -- topics ------------------------------------------------------------------------------
def _stem(w: str) -> str:
    for suf in _SUFFIXES:
        if w.endswith(suf) and len(w) - len(suf) >= 3:
            return w[: -len(suf)]
    return w


def _stems(text: str) -> set[str]:
    return {_stem(w) for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP and len(w) > 1}


def on_topic(rules: Rules, chunks: Iterable[str]) -> bool:
    text = " ".join(chunks)
    low = text.lower()
    if any(t.lower() in low for t in rules.topics):
        return True
    for w in _stems(text):
        for t in rules.topic_stems:
            short, long_ = (w, t) if len(w) <= len(t) else (t, w)
            if short == long_ or (len(short) >= 4 and long_.startswith(short)):
                return True
    return False


# -- checks ------------------------------------------------------------------------------
def _verdict(side: str, pii_kinds: set[str], keywords: bool, off_topic: bool | None,
             anonymized: Any = None) -> dict[str, Any]:
    entry = {"flagged": False, "categories": None, "category_scores": None,
             "pii_detection": bool(pii_kinds) or None, "invalid_keywords": keywords,
             "off_topic": off_topic}
    if anonymized is not None:
        entry["anonymized_input" if side == "input" else "anonymized_output"] = anonymized
    return {f"{side}_guardrail": [entry], "finishReason": f"{side}_guardrail_triggered",
            "usage": {"prompt_tokens": 0, "total_tokens": 0}}


def check(rules: Rules, side: str, chunks: list[str], topic_chunks: list[str] | None = None) -> None:
    """Raise GuardrailBlocked for what BLOCK, keywords and topics refuse."""
    label = side.capitalize()
    if rules.safety:
        from ladle.gateway.capabilities import safety_classifier

        classify = safety_classifier()
        categories = sorted(set(classify(chunks))) if classify is not None else []
        if categories:
            verdict = _verdict(side, set(), False, None)
            verdict[f"{side}_guardrail"][0].update(flagged=True, categories={c: True for c in categories})
            raise GuardrailBlocked(side, f"{label} guardrail triggered: unsafe content "
                                         f"({', '.join(categories)}).", verdict)
    if rules.pii == "BLOCK":
        kinds = pii.iter_kinds(iter(chunks))
        if kinds:
            raise GuardrailBlocked(side, f"{label} guardrail triggered: PII detected "
                                         f"({', '.join(sorted(kinds))}).", _verdict(side, kinds, False, None))
    if rules.keyword_rx is not None:
        hits = sorted({m.group(0).lower() for c in chunks for m in rules.keyword_rx.finditer(c)})
        if hits:
            raise GuardrailBlocked(side, f"{label} guardrail triggered: invalid keywords found "
                                         f"({', '.join(hits)}).", _verdict(side, set(), True, None))
    if rules.topics and not on_topic(rules, topic_chunks if topic_chunks is not None else chunks):
        raise GuardrailBlocked(side, f"{label} guardrail triggered: the {'request' if side == 'input' else 'answer'}"
                                     f" is not about any of the valid topics ({', '.join(rules.topics)}).",
                               _verdict(side, set(), False, True))


def guard_request(rules: Rules, req: Any, llm: bool) -> Any:
    """Check a parsed request; returns it (masked under MASK) or raises GuardrailBlocked."""
    check(rules, "input", texts(req, llm), user_texts(req, llm) if rules.topics else None)
    if rules.pii == "MASK":
        return map_request_texts(req, pii.mask, llm)
    return req


def guard_response(rules: Rules, resp: Any, req: Any, llm: bool) -> Any:
    topic = None
    if rules.topics:
        topic = texts(resp, llm, response=True) + (user_texts(req, llm) if req is not None else [])
    check(rules, "output", texts(resp, llm, response=True), topic)
    if rules.pii != "MASK":
        return resp
    found: list[bool] = []

    def masked(text: str) -> str:
        out = pii.mask(text)
        if out != text:
            found.append(True)
        return out
    out = map_response_texts(resp, masked, llm)
    if found and isinstance(out, dict) and "choices" in out:
        out["output_guardrail"] = [{"flagged": False, "categories": None, "category_scores": None,
                                    "pii_detection": True, "invalid_keywords": False, "off_topic": None}]
    return out
