"""`ladle server`: run the API, the data plane and the MLflow registry on one port."""

from __future__ import annotations

import subprocess
import sys
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
    from ladle.config import Settings

    overrides = {k: v for k, v in {"host": host, "port": port, "home": home}.items() if v is not None}
    if demo:  # the demo's model is registered and served at once: registry and template start now
        overrides["replica_template_eager"] = True
        overrides["registry_eager"] = True
    settings = Settings(**overrides)
    url = f"http://{settings.host}:{settings.port}"
    demo_proc = template = None
    if demo:
        # The demo's process and the replica template (which imports the model libraries for
        # seconds) start first, so that their starts overlap the server's own imports.
        demo_proc = _start_demo(url, settings)
        if settings.runtime == "local":
            from ladle.runtimes.template import Prestarted

            template = Prestarted()
    try:
        _serve(settings, url, log_level, template)
    except KeyboardInterrupt:   # Ctrl-C: uvicorn shut down gracefully, then raised it again
        pass
    finally:
        if demo_proc is not None and demo_proc.poll() is None:
            demo_proc.terminate()
        if template is not None:   # ended with the server if the server adopted it
            template.kill()
    click.echo("ladle: stopped")


def _serve(settings, url: str, log_level: str, template) -> None:
    import gc
    import logging

    # The server's imports and its build make objects that live as long as it does: the
    # cyclic collector's passes over them while they grow are a fifth of that CPU. It runs
    # again once serving (the app's start-up collects once and freezes what it built).
    gc.disable()
    try:
        import uvicorn

        from ladle.app import build_app, listen_sockets
        from ladle.support.bad_request import http_protocol

        logging.basicConfig(level=getattr(logging, log_level.upper(), logging.WARNING),
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        listen = listen_sockets(settings)
        app = build_app(settings, listen=listen, log_level=log_level, template=template)
    finally:
        gc.enable()
    click.echo(f"ladle: serving on {url} (state in {settings.home})")
    if listen is None:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level=log_level,
                    timeout_graceful_shutdown=30, access_log=False, http=http_protocol())
    else:    # gateway workers share the TCP socket; they relay the control plane to the Unix one
        config = uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=30, access_log=False,
                                http=http_protocol(), lifespan="on")
        uvicorn.Server(config).run(sockets=listen)


def _start_demo(url: str, settings) -> subprocess.Popen:
    """`python -m ladle.demo` against this server. The admin token: the configured one, else
    the file the server writes as it starts (the demo reads it once /health answers)."""
    from ladle.support.child_env import server_child_env

    # nothing of the server's settings (its secret key, database URL) but what the demo needs
    env = server_child_env({"LADLE_URL": url, "LADLE_CACHE_DIR": str(settings.cache_dir)})
    if settings.admin_token:
        env["LADLE_TOKEN"] = settings.admin_token
    else:
        env["LADLE_TOKEN_FILE"] = str(settings.home / "admin-token")
    return subprocess.Popen([sys.executable, "-m", "ladle.demo"], env=env, preexec_fn=_die_with_parent)


def _die_with_parent() -> None:
    """In the demo's process before it runs: SIGTERM when the server ends, however it ends
    (uvicorn ends the server by re-raising the signal it got, past any `finally`)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)   # PR_SET_PDEATHSIG
