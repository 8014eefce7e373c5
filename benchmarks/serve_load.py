"""`serve` under load and abuse: throughput, latency percentiles, errors, accuracy.

Starts `mnist-logreg serve --workers W` on a free port (training the default recipe first
if no --run is given) and drives it from one asyncio process with raw HTTP/1.1 keep-alive
connections (a light client, so that the server gets the cores). Two phases:

- **abuse**: 8 clients uploading 38-megapixel PNGs (76 KB each, under the 40 MP limit),
  one each of oversized bodies, malformed images and slow bodies (a byte every 0.2 s),
  beside a few clients of valid digits and one polling `/healthz`;
- **throughput**: 32 clients of valid digits only.

Valid digits are MNIST test digits drawn as 280x280 canvas PNGs (black on white). Every
answer is compared with what `predict` (the CLI's code, in this process) gives for the
same file. A benchmark, not a test: it prints figures and asserts nothing.

    python benchmarks/serve_load.py [--run DIR] [--workers 2] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import time
from collections import Counter

import numpy as np
from PIL import Image, ImageDraw
from serving import canvas_digits, run_folder, start_server

from mnist_logreg.reading.numbers import number_of

BOUNDARY = "mnistlogregload"


def multipart(png: bytes) -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"d.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{BOUNDARY}--\r\n".encode()


def request(body: bytes, path: str = "/api/predict") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


HEALTH = b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n"


def huge_png() -> bytes:
    """A digit on a 7,000 x 5,430 (38 MP) white sheet: a small file that decodes to a lot."""
    img = Image.new("L", (7000, 5430), 255)
    ImageDraw.Draw(img).line([(2000, 1000), (5000, 1000), (3000, 4500)], fill=0, width=300)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


async def exchange(reader, writer, data: bytes) -> tuple[int, bytes]:
    writer.write(data)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(int(v) for k, _, v in (ln.partition(":") for ln in lines[1:]) if k.lower() == "content-length")
    return status, await reader.readexactly(length)


class Stats:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = {}
        self.status: dict[str, Counter] = {}
        self.answers: list[tuple[int, dict]] = []

    def add(self, kind: str, seconds: float, status: int) -> None:
        self.latency.setdefault(kind, []).append(seconds)
        self.status.setdefault(kind, Counter())[status] += 1


def _kept(answer: dict) -> dict:
    """What the comparison needs of an answer: kept whole, thousands of answers' 28x28
    images made this client's garbage collector stop for 0.2 s every few seconds, which
    read as the server's p99."""
    return {"number": answer["number"],
            "digits": [{"label": d["label"], "probability": d["probability"]} for d in answer["digits"]]}


async def client(port: int, kind: str, payloads, stop: float, stats: Stats, pause: float = 0.0) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = 0
    try:
        while time.monotonic() < stop:
            idx, data = payloads(i)
            i += 1
            t0 = time.perf_counter()
            try:
                status, body = await exchange(reader, writer, data)
            except (ConnectionError, asyncio.IncompleteReadError):
                stats.add(kind, time.perf_counter() - t0, 0)
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            stats.add(kind, time.perf_counter() - t0, status)
            if kind == "valid" and status == 200:
                stats.answers.append((idx, _kept(json.loads(body))))
            if pause:
                await asyncio.sleep(pause)
    finally:
        writer.close()


async def slow_body(port: int, stop: float, stats: Stats) -> None:
    """Promise a 100 KB body and send a byte every 0.2 s: the server must cut it off."""
    while time.monotonic() < stop:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"POST /api/predict HTTP/1.1\r\nHost: bench\r\nContent-Type: multipart/form-data; "
                     f"boundary={BOUNDARY}\r\nContent-Length: 100000\r\n\r\n".encode())
        t0 = time.perf_counter()
        status = 0
        while time.monotonic() < stop + 15:
            writer.write(b"x")
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 0.2)
                status = int(head.split()[1])
                break
            except asyncio.TimeoutError:
                continue
            except (ConnectionError, asyncio.IncompleteReadError):
                break
        stats.add("slow body", time.perf_counter() - t0, status)
        writer.close()


