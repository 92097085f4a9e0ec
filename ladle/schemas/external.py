"""External model configuration (Databricks' ExternalModel: provider, name, task and one
`<provider>_config`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

PROVIDER_CONFIG_KEY = {
    "openai": "openai_config",
    "anthropic": "anthropic_config",
    "cohere": "cohere_config",
    "ai21labs": "ai21labs_config",
    "amazon-bedrock": "amazon_bedrock_config",
    "google-cloud-vertex-ai": "google_cloud_vertex_ai_config",
    "databricks-model-serving": "databricks_model_serving_config",
    "palm": "palm_config",
    "custom": "custom_provider_config",
}


class ExternalModel(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    provider: Literal[
        "openai", "anthropic", "cohere", "ai21labs", "amazon-bedrock",
        "google-cloud-vertex-ai", "databricks-model-serving", "palm", "custom",
    ]
    name: str
    task: Literal["llm/v1/chat", "llm/v1/completions", "llm/v1/embeddings"]
    openai_config: dict[str, Any] | None = None
    anthropic_config: dict[str, Any] | None = None
    cohere_config: dict[str, Any] | None = None
    ai21labs_config: dict[str, Any] | None = None
    amazon_bedrock_config: dict[str, Any] | None = None
    google_cloud_vertex_ai_config: dict[str, Any] | None = None
    databricks_model_serving_config: dict[str, Any] | None = None
    palm_config: dict[str, Any] | None = None
    custom_provider_config: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_config(self) -> "ExternalModel":
        wanted = PROVIDER_CONFIG_KEY[self.provider]
        given = [k for k in PROVIDER_CONFIG_KEY.values() if getattr(self, k) is not None]
        if given and given != [wanted]:
            raise ValueError(f"provider '{self.provider}' takes only {wanted}, got {', '.join(given)}")
        return self
