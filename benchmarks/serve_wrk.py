"""`serve` measured with Debian's `wrk` (a C load generator): 32 connections posting one
280x280 canvas PNG of an MNIST test digit to /api/predict, as issue 25 states the goal.

    python benchmarks/serve_wrk.py [--run DIR] [--workers 2] [--seconds 10] [--connections 32]

Starts `mnist-logreg serve --workers W` on a free port, checks that its answer for the
digit is `predict`'s, runs `wrk --latency` with a Lua script that posts the multipart
body, and prints wrk's requests/s, latency percentiles and errors, then each server
process's resident memory. The client runs on the same cores as the server. A
benchmark, not a test: it prints figures and asserts nothing. Needs `wrk`
(scripts/install-debian.sh wrk /usr/bin/wrk installs it).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from serving import canvas_digits, start_server

BOUNDARY = "mnistlogregwrk"


def multipart(png: bytes) -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"digit.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{BOUNDARY}--\r\n".encode()


def lua_string(data: bytes) -> str:
    """``data`` as a Lua string literal (decimal escapes: any byte, no quoting rules)."""
    return '"' + "".join(f"\\{b}" for b in data) + '"'


def resident_mb(pid: int) -> list[float]:
    """Resident memory of ``pid`` and its children (the workers), in MB."""
    out = []
    for p in [pid, *map(int, subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                            text=True).stdout.split())]:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out.append(int(line.split()[1]) / 1024)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=None, help="run folder (default: the shipped model)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: scripts/install-debian.sh wrk /usr/bin/wrk")
    from mnist_logreg.reading.lite import load_run
    from mnist_logreg.reading.modelfile import shipped_run
    from mnist_logreg.reading.predict import predict_files

    run = args.run or str(shipped_run())
    (png,), _ = canvas_digits(1)
    body = multipart(png)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "digit.png").write_bytes(png)
        expected = predict_files(load_run(run), [str(Path(tmp) / "digit.png")])[0]
        script = Path(tmp) / "post.lua"
        script.write_text(f'wrk.method = "POST"\nwrk.body = {lua_string(body)}\n'
                          f'wrk.headers["Content-Type"] = "multipart/form-data; boundary={BOUNDARY}"\n')
        server, port = start_server(run, "--workers", str(args.workers))
        try:
            url = f"http://127.0.0.1:{port}/api/predict"
            req = urllib.request.Request(url, data=body, headers={
                "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
            answer = json.loads(urllib.request.urlopen(req, timeout=30).read())
            same = answer["label"] == expected.label and abs(answer["probability"] - expected.probability) < 1e-12
            print(f"answer {answer['label']} ({answer['probability']:.6f}); predict's {expected.label} "
                  f"({expected.probability:.6f}): {'the same' if same else 'DIFFERENT'}")
            proc = subprocess.run(["wrk", "-t2", f"-c{args.connections}", f"-d{args.seconds}s", "--latency",
                                   "-s", str(script), url], capture_output=True, text=True)
            print(proc.stdout.strip())
            print("resident memory after the load (MB, parent then workers):",
                  ", ".join(f"{mb:.0f}" for mb in resident_mb(server.pid)))
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
