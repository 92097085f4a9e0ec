"""Start an app's command confined like a replica worker (ladle/replica/confine.py).

Run by the server as `python -m ladle.replica.app_exec` with a scrubbed environment, the
app's log as stdout and stderr, and one JSON line on stdin: {"confine": spec, "cwd": the
app's source directory, "argv": the command, "env": the app's environment}. The app's
environment (its OAuth secret among it) travels on the pipe, not in this interpreter's
own environment, so nothing of it steers this interpreter before it confines itself. Then:
confine, stdin from /dev/null, change to the source directory, exec the command.

Standard library only, nothing at import time.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> int:
    job = json.loads(sys.stdin.readline())
    from ladle.replica.confine import confine

    try:
        confine(job.get("confine") or {})
    except Exception as e:  # noqa: BLE001 - whatever stops it, the app's log says why
        print(f"ladle: cannot confine the app: {e}", file=sys.stderr, flush=True)
        return 126
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    argv, env = list(job["argv"]), dict(job["env"])
    try:
        os.chdir(job["cwd"])
        os.execvpe(argv[0], argv, env)
    except OSError as e:
        print(f"ladle: cannot run {' '.join(argv)!r}: {e.strerror or e}", file=sys.stderr, flush=True)
        return 127
    return 0  # not reached: exec replaced this process


if __name__ == "__main__":
    sys.exit(main())
