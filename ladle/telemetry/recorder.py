"""What one request did (`Exchange`), and the recorder that turns it into usage and payload
rows for the row writer. Called once per request, at its very end (for streams: when the
last chunk has gone), off the response's critical path."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

from ladle.telemetry.inference_tables import payload_row
from ladle.telemetry.tables import RowWriter, TableRef
from ladle.telemetry.usage import USAGE_TABLE, usage_row


@lru_cache(maxsize=4096)
def served_entity_id(key: str) -> str:
    """A stable 32-hex id for a served entity (its replica-group key is unique per endpoint,
    entity name and what it runs)."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


@dataclass
class Exchange:
    request_id: str
    endpoint_name: str
    endpoint_id: str
    requester: str
    started_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    entity_name: str | None = None
    entity_key: str | None = None
    status: int = 0
    execution_ms: int = 0
    request: bytes = b""
    response: bytes = b""
    response_obj: Any = None          # assembled answer of a stream (logged instead of raw SSE)
    streaming: bool = False
    client_request_id: str | None = None
    usage_context: dict[str, str] | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    input_chars: int = 0
    output_chars: int = 0
    span: Any = None                  # the OpenTelemetry request span, when traced
    model_spans: Any = None           # the replica's SPANS payloads of a traced request

    @property
    def served_entity_id(self) -> str | None:
        return served_entity_id(self.entity_key) if self.entity_key else None

    def logged_response(self) -> bytes:
        if self.response_obj is not None:
            return orjson.dumps(self.response_obj)
        return self.response

    def read_request_ids(self, req: Any) -> None:
        if not isinstance(req, dict):
            return
        cid = req.get("client_request_id")
        if isinstance(cid, (str, int)):
            self.client_request_id = str(cid)
        ctx = req.get("usage_context")
        if isinstance(ctx, dict):
            self.usage_context = {str(k): str(v) for k, v in ctx.items()}


class Recorder:
    def __init__(self, writer: RowWriter, account_id: str, workspace_id: str) -> None:
        self.writer = writer
        self.account_id = account_id
        self.workspace_id = workspace_id
        self._reported: dict[str, int] = {}

    def record(self, ex: Exchange, usage: bool, payload: TableRef | None) -> None:
        if usage:
            row = usage_row(ex, self.account_id, self.workspace_id)
            self.writer.offer(USAGE_TABLE, row, 512)
        if payload is not None:
            dropped = self.writer.dropped.get(payload.name, 0)
            unreported = dropped - self._reported.get(payload.name, 0)
            codes = [f"ROWS_DROPPED:{unreported}"] if unreported > 0 else []
            row = payload_row(ex, codes)
            size = 512 + len(row["request"] or "") + len(row["response"] or "")
            if self.writer.offer(payload, row, size):
                self._reported[payload.name] = dropped
