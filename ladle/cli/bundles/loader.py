"""Reading a bundle: databricks.yml (or .yaml), its `include` globs, and the selected target.

Files are parsed with ruamel.yaml, which keeps each key's line, so every later problem can name
its file and line. Merging follows the Databricks CLI: maps merge key by key, scalars from the
later file (or the target) win, sequences are concatenated; an app's `resources` are merged by
`name`. Target selection: `-t`, else the only target, else the one marked `default: true`
(no `targets` at all means a target named `default`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from ladle.cli.bundles.diagnostics import BundleError, Diagnostic, Loc, Locations, Path_

ENTRY_POINTS = ("databricks.yml", "databricks.yaml", "bundle.yml", "bundle.yaml")
# Keys of a target merged over the root configuration (the rest are the target's own settings)
TARGET_OVERRIDES = ("bundle", "workspace", "resources", "presets", "permissions", "sync", "artifacts", "run_as")


@dataclass
class Document:
    """One YAML file as plain Python values, with the line of each key."""

    file: str
    data: dict[str, Any]
    locs: Locations


@dataclass
class Loaded:
    """The merged files before target selection."""

    root: Path
    data: dict[str, Any]
    locs: Locations
    documents: list[Document] = field(default_factory=list)


def find_root(start: Path) -> Path:
    """The folder holding databricks.yml: `start` or its nearest parent."""
    for folder in (start, *start.parents):
        if any((folder / name).is_file() for name in ENTRY_POINTS):
            return folder
    raise BundleError([Diagnostic(f"unable to locate bundle root: databricks.yml not found in {start} "
                                  "or its parents")])


def _plain(node: Any, path: Path_, file: str, locs: Locations) -> Any:
    if isinstance(node, CommentedMap):
        out = {}
        for key, value in node.items():
            line, _col = node.lc.key(key)
            locs.by_path[(*path, str(key))] = Loc(file, line + 1)
            out[str(key)] = _plain(value, (*path, str(key)), file, locs)
        return out
    if isinstance(node, CommentedSeq):
        out_list = []
        for i, value in enumerate(node):
            line, _col = node.lc.item(i)
            locs.by_path[(*path, i)] = Loc(file, line + 1)
            out_list.append(_plain(value, (*path, i), file, locs))
        return out_list
    if node is None or isinstance(node, (bool, int, float)):
        return node
    return str(node)


def parse_file(path: Path, rel: str) -> Document:
    yaml = YAML(typ="rt")
    try:
        node = yaml.load(path.read_text(encoding="utf-8"))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Loc(rel, mark.line + 1) if mark else Loc(rel, 1)
        raise BundleError([Diagnostic(f"invalid YAML: {exc.problem or exc}", (), loc)]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError([Diagnostic(f"cannot read {rel}: {exc}")]) from None
    locs = Locations({(): Loc(rel, 1)})
    if node is None:
        return Document(rel, {}, locs)
    if not isinstance(node, CommentedMap):
        raise BundleError([Diagnostic("the file must hold a mapping", (), Loc(rel, 1))])
    return Document(rel, _plain(node, (), rel, locs), locs)


def merge_into(dst: dict[str, Any], src: dict[str, Any], path: Path_, dlocs: Locations,
               slocs: Locations, spath: Path_) -> None:
    """Merge `src` (at `spath` in its document) into `dst` (at `path`), moving locations along."""
    for key, value in src.items():
        here, there = (*path, key), (*spath, key)
        if key in dst and isinstance(dst[key], dict) and isinstance(value, dict):
            if key == "resources" and len(path) == 3 and path[1] == "apps":
                _merge_by_name(dst, key, value, here, dlocs, slocs, there)
                continue
            if there in slocs.by_path:
                dlocs.by_path.setdefault(here, slocs.by_path[there])
            merge_into(dst[key], value, here, dlocs, slocs, there)
        elif key in dst and isinstance(dst[key], list) and isinstance(value, list):
            if key == "resources" and len(path) == 3 and path[1] == "apps":
                _merge_by_name(dst, key, value, here, dlocs, slocs, there)
                continue
            offset = len(dst[key])
            for i, item in enumerate(value):
                dlocs.copy_subtree(slocs, (*there, i), (*here, offset + i))
            dst[key] = dst[key] + value
        else:
            dlocs.copy_subtree(slocs, there, here)
            dst[key] = value


def _merge_by_name(dst: dict, key: str, value: Any, here: Path_, dlocs: Locations, slocs: Locations,
                   there: Path_) -> None:
    items = list(dst[key]) if isinstance(dst[key], list) else []
    names = {item.get("name"): i for i, item in enumerate(items) if isinstance(item, dict)}
    for j, item in enumerate(value if isinstance(value, list) else []):
        i = names.get(item.get("name")) if isinstance(item, dict) else None
        if i is None:
            dlocs.copy_subtree(slocs, (*there, j), (*here, len(items)))
            items.append(item)
        else:
            merge_into(items[i], item, (*here, i), dlocs, slocs, (*there, j))
    dst[key] = items


def load(root: Path) -> Loaded:
    """Parse the entry point and its includes, merged (targets not applied yet)."""
    entry = next((name for name in ENTRY_POINTS if (root / name).is_file()), None)
    if entry is None:
        raise BundleError([Diagnostic(f"databricks.yml not found in {root}")])
    main = parse_file(root / entry, entry)
    loaded = Loaded(root, {}, Locations(), [main])
    merge_into(loaded.data, main.data, (), loaded.locs, main.locs, ())
    loaded.locs.by_path[()] = Loc(entry, 1)
    includes = main.data.get("include") or []
    problems: list[Diagnostic] = []
    if not isinstance(includes, list):
        raise BundleError([main.locs.diag(("include",), "must be a list of file paths or globs")])
    seen = {entry}
    for i, pattern in enumerate(includes):
        if not isinstance(pattern, str):
            continue  # the schema check reports it
        matches = sorted(p for p in root.glob(pattern) if p.is_file())
        if not matches:
            problems.append(main.locs.diag(("include", i), f"{pattern} did not match any files"))
        for path in matches:
            rel = path.relative_to(root).as_posix()
            if rel in seen:
                continue
            seen.add(rel)
            doc = parse_file(path, rel)
            if "include" in doc.data:
                problems.append(doc.locs.diag(("include",), "include can only be used in databricks.yml"))
            loaded.documents.append(doc)
            _check_duplicate_resources(loaded, doc, problems)
            merge_into(loaded.data, doc.data, (), loaded.locs, doc.locs, ())
    if problems:
        raise BundleError(problems)
    return loaded


def _check_duplicate_resources(loaded: Loaded, doc: Document, problems: list[Diagnostic]) -> None:
    for rtype, items in (doc.data.get("resources") or {}).items():
        if not isinstance(items, dict):
            continue
        existing = (loaded.data.get("resources") or {}).get(rtype) or {}
        for key in items:
            if key in existing:
                first = loaded.locs.of(("resources", rtype, key))
                problems.append(doc.locs.diag(("resources", rtype, key),
                                              f"resource {key} is already defined at {first}"))


def target_names(data: dict[str, Any]) -> list[str]:
    targets = data.get("targets")
    return list(targets) if isinstance(targets, dict) and targets else ["default"]


def select_target(loaded: Loaded, requested: str | None) -> tuple[str, dict[str, Any], dict[str, Any], Locations]:
    """(target name, merged configuration, the target's own settings, locations)."""
    data, locs = loaded.data, loaded.locs
    targets = data.get("targets") if isinstance(data.get("targets"), dict) else {}
    if requested is None:
        if not targets:
            requested = "default"
        elif len(targets) == 1:
            requested = next(iter(targets))
        else:
            defaults = [name for name, t in targets.items() if isinstance(t, dict) and t.get("default")]
            if len(defaults) > 1:
                raise BundleError([locs.diag(("targets",), "multiple targets are marked as default ("
                                             + ", ".join(defaults) + ")")])
            if not defaults:
                raise BundleError([Diagnostic("please specify target (-t): " + ", ".join(targets))])
            requested = defaults[0]
    elif targets and requested not in targets:
        raise BundleError([locs.diag(("targets",), f"{requested}: no such target. Available targets: "
                                     + ", ".join(targets))])
    elif not targets and requested != "default":
        raise BundleError([Diagnostic(f"{requested}: no such target (the bundle defines no targets)")])
    merged = {k: v for k, v in data.items() if k != "targets"}
    merged_locs = Locations(dict(locs.by_path))
    target = targets.get(requested) or {} if targets else {}
    if not isinstance(target, dict):
        target = {}
    tpath = ("targets", requested)
    for key in TARGET_OVERRIDES:
        if key in target:
            merge_into(merged, {key: target[key]}, (), merged_locs, locs, tpath)
    return requested, merged, target, merged_locs
