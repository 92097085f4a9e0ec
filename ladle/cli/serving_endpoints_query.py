"""`ladle serving-endpoints query`: POST /serving-endpoints/{name}/invocations.

Scalar flags override the same fields of --json. With `"stream": true` (flag or JSON) the
answer is read as Server-Sent Events and each chunk's text is printed as it arrives: an
improvement on the Databricks CLI, which cannot read SSE. Chat chunks give
`choices[0].delta.content`, completions chunks `choices[0].text` (choice index 0 only); a
chunk without choices (custom model) is printed as one JSON line. In `-o json` mode every
chunk is printed as one compact JSON line instead.
"""

from __future__ import annotations

import json
from typing import Any

import click
import httpx

from ladle.cli.client import ApiClient, from_context, seg
from ladle.cli.options import json_option, settings
from ladle.cli.serving_endpoints_help import BodyHelpCommand
from ladle.cli.output import emit_json, emit_text
from ladle.support.sse import response_events


@click.command("query", cls=BodyHelpCommand)
@click.argument("name")
@json_option
@click.option(
    "--client-request-id",
    help="Optional user-provided request identifier recorded in the inference and usage tables.",
)
@click.option("--max-tokens", type=int, help="The max tokens field, for completions and chat endpoints.")
@click.option("--n", "n", type=int, help="The n (number of candidates) field, for completions and chat endpoints.")
@click.option("--stream", is_flag=True, default=False, help="Stream the answer (Server-Sent Events), printing text as it arrives.")
@click.option("--temperature", type=float, help="The temperature field, for completions and chat endpoints.")
@click.pass_context
def query(
    ctx: click.Context,
    name: str,
    json_body: dict[str, Any] | None,
    client_request_id: str | None,
    max_tokens: int | None,
    n: int | None,
    stream: bool,
    temperature: float | None,
) -> None:
    """Query a serving endpoint.

    The request (messages, prompt, input, dataframe_split, dataframe_records, instances,
    inputs, params, ...) is given with --json; the scalar flags are merged into it.

    NAME is the name of the serving endpoint. This name must be unique across the workspace.
    """
    body = dict(json_body or {})
    flags = {"client_request_id": client_request_id, "max_tokens": max_tokens, "n": n, "temperature": temperature}
    body.update({k: v for k, v in flags.items() if v is not None})
    if stream:
        body["stream"] = True
    path = f"/serving-endpoints/{seg(name)}/invocations"
    client = from_context(ctx)
    if body.get("stream") is True:
        _query_stream(client, path, body, as_json=settings(ctx).output == "json")
    else:
        emit_json(client.call("POST", path, body), deep=False)


def _query_stream(client: ApiClient, path: str, body: dict[str, Any], *, as_json: bool) -> None:
    with client.stream("POST", path, body) as response:
        content_type = response.headers.get("content-type", "")
        if not content_type.startswith("text/event-stream"):
            response.read()
            emit_json(_decode(response), deep=False)
            return
        ended_with_newline = True
        try:
            for payload in (ev.data for ev in response_events(response) if ev.data):
                if payload == "[DONE]":
                    break
                text = _render_chunk(payload, as_json=as_json)
                if text:
                    emit_text(text)
                    ended_with_newline = text.endswith("\n")
        finally:
            if not ended_with_newline:
                emit_text("\n")


def _decode(response: httpx.Response) -> Any:
    if not response.content.strip():
        return None
    try:
        return response.json()
    except ValueError as exc:
        raise click.ClickException("the server answered non-JSON content") from exc


def _render_chunk(payload: str, *, as_json: bool) -> str:
    try:
        chunk = json.loads(payload)
    except json.JSONDecodeError:
        return payload + "\n"
    if isinstance(chunk, dict):
        _raise_if_error(chunk)
    if as_json:
        return json.dumps(chunk, ensure_ascii=False) + "\n"
    if isinstance(chunk, dict) and isinstance(chunk.get("choices"), list):
        return "".join(_choice_text(c) for c in chunk["choices"] if isinstance(c, dict) and c.get("index", 0) == 0)
    return json.dumps(chunk, ensure_ascii=False) + "\n"


def _choice_text(choice: dict[str, Any]) -> str:
    delta = choice.get("delta")
    if isinstance(delta, dict):
        content = delta.get("content")
        return content if isinstance(content, str) else ""
    text = choice.get("text")
    return text if isinstance(text, str) else ""


def _raise_if_error(chunk: dict[str, Any]) -> None:
    """An error sent inside the stream: Databricks shape or OpenAI shape."""
    if "choices" in chunk:
        return
    if chunk.get("error_code") and chunk.get("message"):
        raise click.ClickException(str(chunk["message"]))
    error = chunk.get("error")
    if isinstance(error, dict) and error.get("message"):
        raise click.ClickException(str(error["message"]))
    if isinstance(error, str) and error:
        raise click.ClickException(error)
