"""Where a bundle problem is: file, line and field path, printed as `file:line: field: message`."""

from __future__ import annotations

from dataclasses import dataclass, field

import click

Path_ = tuple  # a path into the configuration: keys (str) and sequence indexes (int)


@dataclass(frozen=True)
class Loc:
    file: str
    line: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


def dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass(frozen=True)
class Diagnostic:
    message: str
    path: Path_ = ()
    loc: Loc | None = None

    def __str__(self) -> str:
        where = f"{self.loc}: " if self.loc else ""
        what = f"{dotted(self.path)}: " if self.path else ""
        return f"{where}{what}{self.message}"


class BundleError(click.ClickException):
    """One or more problems in the bundle; each is printed on its own line."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


@dataclass
class Locations:
    """Path -> Loc of each key/item in the merged configuration (the nearest ancestor answers)."""

    by_path: dict[Path_, Loc] = field(default_factory=dict)

    def of(self, path: Path_) -> Loc | None:
        path = tuple(path)
        while True:
            loc = self.by_path.get(path)
            if loc is not None or not path:
                return loc
            path = path[:-1]

    def copy_subtree(self, src: "Locations", src_path: Path_, dst_path: Path_) -> None:
        n = len(src_path)
        for path, loc in src.by_path.items():
            if path[:n] == tuple(src_path):
                self.by_path[tuple(dst_path) + path[n:]] = loc

    def diag(self, path: Path_, message: str) -> Diagnostic:
        return Diagnostic(message, tuple(path), self.of(path))
