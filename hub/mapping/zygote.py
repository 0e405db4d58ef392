"""A warm process that forks render processes on request (``python -m hub.mapping.zygote``).

Starting a render process from scratch costs the imports of Jinja2, pydantic and the connectors (about
a second on a busy machine); forking it from this process, which has them loaded, costs milliseconds.
One zygote serves a whole hub process: it is started by ``spawn_render_process`` on first use and exits
when that process's end of the control socket closes. It is not ``multiprocessing``'s forkserver, which
runs the parent's ``__main__`` again in every child (the whole app, for `hub serve`).

Protocol on the control socket: the parent sends one byte with the child's pipe (a socket) attached
and the memory limit as text; the zygote forks, and answers the child's pid as text.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection

from hub.mapping.child import serve

SPAWN_TIMEOUT = 10.0  # seconds: a zygote starting on a very busy machine, then forking
_lock = threading.Lock()
_zygote: tuple[subprocess.Popen[bytes], socket.socket] | None = None


def _start() -> tuple[subprocess.Popen[bytes], socket.socket]:
    mine, theirs = socket.socketpair()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub.mapping.zygote", str(theirs.fileno())],
        pass_fds=[theirs.fileno()],
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C in a terminal stops the hub, which closes the socket
    )
    theirs.close()
    mine.settimeout(SPAWN_TIMEOUT)  # a zygote that does not answer is replaced, never waited for
    return proc, mine


def spawn_render_process(memory_limit: int) -> tuple[int, Connection]:
    """A new render process: its pid and the pipe to it (blocking: call it from a thread)."""
    global _zygote
    if not _lock.acquire(timeout=SPAWN_TIMEOUT * 3):
        raise OSError("the render zygote is busy")
    try:
        for _ in range(2):  # a zygote that died is started again once
            if _zygote is None or _zygote[0].poll() is not None:
                _zygote = _start()
            _, control = _zygote
            mine, theirs = socket.socketpair()
            try:
                socket.send_fds(control, [str(memory_limit).encode()], [theirs.fileno()])
                pid = control.recv(32)
            except OSError:
                pid = b""
            finally:
                theirs.close()
            if pid:
                return int(pid), Connection(mine.detach())
            mine.close()
            _zygote[0].kill()  # it did not answer in time: a new one is started
            _zygote = None
    finally:
        _lock.release()
    raise OSError("the render zygote does not answer")


def _main(control_fd: int) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    control = socket.socket(fileno=control_fd)
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(control, 64, 1)
        except OSError:
            return
        if not data or not fds:
            return  # the hub process ended
        pid = os.fork()
        if pid == 0:
            control.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            try:
                serve(Connection(fds[0]), int(data))
            finally:
                os._exit(0)
        os.close(fds[0])
        control.sendall(str(pid).encode())


if __name__ == "__main__":
    _main(int(sys.argv[1]))
