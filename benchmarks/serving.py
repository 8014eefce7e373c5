"""What the benchmarks share: a run to serve, a server on a free port, and digits as the
drawing page sends them."""

from __future__ import annotations

import io
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


def canvas_digits(n: int, mode: str = "L") -> tuple[list[bytes], list[int]]:
    """MNIST test digits as a canvas gives them: 280x280, black ink on white, a gray PNG;
    ``mode="RGBA"``: every pixel opaque, as the page's ``canvas.toDataURL`` sends it (its
    PNG takes 3x as long to decode)."""
    from PIL import Image

    from mnist_logreg.data import load_dataset

    ds = load_dataset()
    pngs = []
    for img in ds.test_images[:n].numpy():
        big = Image.fromarray(255 - img).resize((280, 280), Image.Resampling.BILINEAR).convert(mode)
        buf = io.BytesIO()
        big.save(buf, format="PNG")
        pngs.append(buf.getvalue())
    return pngs, ds.test_labels[:n].tolist()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(run: str, *extra: str) -> tuple[subprocess.Popen, int]:
    """`mnist-logreg serve` on a free port, once it accepts connections: (process, port)."""
    port = free_port()
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
