"""Amazon Bedrock <-> OpenAI: the Converse API (and converse-stream, whose binary AWS event
stream is decoded here) for chat and completions, InvokeModel for Titan and Cohere
embeddings; requests are signed with AWS Signature Version 4.

`endpoint_url` in amazon_bedrock_config (a ladle extension) points at another endpoint
(a VPC endpoint or a proxy); by default it is bedrock-runtime.<aws_region>.amazonaws.com.
"""

from __future__ import annotations

import binascii
import datetime as dt
import hashlib
import hmac
import json
import struct
from typing import Any, Iterator
from urllib.parse import quote, urlsplit

from ladle.gateway.external.anthropic import split_messages
from ladle.gateway.external.base import ChunkStream, Ctx, Upstream, common_params, not_supported
from ladle.schemas import llm
from ladle.schemas.errors import ApiError

FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
          "guardrail_intervened": "content_filter", "content_filtered": "content_filter"}


def build(ctx: Ctx) -> Upstream:
    region = ctx.required("aws_region")
    provider = str(ctx.cfg.get("bedrock_provider") or "").lower()
    base = (ctx.cfg.get("endpoint_url") or f"https://bedrock-runtime.{region}.amazonaws.com").rstrip("/")
    model = quote(ctx.model, safe="")
    if ctx.task == llm.EMBEDDINGS:
        inp = ctx.data["input"]
        texts = [inp] if isinstance(inp, str) else inp
        if provider == "cohere":
            body: dict[str, Any] = {"texts": texts, "input_type": "search_document"}
        elif provider == "amazon":
            if len(texts) != 1:
                raise llm.bad("input: Amazon Titan embeddings take one text per request")
            body = {"inputText": texts[0]}
        else:
            raise not_supported(ctx)
        up = Upstream(f"{base}/model/{model}/invoke", {}, body, parse=lambda d: parse_embed(d, ctx.model))
    else:
        path = "converse-stream" if ctx.stream else "converse"
        up = Upstream(f"{base}/model/{model}/{path}", {}, request(ctx),
                      parse=lambda d: parse(d, ctx.task, ctx.model),
                      translator=lambda: Stream(ctx.task, ctx.model), decode="aws-eventstream")
    up.content = json.dumps(up.body).encode()
    up.headers = sign("POST", up.url, {"content-type": "application/json"}, up.content, region, "bedrock",
                      ctx.need("aws_access_key_id"), ctx.need("aws_secret_access_key"))
    return up


def request(ctx: Ctx) -> dict[str, Any]:
    system, msgs = split_messages(ctx)
    body: dict[str, Any] = {"messages": [{"role": m["role"] if m["role"] != "tool" else "user",
                                          "content": [{"text": llm.text_of(m.get("content"))}]} for m in msgs]}
    if system:
        body["system"] = [{"text": system}]
    p = common_params(ctx.data)
    inf = {theirs: p[ours] for ours, theirs in (("max_tokens", "maxTokens"), ("temperature", "temperature"),
                                                ("top_p", "topP"), ("stop", "stopSequences")) if ours in p}
    if inf:
        body["inferenceConfig"] = inf
    return body


def parse(d: dict[str, Any], task: str, model: str) -> dict[str, Any]:
    content = ((d.get("output") or {}).get("message") or {}).get("content") or []
    text = "".join(c.get("text", "") for c in content)
    u = d.get("usage") or {}
    usage = llm.usage(int(u.get("inputTokens", 0)), int(u.get("outputTokens", 0)))
    finish = FINISH.get(d.get("stopReason") or "", "stop")
    if task == llm.COMPLETIONS:
        return llm.completion_response(llm.new_id(task), model, [(text, finish)], usage)
    return llm.chat_response(llm.new_id(task), model, [(text, finish)], usage)


def parse_embed(d: dict[str, Any], model: str) -> dict[str, Any]:
    if "embedding" in d:
        return llm.embeddings_response(model, [d["embedding"]], int(d.get("inputTextTokenCount", 0)))
    emb = d.get("embeddings") or []
    return llm.embeddings_response(model, emb.get("float", []) if isinstance(emb, dict) else emb, 0)


class Stream(ChunkStream):
    def feed(self, ev: dict[str, Any]) -> list[dict[str, Any]]:
        t = ev.get("type")
        if t == "messageStart":
            return [] if self.task == llm.COMPLETIONS else [self._chunk(content="", role="assistant")]
        if t == "contentBlockDelta":
            return [self._chunk(content=(ev.get("delta") or {}).get("text", ""))]
        if t == "messageStop":
            return [self._chunk(finish=FINISH.get(ev.get("stopReason") or "", "stop"))]
        if t == "metadata":
            u = ev.get("usage") or {}
            self.usage = llm.usage(int(u.get("inputTokens", 0)), int(u.get("outputTokens", 0)))
        return []

    def finish(self) -> list[dict[str, Any]]:
        return [llm.usage_chunk(self.rid, self.model, self.created, self.task, self.usage)]


