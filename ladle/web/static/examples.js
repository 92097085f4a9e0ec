// Build an example request body from a JSON schema (the endpoint's OpenAPI document).
const MAX_DEPTH = 6;

export function exampleFor(schema, depth = 0) {
  if (!schema || typeof schema !== "object" || depth > MAX_DEPTH) return null;
  if ("example" in schema) return schema.example;
  if (Array.isArray(schema.examples) && schema.examples.length) return schema.examples[0];
  if ("default" in schema) return schema.default;
  if (Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0];
  const alt = schema.oneOf || schema.anyOf;
  if (Array.isArray(alt) && alt.length) return exampleFor(alt[0], depth + 1);
  if (Array.isArray(schema.allOf)) return Object.assign({}, ...schema.allOf.map((s) => exampleFor(s, depth + 1) || {}));
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  switch (type || (schema.properties ? "object" : schema.items ? "array" : null)) {
    case "object": {
      const props = schema.properties || {};
      const names = Array.isArray(schema.required) && schema.required.length ? schema.required : Object.keys(props);
      const out = {};
      for (const n of names) out[n] = exampleFor(props[n], depth + 1);
      return out;
    }
    case "array": return [exampleFor(schema.items, depth + 1)].filter((x) => x !== null);
    case "integer": return 1;
    case "number": return 1.5;
    case "boolean": return false;
    case "string":
      if (schema.format === "date-time") return new Date().toISOString();
      if (schema.format === "byte") return "";
      return "text";
    default: return null;
  }
}

// The MLflow scoring protocol offers four input shapes; prefer dataframe_split with the
// signature's columns, as the Databricks docs do.
export function scoringExample(schema) {
  const p = (schema && schema.properties) || {};
  const rec = p.dataframe_records && p.dataframe_records.items;
  const cols = p.dataframe_split && p.dataframe_split.properties && p.dataframe_split.properties.columns
    && p.dataframe_split.properties.columns.items && p.dataframe_split.properties.columns.items.enum;
  if (Array.isArray(cols) && cols.length) {
    const row = cols.map((c) => { const v = exampleFor(rec && rec.properties && rec.properties[c]); return v === null ? 1 : v; });
    return { dataframe_split: { columns: cols, data: [row] } };
  }
  if (rec && rec.properties && Object.keys(rec.properties).length) return { dataframe_records: [exampleFor(rec)] };
  if (p.messages) return { messages: [{ role: "user", content: "Hello!" }], max_tokens: 128 };
  if (p.dataframe_split || p.inputs) return { dataframe_split: { columns: ["x"], data: [[1.5]] } };
  return exampleFor(schema) || {};
}

export function taskExample(task) {
  if (task === "llm/v1/chat") return { messages: [{ role: "user", content: "Hello!" }], max_tokens: 128 };
  if (task === "llm/v1/completions") return { prompt: "Once upon a time", max_tokens: 64 };
  if (task === "llm/v1/embeddings") return { input: ["Hello, world"] };
  return null;
}

export function invocationSchema(doc, path) {
  try {
    return doc.paths[path].post.requestBody.content["application/json"].schema;
  } catch {
    return null;
  }
}