async def phase(port: int, seconds: float, valid: list[bytes], mix: dict[str, int]) -> Stats:
    stats = Stats()
    stop = time.monotonic() + seconds
    valid_reqs = [request(multipart(p)) for p in valid]
    big = request(multipart(huge_png())) if mix.get("huge") else b""
    oversized = request(os.urandom(6 * 1024 * 1024))
    malformed = request(multipart(b"\x89PNG\r\n\x1a\n" + os.urandom(3000)))
    counter = iter(range(10**9))

    def next_valid(_):
        i = next(counter) % len(valid_reqs)
        return i, valid_reqs[i]

    tasks = [client(port, "valid", next_valid, stop, stats) for _ in range(mix["valid"])]
    tasks += [client(port, "38 MP image", lambda i: (i, big), stop, stats) for _ in range(mix.get("huge", 0))]
    tasks += [client(port, "oversized body", lambda i: (i, oversized), stop, stats, 0.05)
              for _ in range(mix.get("oversized", 0))]
    tasks += [client(port, "malformed", lambda i: (i, malformed), stop, stats, 0.05)
              for _ in range(mix.get("malformed", 0))]
    tasks += [slow_body(port, stop, stats) for _ in range(mix.get("slow", 0))]
    if mix.get("health"):
        tasks.append(client(port, "healthz", lambda i: (i, HEALTH), stop, stats, 0.02))
    await asyncio.gather(*tasks)
    return stats


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of process ``pid`` and its children (the workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in os.listdir("/proc"):
        if not stat.isdigit():
            continue
        try:
            fields = open(f"/proc/{stat}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat) == pid or int(fields[1]) == pid:  # fields[1]: the parent's pid
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def measured(port: int, server_pid: int, seconds: float, valid: list[bytes], mix: dict) -> tuple[Stats, dict]:
    """Run a phase; also the CPU time it cost the server's processes and this client."""
    s0, c0 = cpu_seconds(server_pid), os.times()
    stats = asyncio.run(phase(port, seconds, valid, mix))
    s1, c1 = cpu_seconds(server_pid), os.times()
    return stats, {"server": s1 - s0, "client": (c1.user + c1.system) - (c0.user + c0.system)}


def _same(answer: dict, reads) -> bool:
    """Whether the server's answer is ``read_number``'s reading (``reads``): the same number
    and, digit by digit, the same label and probability within 1e-6 (a file read as two
    digits, as one test digit is, is the same answer where both read it so)."""
    return answer["number"] == number_of(reads) and len(answer["digits"]) == len(reads) and all(
        d["label"] == r.label and (d["probability"] is None) == (r.probability is None) and
        (r.probability is None or abs(d["probability"] - r.probability) < 1e-6)
        for d, r in zip(answer["digits"], reads))


def report(title: str, seconds: float, stats: Stats, expected: list[dict], labels: list[int],
           cpu: dict | None = None) -> None:
    print(f"\n## {title}\n")
    print("| requests | count | per second | p50 ms | p99 ms | statuses |")
    print("|---|---|---|---|---|---|")
    for kind, lat in stats.latency.items():
        ms = np.array(lat) * 1000
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(stats.status[kind].items()))
        print(f"| {kind} | {len(ms)} | {len(ms) / seconds:.1f} | {np.percentile(ms, 50):.1f} | "
              f"{np.percentile(ms, 99):.1f} | {statuses} |")
    same = sum(_same(a, expected[i]) for i, a in stats.answers)
    right = sum(a["number"] == str(labels[i]) for i, a in stats.answers)
    n = max(1, len(stats.answers))
    print(f"\nvalid answers: {len(stats.answers)}; the same as `predict` gives for the file: {same} "
          f"({same / n:.2%}); correct digit: {right / n:.2%}")
    if cpu is not None:
        done = sum(len(v) for v in stats.latency.values())
        print(f"CPU: server {cpu['server']:.1f} s, this client {cpu['client']:.1f} s over {seconds:g} s "
              f"({os.cpu_count()} CPUs); per request: server {cpu['server'] / done * 1000:.2f} ms, "
              f"client {cpu['client'] / done * 1000:.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", help="run folder (default: train the default recipe into a temp folder)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--digits", type=int, default=200, help="distinct valid digit files")
    args = ap.parse_args()
    run = run_folder(args.run)
    from mnist_logreg.reading.images import decode_image, peek_image
    from mnist_logreg.reading.lite import load_run
    from mnist_logreg.reading.numbers import read_number

    valid, labels = canvas_digits(args.digits)
    model = load_run(run)
    # What predict reads in each file (a digit, or a number).
    expected = [read_number(decode_image(peek_image(p, "image")), model) for p in valid]
    server, port = start_server(run, "--workers", str(args.workers))
    try:
        time.sleep(1.0)  # every worker process up
        asyncio.run(phase(port, 2.0, valid, {"valid": 8}))  # warm-up
        print(f"serve --workers {args.workers}, {os.cpu_count()} CPUs, {args.seconds:g} s per phase")
        stats, cpu = measured(port, server.pid, args.seconds, valid, {"valid": 4, "huge": 8, "oversized": 1,
                                                                        "malformed": 1, "slow": 1, "health": 1})
        report("abuse: 8 clients of 38 MP images, oversized, malformed and slow bodies, 4 clients of valid digits",
               args.seconds, stats, expected, labels, cpu)
        stats, cpu = measured(port, server.pid, args.seconds, valid, {"valid": 32})
        report("throughput: 32 clients of valid digits", args.seconds, stats, expected, labels, cpu)
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
