"""`ladle apps manifest` and `ladle apps init`, after the Databricks CLI's init:
the same flags, `--set` rules and messages, and the same project layout (databricks.yml with
the app and its resources as bundle variables set by the default target, app.yaml with a
`valueFrom` entry per resource field, .env with the values for local runs). ladle's templates
ship inside ladle (apps_manifest.py), so there is no clone and no AppKit version to resolve.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click

from ladle.cli import apps_manifest as am
from ladle.cli.auth_config import resolve_config
from ladle.cli.options import LadleCommand, settings

MAX_APP_NAME = 30
DEV_PREFIX = "dev-"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]*$")
DEFAULT_DESCRIPTION = "A ladle app"
RENAMES = {"_gitignore": ".gitignore", "_env": ".env"}
_PLACEHOLDER = re.compile(r"\{\{([a-z_]+)\}\}")


def validate_name(name: str) -> None:
    if not name:
        raise click.ClickException("project name is required")
    if len(DEV_PREFIX) + len(name) > MAX_APP_NAME:
        raise click.ClickException(f"name too long (max {MAX_APP_NAME - len(DEV_PREFIX)} chars)")
    if not NAME_PATTERN.match(name):
        raise click.ClickException("must start with a letter, use only lowercase letters, numbers, or hyphens")


def render(text: str, values: dict[str, str]) -> str:
    """Replace `{{key}}`; a line holding only a placeholder that renders empty is dropped.
    Hand-written (a dozen lines): string.Template's `${...}` would clash with the bundle's own
    `${var.x}` references, and a template engine would be a dependency for eight placeholders."""
    out = []
    for line in text.splitlines(keepends=True):
        lone = _PLACEHOLDER.fullmatch(line.strip())
        if lone and not values[lone.group(1)]:
            continue
        out.append(_PLACEHOLDER.sub(lambda m: values[m.group(1)], line))
    return "".join(out)


def scaffold(template: str | None, dest: Path, values: dict[str, str]) -> int:
    """Write the template's files into `dest` (which must not exist); return how many."""
    src = am.template_dir(template)
    dest.mkdir(parents=True)
    count = 0
    for item in sorted(src.iterdir(), key=lambda p: p.name):
        if not item.is_file() or item.name == am.MANIFEST_FILE:
            continue
        name = item.name.removesuffix(".tmpl")
        name = RENAMES.get(name, name)
        (dest / name).write_text(render(item.read_text(encoding="utf-8"), values), encoding="utf-8")
        count += 1
    return count


