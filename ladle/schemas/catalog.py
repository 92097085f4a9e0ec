"""The foundation model catalog's bodies (`/api/2.0/ladle/foundation-models`, ladle's own API)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ladle.schemas.llm import CHAT, COMPLETIONS, EMBEDDINGS
from ladle.schemas.wire import Body, Name, Out


class AddLocalModelRequest(Body):
    path: str = Field(min_length=1, max_length=4096, pattern=r"^[^\x00]+$",
                      description="an absolute path on the server's machine: a Hugging Face model directory")
    name: Name
    task: Literal[CHAT, COMPLETIONS, EMBEDDINGS]  # type: ignore[valid-type]


class FoundationModel(Out):
    name: str
    entity_name: str
    entity_version: str
    endpoint_name: str
    task: str
    model_id: str
    display_name: str
    description: str
    docs: str
    path: str | None
    source: str
    weights_present: bool


class FoundationModelsResponse(Out):
    models: list[FoundationModel]


class AddLocalModelResponse(Out):
    model: FoundationModel
    endpoints_created: list[str]
