"""A replica template (zygote): a process that has imported the model libraries of the
server's own environment (MLflow, pandas, scikit-learn) and forks replica workers on
request, so each replica shares those pages copy-on-write and starts without importing them.

ladle's server starts it as `python -m ladle.replica.template` exactly as it starts a worker
(scrubbed environment, `/` as its directory, no output, a control socket as fd 0) and it
never receives anything else: no job, no model, no secret. It answers "ready" once its
imports are done. Then, for each "fork" line that comes with a passed socket (a new
worker's control socket), it forks a child that becomes a replica worker exactly as a fresh
`python -m ladle.replica.worker --job` does: the passed socket as fd 0, a session of its
own, then the worker's own start-up path (confine itself first, then receive its job). The
template answers "pid N" with a pidfd of the child as a passed fd (so the server can watch a
process it did not start), and "exit N CODE" once it has reaped a child.

Standard library only besides the optional pre-imports: it runs the server's interpreter,
but shares the worker's rule of importing nothing of the server's.
"""

from __future__ import annotations

import array
import gc
import os
import selectors
import signal
import socket
import sys
import traceback

from ladle.replica.worker import _preimport


def _send(ctl: socket.socket, data: bytes, fds: list[int] | None = None) -> None:
    try:
        if fds:
            socket.send_fds(ctl, [data], fds)
        else:
            ctl.sendall(data)
    except OSError:  # the server went away: the loop below sees the end of the stream
        pass


def _child(worker_fd: int, template_files: list, other_fds: list[int]) -> None:
    """In the forked child: become a fresh worker (never returns). The template's own files
    (its control socket, selector, wake-up pair, sockets passed for other children) close."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for f in template_files:
            f.close()
        for fd in other_fds:
            os.close(fd)
        os.setsid()
        os.dup2(worker_fd, 0)
        os.close(worker_fd)
        _reseed()
        from ladle.replica import worker

        worker.main(["--job"])
        code = 0
    except SystemExit as e:  # as the interpreter ends a fresh worker: a message goes to its log
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if e.code is not None and not isinstance(e.code, int):
            print(e.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - never back into the template's loop; the traceback to the log
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _reseed() -> None:
    """A fresh process seeds numpy's global generator from the OS; a forked one would share
    the template's state (Python's own `random` is reseeded by os.fork itself)."""
    np = sys.modules.get("numpy")
    if np is not None:
        try:
            np.random.seed()
        except Exception:  # noqa: BLE001
            pass


def _reap(ctl: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(ctl, f"exit {pid} {os.waitstatus_to_exitcode(status)}\n".encode())


def serve(ctl: socket.socket) -> None:
    wake, wake_w = socket.socketpair()
    wake.setblocking(False)
    wake_w.setblocking(False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w.fileno())
    sel = selectors.DefaultSelector()
    sel.register(ctl, selectors.EVENT_READ, "ctl")
    sel.register(wake, selectors.EVENT_READ, "wake")
    buf = b""
    fds: list[int] = []
    while True:
        for key, _ in sel.select():
            if key.data == "wake":
                try:
                    while wake.recv(512):
                        pass
                except BlockingIOError:
                    pass
                _reap(ctl)
                continue
            data, anc, _flags, _addr = ctl.recvmsg(4096, socket.CMSG_SPACE(16 * 4))
            if not data:
                return  # the server went away; its replicas go on (they are their own sessions)
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds += list(array.array("i", payload[: len(payload) // 4 * 4]))
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line != b"fork" or not fds:
                    _send(ctl, b"error: expected fork with a socket\n")
                    continue
                worker_fd = fds.pop(0)
                pid = os.fork()
                if pid == 0:
                    _child(worker_fd, [sel, ctl, wake, wake_w], fds)
                os.close(worker_fd)
                pidfd = os.pidfd_open(pid)  # before this loop can reap it: never a reused pid
                _send(ctl, f"pid {pid}\n".encode(), [pidfd])
                os.close(pidfd)


def main() -> None:
    from ladle.replica.confine import _libc, PR_SET_DUMPABLE

    _libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    ctl = socket.socket(fileno=0)
    ctl.setblocking(True)
    _preimport()
    # What the template holds lives as long as its replicas: out of the collector's passes, so
    # that a child's collections do not touch (and copy) the shared pages.
    gc.collect()
    gc.freeze()
    _send(ctl, b"ready\n")
    serve(ctl)


if __name__ == "__main__":
    main()
