"""`ladle apps run-local` (and `apps init --run dev`): run an app on this machine the way the
platform would, with your own credentials instead of the app's.

The environment is the caller's, plus what a deployed app gets (DATABRICKS_APP_PORT,
DATABRICKS_APP_NAME/URL, the UVICORN_/FLASK_/STREAMLIT_/GRADIO_ port and host variables, all
on 127.0.0.1), plus `-p/--profile` as DATABRICKS_CONFIG_PROFILE so the app's databricks-sdk
signs in as you. app.yaml's `value` entries are set as they are; a `valueFrom` entry (a
resource only a deployment can resolve) is taken from `--env NAME=VALUE`, then your
environment, then the app's `.env` file (which `apps init` writes), else it is an error naming
it, like the Databricks CLI's. `--prepare-environment` builds `.venv` in the app folder with uv
from requirements.txt and runs the command with that `.venv/bin` first on PATH. `run-local`
puts a proxy on --port in front of the app that adds your identity as X-Forwarded-* headers
(apps_local_proxy.py); `init --run dev` runs the app alone, as the Databricks CLI does.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import click
import yaml
from dotenv import dotenv_values

from ladle.cli.client import ME
from ladle.cli.client import from_context
from ladle.cli.options import LadleCommand, settings

DEFAULT_APP_PORT = 8000
DEFAULT_PROXY_PORT = 8001
PORT_ENV = "DATABRICKS_APP_PORT"
HOST = "127.0.0.1"
SHUTDOWN_TIMEOUT_S = 15.0
SPEC_FILES = ("app.yml", "app.yaml")


def read_spec(app_dir: Path, entry_point: str | None = None) -> tuple[str, dict[str, Any]]:
    """(file name, parsed app.yaml); ("", {}) when the app has none."""
    for name in ([entry_point] if entry_point else list(SPEC_FILES)):
        path = app_dir / name
        if path.is_file():
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as exc:
                raise click.ClickException(f"{name}: not valid YAML: {exc}") from exc
            if not isinstance(data, dict):
                raise click.ClickException(f"{name}: expected a mapping with command and env")
            return name, data
        if entry_point:
            raise click.ClickException(f"{entry_point}: no such file in {app_dir}")
    return "", {}


def base_env(port: int, app_name: str = "app") -> dict[str, str]:
    p = str(port)
    return {
        "PYTHONUNBUFFERED": "1", "DATABRICKS_APP_NAME": app_name, "DATABRICKS_APP_URL": f"http://{HOST}:{p}",
        "DATABRICKS_APP_PORT": p, "PORT": p, "UVICORN_PORT": p, "UVICORN_HOST": HOST,
        "FLASK_RUN_PORT": p, "FLASK_RUN_HOST": HOST, "GRADIO_SERVER_PORT": p, "GRADIO_SERVER_NAME": HOST,
        "GRADIO_ANALYTICS_ENABLED": "false", "STREAMLIT_SERVER_PORT": p, "STREAMLIT_SERVER_ADDRESS": HOST,
        "STREAMLIT_SERVER_HEADLESS": "true", "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    }


def _pairs(values: tuple[str, ...] | list[str]) -> dict[str, str]:
    out = {}
    for item in (v for raw in values for v in raw.split(",") if v):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.ClickException(f"--env {item!r}: expected NAME=VALUE")
        out[key] = value
    return out


def app_env(app_dir: Path, spec_name: str, spec: dict[str, Any], custom: dict[str, str],
            environ: dict[str, str]) -> dict[str, str]:
    """app.yaml's env, resolved for a local run (see the module docstring)."""
    dot = {k: v for k, v in dotenv_values(app_dir / ".env").items() if v is not None} \
        if (app_dir / ".env").is_file() else {}
    out: dict[str, str] = {}
    for entry in spec.get("env") or []:
        name = str((entry or {}).get("name") or "")
        if not name:
            raise click.ClickException(f"{spec_name}: an env entry has no name")
        if "value" in entry:
            out[name] = str(entry["value"])
        elif "valueFrom" in entry:
            found = custom.get(name) or environ.get(name) or dot.get(name)
            if not found:
                raise click.ClickException(
                    f"{name} defined in {spec_name} with valueFrom property and can't be resolved locally. "
                    f"Please set {name} environment variable in your terminal, in .env or using --env flag")
            out[name] = found
    out.update(custom)
    return out


def command_of(spec: dict[str, Any], port: int) -> list[str]:
    command = spec.get("command") or ["python", "app.py"]
    if isinstance(command, str):
        command = command.split()
    return [str(c).replace("$DATABRICKS_APP_PORT", str(port)) for c in command]