# -- AWS Signature Version 4 -------------------------------------------------------------

def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sign(method: str, url: str, headers: dict[str, str], body: bytes, region: str, service: str,
         access_key: str, secret_key: str, session_token: str | None = None,
         now: dt.datetime | None = None) -> dict[str, str]:
    now = now or dt.datetime.now(dt.timezone.utc)
    amz_date, date = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    parts = urlsplit(url)
    signed = {k.lower(): v for k, v in headers.items()}
    signed.update({"host": parts.netloc, "x-amz-date": amz_date})
    if session_token:
        signed["x-amz-security-token"] = session_token
    names = sorted(signed)
    canonical = "\n".join([
        method, quote(parts.path or "/", safe="/-_.~"), parts.query,
        "".join(f"{k}:{signed[k].strip()}\n" for k in names), ";".join(names),
        hashlib.sha256(body).hexdigest()])
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    k = _hmac(_hmac(_hmac(_hmac(("AWS4" + secret_key).encode(), date), region), service), "aws4_request")
    sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    out = {k2: v for k2, v in signed.items() if k2 != "host"}
    out["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
                            f"SignedHeaders={';'.join(names)}, Signature={sig}")
    return out


# -- AWS event stream (application/vnd.amazon.eventstream) ----------------------------------

def encode_event(event_type: str, payload: dict[str, Any], message_type: str = "event") -> bytes:
    """One event stream message (used by tests' fake upstreams)."""
    hdrs = b""
    for name, value in ((":event-type", event_type), (":message-type", message_type),
                        (":content-type", "application/json")):
        hdrs += bytes([len(name)]) + name.encode() + b"\x07" + struct.pack("!H", len(value)) + value.encode()
    body = json.dumps(payload).encode()
    total = 12 + len(hdrs) + len(body) + 4
    prelude = struct.pack("!II", total, len(hdrs))
    prelude += struct.pack("!I", binascii.crc32(prelude))
    msg = prelude + hdrs + body
    return msg + struct.pack("!I", binascii.crc32(msg))


class EventStreamDecoder:
    """AWS event stream messages (`application/vnd.amazon.eventstream`) as they arrive. Each
    message is checked against its two CRC32s (the prelude's and the whole message's) before
    it is read: a corrupt or truncated stream is a 502, never garbled text. Hand-written over
    `binascii.crc32` because botocore (whose EventStreamBuffer does this) is not a
    dependency of ladle."""

    def __init__(self) -> None:
        self.buf = b""

    def feed(self, data: bytes) -> Iterator[dict[str, Any]]:
        self.buf += data
        while len(self.buf) >= 12:
            total, hlen = struct.unpack("!II", self.buf[:8])
            (prelude_crc,) = struct.unpack("!I", self.buf[8:12])
            if binascii.crc32(self.buf[:8]) != prelude_crc or total < 16 or hlen > total - 16:
                raise ApiError("BAD_GATEWAY", "bedrock stream error: a message's prelude fails its CRC check", 502)
            if len(self.buf) < total:
                return
            msg, self.buf = self.buf[:total], self.buf[total:]
            if binascii.crc32(msg[:-4]) != struct.unpack("!I", msg[-4:])[0]:
                raise ApiError("BAD_GATEWAY", "bedrock stream error: a message fails its CRC check", 502)
            headers = _headers(msg[12:12 + hlen])
            payload = msg[12 + hlen:total - 4]
            ev = json.loads(payload) if payload else {}
            if headers.get(":message-type") == "exception":
                raise ApiError("BAD_GATEWAY", f"bedrock stream error ({headers.get(':exception-type')}): "
                               f"{ev.get('message', ev)}", 502)
            yield {"type": headers.get(":event-type"), **ev}


def _headers(raw: bytes) -> dict[str, Any]:
    out, i = {}, 0
    sizes = {2: 1, 3: 2, 4: 4, 5: 8, 8: 8, 9: 16}
    while i < len(raw):
        n = raw[i]
        name = raw[i + 1:i + 1 + n].decode()
        i += 1 + n
        kind = raw[i]
        i += 1
        if kind in (0, 1):
            out[name] = kind == 0
        elif kind in (6, 7):
            (ln,) = struct.unpack("!H", raw[i:i + 2])
            val = raw[i + 2:i + 2 + ln]
            out[name] = val.decode() if kind == 7 else val
            i += 2 + ln
        else:
            i += sizes.get(kind, 0)
    return out
