"""The workspace files API apps and bundles upload source with (`w.workspace.upload`, which
posts a multipart form, `import_` with base64 JSON, `mkdirs`, `get_status`, `list`, `delete`,
`export`/`download`). Who may touch which path is decided in control/workspace_files.py; disk
work runs off the event loop."""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ladle.api.bodies import json_body, principal, validate
from ladle.control.workspace_files import MAX_IMPORT_BYTES, WorkspaceFiles
from ladle.schemas import apps as s
from ladle.schemas.errors import invalid

TRUE = ("true", "1")


async def _import_fields(request: Request) -> tuple[s.ImportBody, bytes]:
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        async with request.form(max_files=1, max_fields=10, max_part_size=MAX_IMPORT_BYTES + 1) as form:
            upload = form.get("content")
            if upload is None or isinstance(upload, str):
                raise invalid("content: the multipart form needs a file part named 'content'")
            content = await upload.read()
            fields: dict[str, Any] = {k: v for k, v in form.items() if k != "content" and isinstance(v, str)}
        fields["overwrite"] = str(fields.get("overwrite", "false")).lower() in TRUE
        return validate(s.ImportBody, fields), content
    body = validate(s.ImportBody, await json_body(request))
    try:
        content = base64.b64decode(body.content or "", validate=True)
    except (binascii.Error, ValueError):
        raise invalid("content: not base64") from None
    return body, content


def routes(files: WorkspaceFiles) -> list[Route]:
    async def import_(request: Request) -> Response:
        body, content = await _import_fields(request)
        if body.format not in (None, "SOURCE", "AUTO", "RAW"):
            raise invalid(f"format: {body.format} imports are not supported; use AUTO, SOURCE or RAW")
        await asyncio.to_thread(files.write, principal(request), body.path, content, body.overwrite)
        return JSONResponse({})

    async def mkdirs(request: Request) -> Response:
        body = validate(s.WorkspacePath, await json_body(request))
        await asyncio.to_thread(files.mkdirs, principal(request), body.path)
        return JSONResponse({})

    async def get_status(request: Request) -> Response:
        q = validate(s.WorkspacePath, dict(request.query_params))
        return JSONResponse(await asyncio.to_thread(files.status, principal(request), q.path))

    async def list_(request: Request) -> Response:
        q = validate(s.WorkspacePath, dict(request.query_params))
        return JSONResponse({"objects": await asyncio.to_thread(files.list, principal(request), q.path)})

    async def delete(request: Request) -> Response:
        body = validate(s.DeleteBody, await json_body(request))
        await asyncio.to_thread(files.delete, principal(request), body.path, body.recursive)
        return JSONResponse({})

    async def export(request: Request) -> Response:
        q = validate(s.ExportQuery, dict(request.query_params))
        data = await asyncio.to_thread(files.read, principal(request), q.path)
        if request.query_params.get("direct_download", "").lower() in TRUE:
            return Response(data, media_type="application/octet-stream")
        ext = q.path.rsplit(".", 1)[-1] if "." in q.path.rsplit("/", 1)[-1] else ""
        return JSONResponse({"content": base64.b64encode(data).decode(), "file_type": ext})

    base = "/api/2.0/workspace"
    return [
        Route(base + "/import", import_, methods=["POST"]),
        Route(base + "/mkdirs", mkdirs, methods=["POST"]),
        Route(base + "/get-status", get_status, methods=["GET"]),
        Route(base + "/list", list_, methods=["GET"]),
        Route(base + "/delete", delete, methods=["POST"]),
        Route(base + "/export", export, methods=["GET"]),
    ]
