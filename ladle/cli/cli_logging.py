"""Logging of one CLI run, configured by `--log-level`, `--log-file`, `--log-format` and `--debug`
the way the Databricks CLI's flags do (cmd/root/logger.go, libs/flags):

- `--log-level trace|debug|info|warn|error|disabled` (default `disabled`: no log at all;
  `--debug` means `debug`), env `DATABRICKS_LOG_LEVEL`;
- `--log-file stderr|stdout|PATH` (default stderr; a file is appended to, created 0600),
  env `DATABRICKS_LOG_FILE`;
- `--log-format text|json` (default text), env `DATABRICKS_LOG_FORMAT`. An invalid value in
  the environment is ignored, as the Databricks CLI does.

Records of every logger in the process (ladle's, httpx's) go to the one handler. Nothing secret
is written: the run's token and client secret, and any `Bearer ...` value, are replaced with
`***` in every formatted line; request and response bodies and headers are never logged.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

LEVELS: dict[str, int | None] = {
    "trace": 5,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "disabled": None,
}
FORMATS = ("text", "json")
LEVEL_ENV = "DATABRICKS_LOG_LEVEL"
FILE_ENV = "DATABRICKS_LOG_FILE"
FORMAT_ENV = "DATABRICKS_LOG_FORMAT"
_LEVEL_NAMES = {5: "TRACE", logging.DEBUG: "DEBUG", logging.INFO: "INFO", logging.WARNING: "WARN",
                logging.ERROR: "ERROR", logging.CRITICAL: "ERROR"}
_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+")
_TOKEN_SHAPED = re.compile(r"\bdapi[0-9A-Za-z_-]{8,}")

log = logging.getLogger("ladle.cli")


def effective(level: str | None, file: str | None, fmt: str | None, debug: bool,
              env: dict[str, str] | None = None) -> tuple[str, str, str]:
    """Flag > environment (valid values only) > default; `--debug` raises the level to debug."""
    env = os.environ if env is None else env  # type: ignore[assignment]
    env_level = (env.get(LEVEL_ENV) or "").lower()
    env_fmt = (env.get(FORMAT_ENV) or "").lower()
    level = (level or (env_level if env_level in LEVELS else "") or "disabled").lower()
    if debug and level in ("disabled", "info", "warn", "error"):
        level = "debug"
    fmt = (fmt or (env_fmt if env_fmt in FORMATS else "") or "text").lower()
    file = file or env.get(FILE_ENV) or "stderr"
    return level, file, fmt


@dataclass
class _Redactor:
    secrets: set[str] = field(default_factory=set)

    def __call__(self, text: str) -> str:
        # values under 4 characters are not real credentials; masking them would mangle every line
        for secret in sorted((s for s in self.secrets if len(s) >= 4), key=len, reverse=True):
            text = text.replace(secret, "***")
            encoded = json.dumps(secret)[1:-1]
            if encoded != secret:
                text = text.replace(encoded, "***")
        text = _BEARER.sub(r"\1***", text)
        return _TOKEN_SHAPED.sub("***", text)


class _TextFormatter(logging.Formatter):
    """`15:04:05 DEBUG message pid=123` (the Databricks CLI's friendly text handler's layout)."""

    def __init__(self, redact: _Redactor) -> None:
        super().__init__()
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        line = (f"{time.strftime('%H:%M:%S', time.localtime(record.created))} "
                f"{_LEVEL_NAMES.get(record.levelno, record.levelname):>5} {record.getMessage()} "
                f"pid={record.process} logger={record.name}")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return self._redact(line)


class _JsonFormatter(logging.Formatter):
    """One JSON object a line, like Go's slog JSON handler. Hand-written: six fields do not
    justify a dependency (python-json-logger) in the CLI."""

    def __init__(self, redact: _Redactor) -> None:
        super().__init__()
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created))
            + f".{int(record.msecs):03d}" + time.strftime("%z", time.localtime(record.created)),
            "level": _LEVEL_NAMES.get(record.levelno, record.levelname),
            "msg": self._redact(record.getMessage()),
            "logger": record.name,
            "pid": record.process,
        }
        if record.exc_info:
            entry["error"] = self._redact(self.formatException(record.exc_info))
        return self._redact(json.dumps(entry, ensure_ascii=False))


class LogSession:
    """The handler of one CLI run; `close()` puts the process's logging back as it was."""

    def __init__(self, level: str, file: str, fmt: str) -> None:
        self.level = level
        self.redact = _Redactor()
        self._handler: logging.Handler | None = None
        self._stream: IO[str] | None = None
        self._saved: list[tuple[logging.Logger, int]] = []
        levelno = LEVELS[level]
        if levelno is None:
            return
        if file.lower() == "stderr":
            stream: IO[str] = sys.stderr
        elif file.lower() == "stdout":
            stream = sys.stdout
        else:
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            stream = self._stream = os.fdopen(fd, "a", encoding="utf-8")
        handler = logging.StreamHandler(stream)
        handler.setFormatter((_JsonFormatter if fmt == "json" else _TextFormatter)(self.redact))
        handler.setLevel(levelno)
        self._handler = handler
        root = logging.getLogger()
        self._saved = [(root, root.level)]
        root.setLevel(levelno)
        root.addHandler(handler)
        if levelno > LEVELS["trace"]:  # type: ignore[operator]
            # httpcore's connection-level records are trace detail (the Go SDK's are too)
            core = logging.getLogger("httpcore")
            self._saved.append((core, core.level))
            core.setLevel(logging.INFO)

    @property
    def enabled(self) -> bool:
        return self._handler is not None

    def add_secrets(self, values: Iterable[str | None]) -> None:
        self.redact.secrets.update(v for v in values if v)

    def close(self) -> None:
        if self._handler is not None:
            logging.getLogger().removeHandler(self._handler)
            self._handler.flush()
            self._handler = None
        for logger, level in self._saved:
            logger.setLevel(level)
        self._saved = []
        if self._stream is not None:
            self._stream.close()
            self._stream = None
