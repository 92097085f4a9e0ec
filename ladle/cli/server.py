"""`ladle server`: run the API, the data plane and the MLflow registry on one port."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import click


@click.command("server")
@click.option("--host", default=None, help="Interface to bind (default 127.0.0.1, env LADLE_HOST).")
@click.option("--port", type=int, default=None, help="Port (default 8080, env LADLE_PORT).")
@click.option("--home", type=click.Path(path_type=Path), default=None,
              help="State directory (default ~/.ladle, env LADLE_HOME).")
@click.option("--demo", is_flag=True, help="Register a small scikit-learn model and serve it as "
              "the endpoint 'demo'.")
@click.option("--log-level", default="warning", show_default=True, envvar="LADLE_LOG_LEVEL",
              help="debug, info, warning or error (env LADLE_LOG_LEVEL).")
def server(host: str | None, port: int | None, home: Path | None, demo: bool, log_level: str) -> None:
    """Start the ladle server."""
    import logging

    import uvicorn

    from ladle.app import build_app, listen_sockets
    from ladle.config import Settings
    from ladle.support.bad_request import http_protocol

    overrides = {k: v for k, v in {"host": host, "port": port, "home": home}.items() if v is not None}
    if demo:  # the demo's model is served at once: its replica template starts with the server
        overrides["replica_template_eager"] = True
    settings = Settings(**overrides)
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.WARNING),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    listen = listen_sockets(settings)
    app = build_app(settings, listen=listen, log_level=log_level)
    url = f"http://{settings.host}:{settings.port}"
    click.echo(f"ladle: serving on {url} (state in {settings.home})")
    if demo:
        threading.Thread(target=_run_demo, args=(url, settings), daemon=True).start()
    if listen is None:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level=log_level,
                    timeout_graceful_shutdown=30, access_log=False, http=http_protocol())
    else:    # gateway workers share the TCP socket; they relay the control plane to the Unix one
        config = uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=30, access_log=False,
                                http=http_protocol(), lifespan="on")
        uvicorn.Server(config).run(sockets=listen)


def _run_demo(url: str, settings) -> None:
    token = settings.admin_token or (settings.home / "admin-token").read_text().strip()
    env = {**os.environ, "LADLE_URL": url, "LADLE_TOKEN": token, "LADLE_CACHE_DIR": str(settings.cache_dir)}
    subprocess.run([sys.executable, "-m", "ladle.demo"], env=env, check=False)
