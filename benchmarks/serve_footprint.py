"""What `serve --workers W` costs before and while it answers: time to the first answer,
and each process's resident memory after N requests.

    python benchmarks/serve_footprint.py [--run DIR] [--workers 2] [--requests 1000] [--rounds 3]

The time runs from starting the command (a fresh process, as a person starts it) to the
first 200 from ``POST /api/predict`` with a 280x280 digit PNG; the median of ``--rounds``
starts is printed beside ``python -c "import torch"`` in the same rounds, the one figure
that does not depend on this project. Memory is VmRSS from /proc for the parent and every
worker after ``--requests`` requests (each request a new connection, dealt to the
workers in turn). A benchmark, not a test: it prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
from serving import canvas_digits, free_port, run_folder


def post(port: int, png: bytes) -> dict:
    import base64

    body = json.dumps({"image": base64.b64encode(png).decode()}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/predict", data=body,
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def first_answer(run: str, workers: int, png: bytes) -> tuple[float, subprocess.Popen, int]:
    port = free_port()
    t0 = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "mnist_logreg", "serve", "--run", run, "--port", str(port),
                               "--workers", str(workers)], stdout=subprocess.DEVNULL)
    while True:
        try:
            post(port, png)
            return time.perf_counter() - t0, server, port
        except OSError:
            if server.poll() is not None:
                raise RuntimeError("the server exited") from None
            time.sleep(0.01)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    run = run_folder(args.run)
    png = canvas_digits(1)[0][0]
    starts, torch_imports = [], []
    for i in range(args.rounds):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch"], check=True)
        torch_imports.append(time.perf_counter() - t0)
        seconds, server, port = first_answer(run, args.workers, png)
        starts.append(seconds)
        if i < args.rounds - 1:
            server.terminate()
            server.wait()
    for _ in range(args.requests):
        post(port, png)
    memory = {"parent": rss_mb(server.pid)}
    for n, pid in enumerate(children(server.pid)):
        memory[f"child {n + 1}"] = rss_mb(pid)
    server.terminate()
    server.wait()
    start = statistics.median(starts)
    print(f"serve --workers {args.workers}: first answer {start:.2f} s after the command starts (median of "
          f"{args.rounds}: {', '.join(f'{s:.2f}' for s in starts)}); python -c 'import torch' alone: "
          f"{statistics.median(torch_imports):.2f} s")
    print(f"resident memory after {args.requests:,} requests: "
          + ", ".join(f"{name} {mb:.0f} MB" for name, mb in memory.items()))
    print(f"all processes together: {np.sum(list(memory.values())):.0f} MB")


if __name__ == "__main__":
    main()
