"""What the serve benchmarks share: a run to serve, and a server on a free port."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time


def run_folder(run: str | None) -> str:
    """``run``, or the default recipe trained into a temporary folder."""
    if run is None:
        run = tempfile.mkdtemp(prefix="serve-bench-")
        subprocess.run([sys.executable, "-m", "mnist_logreg", "train", "--out", run], check=True,
                       stdout=subprocess.DEVNULL)
    return run


def start_server(run: str, *extra: str) -> tuple[subprocess.Popen, int]:
    """`mnist-logreg serve` on a free port, once it accepts connections: (process, port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "mnist_logreg", "serve", "--run", run, "--port", str(port),
                               *extra], stdout=subprocess.DEVNULL)
    for _ in range(600):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server, port
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("the server did not start")
