// "Copy as" snippets for the same request: curl, Python databricks-sdk, openai.
const SDK_KEYS = new Set(["client_request_id", "dataframe_records", "dataframe_split", "extra_params", "input",
  "inputs", "instances", "max_tokens", "messages", "n", "prompt", "stop", "temperature", "usage_context"]);

export function py(v, indent = 0) {
  const pad = " ".repeat(indent + 4);
  const end = " ".repeat(indent);
  if (v === null || v === undefined) return "None";
  if (v === true) return "True";
  if (v === false) return "False";
  if (typeof v === "number") return Number.isFinite(v) ? String(v) : v > 0 ? 'float("inf")' : v < 0 ? 'float("-inf")' : 'float("nan")';
  if (typeof v === "string") return JSON.stringify(v);
  if (Array.isArray(v)) {
    const flat = `[${v.map((x) => py(x, indent)).join(", ")}]`;
    if (flat.length < 72 && !flat.includes("\n")) return flat;
    return `[\n${v.map((x) => pad + py(x, indent + 4)).join(",\n")},\n${end}]`;
  }
  const entries = Object.entries(v);
  const flat = `{${entries.map(([k, x]) => `${JSON.stringify(k)}: ${py(x, indent)}`).join(", ")}}`;
  if (flat.length < 72 && !flat.includes("\n")) return flat;
  return `{\n${entries.map(([k, x]) => `${pad}${JSON.stringify(k)}: ${py(x, indent + 4)}`).join(",\n")},\n${end}}`;
}

const shq = (s) => `'${s.replace(/'/g, "'\\''")}'`;

export function curl(origin, path, body) {
  return [`curl -sS${body.stream ? " -N" : ""} -X POST ${shq(origin + path)} \\`,
    '  -H "Authorization: Bearer $DATABRICKS_TOKEN" \\',
    '  -H "Content-Type: application/json" \\',
    `  -d ${shq(JSON.stringify(body))}`].join("\n");
}

export function sdk(origin, name, served, body) {
  const head = ["# pip install databricks-sdk", `# export DATABRICKS_HOST=${origin}`, "# export DATABRICKS_TOKEN=<your ladle token>",
    "from databricks.sdk import WorkspaceClient"];
  const keys = Object.keys(body).filter((k) => k !== "stream");
  if (served || keys.some((k) => !SDK_KEYS.has(k))) {
    const path = served ? `/serving-endpoints/${name}/served-models/${served}/invocations` : `/serving-endpoints/${name}/invocations`;
    const b = { ...body };
    delete b.stream;
    return [...head, "", "w = WorkspaceClient()", `response = w.api_client.do("POST", ${JSON.stringify(path)}, body=${py(b)})`, "print(response)"].join("\n");
  }
  const imports = [];
  const args = [`    name=${JSON.stringify(name)},`];
  for (const k of keys) {
    if (k === "dataframe_split") { imports.push("DataframeSplitInput"); args.push(`    dataframe_split=DataframeSplitInput.from_dict(${py(body[k], 4)}),`); }
    else if (k === "messages") { imports.push("ChatMessage"); args.push(`    messages=[ChatMessage.from_dict(m) for m in ${py(body[k], 4)}],`); }
    else args.push(`    ${k}=${py(body[k], 4)},`);
  }
  const lines = [...head];
  if (imports.length) lines.push(`from databricks.sdk.service.serving import ${imports.join(", ")}`);
  lines.push("", "w = WorkspaceClient()", "response = w.serving_endpoints.query(", ...args, ")");
  if (body.stream) lines.splice(4, 0, "# The SDK reads whole responses; for streaming use the openai client.");
  lines.push(body.messages ? "print(response.choices[0].message.content)" : "print(response.as_dict())");
  return lines.join("\n");
}

export function openai(origin, name, task, body) {
  const head = ["# pip install openai", "import os", "from openai import OpenAI", "",
    `client = OpenAI(api_key=os.environ["DATABRICKS_TOKEN"], base_url=${JSON.stringify(origin + "/serving-endpoints")})`];
  const rest = { ...body };
  delete rest.stream;
  const kwargs = (o) => Object.entries(o).map(([k, v]) => `    ${k}=${py(v, 4)},`);
  if (task === "agent/v1/responses") {      // an agent: the Responses API, `model` = the endpoint
    delete rest.model;
    const call = ["client.responses.create(", `    model=${JSON.stringify(name)},`, ...kwargs(rest)];
    return body.stream
      ? [...head, `stream = ${call[0]}`, ...call.slice(1), "    stream=True,", ")", "for event in stream:",
        "    if event.type == \"response.output_text.delta\":", "        print(event.delta, end=\"\", flush=True)", "print()"].join("\n")
      : [...head, `response = ${call[0]}`, ...call.slice(1), ")", "print(response.output_text)"].join("\n");
  }
  const method = { "llm/v1/chat": "chat.completions", "llm/v1/completions": "completions", "llm/v1/embeddings": "embeddings" }[task]
    || (body.messages ? "chat.completions" : null);
  if (!method) {
    return [...head, "# A custom model takes the MLflow scoring protocol, not an OpenAI shape;",
      "# the client's generic post sends it with the same auth and base URL.",
      `response = client.post(${JSON.stringify(`/${name}/invocations`)}, body=${py(rest)}, cast_to=object)`, "print(response)"].join("\n");
  }
  const call = [`client.${method}.create(`, `    model=${JSON.stringify(name)},`, ...kwargs(rest)];
  if (body.stream && method !== "embeddings") {
    return [...head, `stream = ${call[0]}`, ...call.slice(1), "    stream=True,", ")", "for chunk in stream:",
      method === "completions" ? "    print(chunk.choices[0].text if chunk.choices else \"\", end=\"\", flush=True)"
        : "    if chunk.choices and chunk.choices[0].delta.content:\n        print(chunk.choices[0].delta.content, end=\"\", flush=True)", "print()"].join("\n");
  }
  const out = method === "embeddings" ? "print(len(response.data[0].embedding))"
    : method === "completions" ? "print(response.choices[0].text)" : "print(response.choices[0].message.content)";
  return [...head, `response = ${call[0]}`, ...call.slice(1), ")", out, "print(response.usage)"].join("\n");
}