def prepare_environment(app_dir: Path) -> Path:
    """`.venv` in the app folder, with requirements.txt installed by uv; its bin directory."""
    from uv import find_uv_bin

    uv = find_uv_bin()
    venv = app_dir / ".venv"
    steps = [[uv, "venv", "--quiet", str(venv)]]
    if (app_dir / "requirements.txt").is_file():
        steps.append([uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
                      "-r", str(app_dir / "requirements.txt")])
    for step in steps:
        click.echo("Running: " + " ".join(Path(step[0]).name if i == 0 else a for i, a in enumerate(step)), err=True)
        if subprocess.run(step, cwd=app_dir, check=False).returncode != 0:
            raise click.ClickException(f"preparing the environment failed: {' '.join(step[1:3])}")
    return venv / "bin"


def default_port() -> int:
    raw = os.environ.get(PORT_ENV) or str(DEFAULT_APP_PORT)
    if not raw.isdigit():
        raise click.ClickException(f"{PORT_ENV}: expected a port number, got {raw!r}")
    return int(raw)


def run_app(ctx: click.Context, app_dir: Path, *, app_port: int = DEFAULT_APP_PORT, prepare: bool = False,
            custom_env: tuple[str, ...] = (), entry_point: str | None = None,
            proxy_port: int | None = None) -> None:
    """Run the app in the foreground until it exits or the user interrupts it; with
    `proxy_port`, behind the header-injecting proxy (apps_local_proxy.py)."""
    spec_name, spec = read_spec(app_dir, entry_point)
    environ = dict(os.environ)
    env = environ | base_env(app_port)
    profile = settings(ctx).profile
    if profile:
        env["DATABRICKS_CONFIG_PROFILE"] = profile
    env.update(app_env(app_dir, spec_name or "app.yaml", spec, _pairs(custom_env), environ))
    if prepare:
        bin_dir = prepare_environment(app_dir)
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(bin_dir.parent)
    inject: dict[str, str] = {}
    if proxy_port:
        from ladle.cli.apps_local_proxy import identity_headers   # uvicorn and starlette: only when used

        inject = identity_headers(from_context(ctx).call("GET", ME) or {})
    command = command_of(spec, app_port)
    click.echo("Running command: " + " ".join(command), err=True)
    try:
        proc = subprocess.Popen(command, cwd=app_dir, env=env)
    except OSError as exc:
        raise click.ClickException(f"cannot start {command[0]}: {exc.strerror or exc}") from exc
    proxy = None
    if proxy_port:
        from ladle.cli.apps_local_proxy import LocalProxy

        try:
            proxy = LocalProxy(proxy_port, app_port, inject)
            proxy.start()
        except Exception as exc:  # noqa: BLE001 - the app must not outlive a proxy that failed
            proc.kill()
            proc.wait()
            raise click.ClickException(f"failed to start app proxy: {exc}") from exc
    click.echo(f"To access your app go to http://localhost:{proxy_port or app_port}", err=True)
    try:
        rc = _wait(proc)
    finally:
        if proxy is not None:
            proxy.stop()
    if rc not in (0, -signal.SIGINT, 130):
        raise click.ClickException(f"the app exited with code {rc}")


def _wait(proc: subprocess.Popen[bytes]) -> int:
    """The app's exit code; Ctrl-C sends it SIGINT and waits SHUTDOWN_TIMEOUT_S before killing it."""
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise click.ClickException("process killed after timeout") from None


@click.command("run-local", cls=LadleCommand)
@click.option("--port", type=int, default=DEFAULT_PROXY_PORT, show_default=True,
              help="Port on which to run the app proxy")
@click.option("--app-port", type=int, default=DEFAULT_APP_PORT, show_default=True, envvar=PORT_ENV,
              help=f"Port on which to run the app (env {PORT_ENV})")
@click.option("--prepare-environment", is_flag=True, default=False,
              help="Prepares the environment for running the app (.venv with requirements.txt, built by uv).")
@click.option("--env", "custom_env", multiple=True, help="Set environment variables (NAME=VALUE, can repeat).")
@click.option("--entry-point", help="The app's configuration file (default: app.yml or app.yaml).")
@click.option("--source-dir", type=click.Path(file_okay=False, exists=True), default=".",
              help="The app's folder (default: the current directory).")
@click.pass_context
def run_local(ctx: click.Context, port: int, app_port: int, prepare_environment: bool, custom_env: tuple[str, ...],
              entry_point: str | None, source_dir: str) -> None:
    """Run an app locally.

    Starts the app in the current directory with app.yaml's command (default: python
    app.py) on 127.0.0.1:--app-port, signed in as you, behind a proxy on --port that adds
    the X-Forwarded-* headers (your identity) a deployed app receives.
    """
    if port == app_port:
        raise click.ClickException("--port and --app-port must differ (the proxy and the app each need one)")
    run_app(ctx, Path(source_dir).resolve(), app_port=app_port, prepare=prepare_environment,
            custom_env=custom_env, entry_point=entry_point, proxy_port=port)
