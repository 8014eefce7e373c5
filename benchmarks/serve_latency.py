"""Median latency of POST /api/predict for a 280x280 PNG on loopback.

Starts `mnist-logreg serve` on a free port (training a quick model first if no --run is
given), sends the same canvas-sized PNG many times with one keep-alive client, and
prints the median and 90th percentile. A benchmark, not a test: nothing is asserted.

    python benchmarks/serve_latency.py [--run DIR] [--requests 300]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import httpx
import numpy as np
from PIL import Image, ImageDraw
from serving import run_folder, start_server


def canvas_png() -> bytes:
    """A 280x280 drawing like the page's canvas: a black 7 on white."""
    img = Image.new("L", (280, 280), 255)
    draw = ImageDraw.Draw(img)
    draw.line([(70, 60), (215, 60), (130, 235)], fill=0, width=18, joint="curve")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", help="run folder (default: train the default recipe into a temp folder)")
    ap.add_argument("--requests", type=int, default=300)
    args = ap.parse_args()
    server, port = start_server(run_folder(args.run))
    url = f"http://127.0.0.1:{port}"
    try:
        png = canvas_png()
        with httpx.Client(base_url=url) as client:
            for _ in range(20):  # warm up
                client.post("/api/predict", files={"image": ("c.png", png, "image/png")})
            times = []
            for _ in range(args.requests):
                t0 = time.perf_counter()
                r = client.post("/api/predict", files={"image": ("c.png", png, "image/png")})
                times.append(time.perf_counter() - t0)
                r.raise_for_status()
        ms = np.array(times) * 1000
        print(f"POST /api/predict, 280x280 PNG ({len(png)} bytes), {args.requests} requests on loopback: "
              f"median {statistics.median(ms):.2f} ms, p90 {np.percentile(ms, 90):.2f} ms, "
              f"min {ms.min():.2f} ms; predicted {r.json()['label']}")
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
