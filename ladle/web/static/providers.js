// External model providers and their configuration fields (Databricks' ExternalModel).
// `secret: true` fields take a secret reference {{secrets/scope/key}} or, as <name>_plaintext, a value.
export const TASKS = ["llm/v1/chat", "llm/v1/completions", "llm/v1/embeddings"];

export const PROVIDERS = {
  openai: { label: "OpenAI / Azure OpenAI", key: "openai_config", fields: [
    { name: "openai_api_key", label: "API key", secret: true },
    { name: "openai_api_base", label: "API base URL", hint: "Leave empty for api.openai.com; required for Azure" },
    { name: "openai_api_type", label: "API type", choices: ["", "openai", "azure", "azuread"] },
    { name: "openai_api_version", label: "API version", hint: "Azure only, e.g. 2024-02-01" },
    { name: "openai_deployment_name", label: "Deployment name", hint: "Azure only" },
    { name: "openai_organization", label: "Organization" },
    { name: "microsoft_entra_client_id", label: "Microsoft Entra client id", hint: "azuread only" },
    { name: "microsoft_entra_client_secret", label: "Microsoft Entra client secret", secret: true, optional: true },
    { name: "microsoft_entra_tenant_id", label: "Microsoft Entra tenant id", hint: "azuread only" },
  ] },
  anthropic: { label: "Anthropic", key: "anthropic_config", fields: [
    { name: "anthropic_api_key", label: "API key", secret: true },
  ] },
  cohere: { label: "Cohere", key: "cohere_config", fields: [
    { name: "cohere_api_key", label: "API key", secret: true },
    { name: "cohere_api_base", label: "API base URL" },
  ] },
  ai21labs: { label: "AI21 Labs", key: "ai21labs_config", fields: [
    { name: "ai21labs_api_key", label: "API key", secret: true },
  ] },
  "amazon-bedrock": { label: "Amazon Bedrock", key: "amazon_bedrock_config", fields: [
    { name: "aws_region", label: "AWS region", required: true },
    { name: "bedrock_provider", label: "Bedrock provider", required: true, choices: ["anthropic", "cohere", "ai21labs", "amazon"] },
    { name: "aws_access_key_id", label: "AWS access key id", secret: true, optional: true },
    { name: "aws_secret_access_key", label: "AWS secret access key", secret: true, optional: true },
    { name: "instance_profile_arn", label: "Instance profile ARN", hint: "Instead of access keys" },
  ] },
  "google-cloud-vertex-ai": { label: "Google Cloud Vertex AI", key: "google_cloud_vertex_ai_config", fields: [
    { name: "project_id", label: "Project id", required: true },
    { name: "region", label: "Region", required: true },
    { name: "private_key", label: "Service account private key", secret: true },
  ] },
  "databricks-model-serving": { label: "Databricks Model Serving", key: "databricks_model_serving_config", fields: [
    { name: "databricks_workspace_url", label: "Workspace URL", required: true },
    { name: "databricks_api_token", label: "API token", secret: true },
  ] },
  palm: { label: "PaLM", key: "palm_config", fields: [
    { name: "palm_api_key", label: "API key", secret: true },
  ] },
  custom: { label: "Custom (OpenAI-compatible)", key: "custom_provider_config", fields: [
    { name: "custom_provider_url", label: "Provider URL", required: true },
  ], auth: true },
};

export const SECRET_HINT = "A secret reference such as {{secrets/scope/key}}, or a plaintext value (never shown again after saving).";