def _split(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


@click.command("manifest", cls=LadleCommand)
@click.option("--template", help=f"Template name (default: {am.DEFAULT_TEMPLATE}).")
@click.option("--branch", hidden=True, help="Not used: ladle's templates ship with ladle.")
@click.option("--version", "version_", hidden=True, help="Not used: ladle's templates ship with ladle.")
def manifest(template: str | None, branch: str | None, version_: str | None) -> None:
    """Print template manifest with available plugins and required resources.

    Prints the template's appkit.plugins.json: its plugins, the resources each needs
    (`resourceKey`, `permission`) and the env var each resource field sets in app.yaml.
    No workspace authentication is required.
    """
    if branch and version_:
        raise click.ClickException("--branch and --version are mutually exclusive")
    click.echo(am.manifest_text(template), nl=False)


@click.command("init", cls=LadleCommand)
@click.option("--name", help="Project name (prompts if not provided).")
@click.option("--template", help=f"Template name: one of ladle's templates (default: {am.DEFAULT_TEMPLATE}).")
@click.option("--branch", hidden=True, help="Not used: ladle's templates ship with ladle.")
@click.option("--version", "version_", hidden=True, help="Not used: ladle's templates ship with ladle.")
@click.option("--features", multiple=True, help="Features/plugins to enable (comma-separated, as defined in template manifest).")
@click.option("--plugins", multiple=True, hidden=True, help="Alias for --features.")
@click.option("--set", "set_values", multiple=True,
              help="Set resource values (format: plugin.resourceKey.field=value, can specify multiple).")
@click.option("--description", help="App description.")
@click.option("--output-dir", type=click.Path(file_okay=False), help="Directory to write the project to.")
@click.option("--deploy", is_flag=True, default=False,
              help="Deploy the app after creation (ladle bundle deploy, then ladle bundle run app).")
@click.option("--run", "run_mode", default="none",
              help="Run the app after creation (none, dev: on 127.0.0.1, port DATABRICKS_APP_PORT or 8000).")
@click.option("--auto-approve", is_flag=True, default=False, help="Skip confirmation prompts.")
@click.option("--skip-install", is_flag=True, default=False,
              help="Skip installing project dependencies. Cannot be combined with --run.")
@click.pass_context
def init(ctx: click.Context, name: str | None, template: str | None, branch: str | None, version_: str | None,
         features: tuple[str, ...], plugins: tuple[str, ...], set_values: tuple[str, ...], description: str | None,
         output_dir: str | None, deploy: bool, run_mode: str, auto_approve: bool, skip_install: bool) -> None:
    """Initialize a new app from a template.

    Writes NAME/ (or --output-dir/NAME/): app.py, requirements.txt, app.yaml (an env entry
    with `valueFrom` for each resource), databricks.yml (a bundle with the app, its resources
    and a default target), .env (the resource values for local runs) and .gitignore.

    Example: ladle apps init --name my-app --features serving
    --set serving.serving-endpoint.name=my-endpoint --run none
    """
    if branch and version_:
        raise click.ClickException("--branch and --version are mutually exclusive")
    if skip_install and run_mode not in ("", "none"):
        raise click.ClickException("--skip-install cannot be combined with --run (dev requires dependencies "
                                   "to be installed)")
    if run_mode not in ("", "none", "dev"):
        if run_mode == "dev-remote":
            raise click.ClickException("--run=dev-remote is only supported for Node.js projects with "
                                       "@databricks/appkit")
        raise click.ClickException(f"invalid --run value: {run_mode!r} (must be none, dev, or dev-remote)")
    if not name:
        if not sys.stdin.isatty():
            raise click.ClickException("--name is required in non-interactive mode")
        name = click.prompt("Project name", err=True)
    validate_name(name)
    dest = Path(output_dir) / name if output_dir else Path(name)
    if dest.exists():
        raise click.ClickException(f"directory {dest} already exists")

    m = am.Manifest.load(template)
    chosen = _split(features) + _split(plugins)
    m.validate_names(chosen)
    values = m.parse_set(list(set_values))
    chosen += [p for p in m.mandatory() if p not in chosen]
    required = [r for p in chosen for r in m.resources(p, "required")]
    m.check_required(chosen, required, values)
    res = m.selected(chosen, values)
    host = _workspace_host(ctx)

    count = scaffold(template, dest, {
        "project_name": name,
        "app_description": (description or DEFAULT_DESCRIPTION).replace('"', "'"),
        "workspace_host": host,
        "bundle_variables": am.bundle_variables(res),
        "bundle_resources": am.bundle_resources(res),
        "target_variables": am.target_variables(res, values),
        "app_env": am.app_env(res),
        "dot_env": am.dot_env(res, values),
    })
    location = dest.resolve()
    click.echo(f"\n✔ Project created successfully!\n\n  Location: {location}\n  Files: {count}\n", err=True)
    if not deploy and run_mode in ("", "none"):
        click.echo(f"  Next steps:\n\n    cd {dest}\n    ladle bundle deploy && ladle bundle run app\n"
                   f"    ladle apps run-local --prepare-environment   # or run it here\n", err=True)
    profile = settings(ctx).profile
    if deploy:
        _deploy(location, profile)
    if run_mode == "dev":
        from ladle.cli.apps_run_local import default_port, run_app

        run_app(ctx, location, app_port=default_port(), prepare=True)


def _workspace_host(ctx: click.Context) -> str:
    """The host `workspace.host` names, from the caller's credentials (the Databricks CLI
    requires them for init too)."""
    return resolve_config(settings(ctx).profile).host


def _deploy(project: Path, profile: str | None) -> None:
    """`ladle bundle deploy`, then `ladle bundle run app`, in the new project (the Databricks CLI
    runs `apps deploy` there, which deploys the bundle and starts the app)."""
    ladle = [sys.executable, "-c", "from ladle.cli.main import main; main()"]
    flags = ["--profile", profile] if profile else []
    click.echo("", err=True)
    for step in (["bundle", "deploy"], ["bundle", "run", "app"]):
        rc = subprocess.run([*ladle, *step, *flags], cwd=project, check=False).returncode
        if rc != 0:
            click.echo(f"⚠ Deploy failed (exit code {rc})\n  You can deploy manually with: "
                       f"ladle bundle deploy && ladle bundle run app", err=True)
            return
    click.echo("✔ Deploy complete", err=True)
