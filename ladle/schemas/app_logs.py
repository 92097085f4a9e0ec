"""`GET /api/2.0/apps/{name}/logs`: ladle's own route for an app's log (the Databricks CLI reads
a websocket of the app's log service instead)."""

from __future__ import annotations

from pydantic import Field

from ladle.schemas.wire import Body, Out


class AppLogsQuery(Body):
    tail_lines: int = Field(default=0, ge=0, le=100_000,
                            description="The last N lines; 0 (the default): all of it, up to 4 MiB from the end.")


class AppLogs(Out):
    logs: str = Field(description="The app's output and the runner's lines ([ladle] ...), oldest first.")
