"""Benchmarks: our trainer against the tutorial's DataLoader loop and scikit-learn, in one run.

Everything is measured in the same process on the same data, and reported as ratios,
so a noisy shared machine moves all the numbers together. Nothing here asserts a
speed: the numbers are printed and saved to ``bench.json``.
"""

from __future__ import annotations

import logging
import resource
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .api import checkpoint_of, test_metrics
from .config import build_config
from .data import Dataset, load_dataset, train_val_split, write_idx
from .training import kernels
from .training.train import resolve_device, softmax_xent_grad, threads_for, torch_threads, train

log = logging.getLogger(__name__)


@dataclass
class BenchRow:
    method: str
    epochs: int
    train_seconds: float
    samples_per_second: float
    test_accuracy: float
    repeats: int
    note: str = ""


def tutorial_loop(dataset: Dataset, epochs: int = 5, seed: int = 0,
                  device: str = "cpu") -> tuple[float, float, torch.nn.Linear]:
    """The tutorial's recipe written the idiomatic way: torchvision MNIST + ToTensor +
    DataLoader(batch_size=100, shuffle=True), nn.Linear, CrossEntropyLoss, SGD lr 0.001.

    Returns (seconds of the training loop, test accuracy, the trained layer).
    """
    import torchvision  # imported here: it costs over a second
    from torch import nn

    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "MNIST" / "raw"
        raw.mkdir(parents=True)
        # torchvision reads the decompressed IDX files from <root>/MNIST/raw (no download).
        write_idx(raw / "train-images-idx3-ubyte", dataset.train_images)
        write_idx(raw / "train-labels-idx1-ubyte", dataset.train_labels.to(torch.uint8))
        write_idx(raw / "t10k-images-idx3-ubyte", dataset.test_images)
        write_idx(raw / "t10k-labels-idx1-ubyte", dataset.test_labels.to(torch.uint8))
        to_tensor = torchvision.transforms.ToTensor()
        train_set = torchvision.datasets.MNIST(tmp, train=True, transform=to_tensor, download=False)
        test_set = torchvision.datasets.MNIST(tmp, train=False, transform=to_tensor, download=False)
        train_loader = torch.utils.data.DataLoader(train_set, batch_size=100, shuffle=True)
        test_loader = torch.utils.data.DataLoader(test_set, batch_size=100, shuffle=False)
        model = nn.Linear(28 * 28, 10).to(device)
        criterion = nn.CrossEntropyLoss()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.001)
        t0 = time.perf_counter()
        for _ in range(epochs):
            for images, labels in train_loader:
                images, labels = images.view(-1, 28 * 28).to(device), labels.to(device)
                optimizer.zero_grad()
                loss = criterion(model(images), labels)
                loss.backward()
                optimizer.step()
        seconds = time.perf_counter() - t0
        correct = total = 0
        with torch.no_grad():
            for images, labels in test_loader:
                predicted = model(images.view(-1, 28 * 28).to(device)).argmax(dim=1).cpu()
                correct += int((predicted == labels).sum())
                total += labels.numel()
    return seconds, correct / total, model


def _ours(dataset: Dataset, preset: str, repeats: int, device: str, **overrides) -> tuple[BenchRow, object]:
    config = build_config(preset, device=device, **overrides)
    with torch_threads(threads_for(config)):
        results = [train(config, dataset) for _ in range(repeats)]
    seconds = statistics.median(r.train_seconds for r in results)
    last = results[-1]
    checkpoint = checkpoint_of(last, dataset)
    acc = test_metrics(checkpoint, dataset)["test_accuracy"]
    method = f"mnist-logreg --preset {preset}"
    if last.selection is not None:  # the default trains one candidate per preprocessing
        method += f" ({len(last.selection['val_accuracy'])} candidates, chose {last.selection['chosen']})"
    row = BenchRow(method, len(last.history), seconds, last.samples_processed / seconds, acc, repeats)
    return row, checkpoint


def sklearn_rows(dataset: Dataset, solvers: tuple[str, ...], max_iter: int) -> list[BenchRow]:
    try:
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        log.warning("scikit-learn is not installed (pip install 'mnist-logreg[bench]'): skipped")
        return []
    n = dataset.train_images.shape[0]
    x = (dataset.train_images.reshape(n, -1).float() / 255).numpy()
    xt = (dataset.test_images.reshape(dataset.test_images.shape[0], -1).float() / 255).numpy()
    rows = []
    for solver in solvers:
        clf = LogisticRegression(solver=solver, max_iter=max_iter)  # scikit-learn defaults otherwise
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t0 = time.perf_counter()
            clf.fit(x, dataset.train_labels.numpy())
            seconds = time.perf_counter() - t0
        acc = float((clf.predict(xt) == dataset.test_labels.numpy()).mean())
        iters = int(clf.n_iter_.max())
        rows.append(BenchRow(f"scikit-learn LogisticRegression({solver})", iters, seconds, n * iters / seconds,
                             acc, 1, f"{iters} iterations, raw pixels / 255, defaults (C=1, tol=1e-4)"))
    return rows


def machine_floor(device: torch.device) -> dict:
    """Achievable memory read bandwidth (GB/s) and float32 matmul rate (GFLOP/s) here."""
    big = torch.rand(64 * 1024 * 1024 // 4 * 4, device=device)  # 256 MB
    a = torch.rand(2048, 2048, device=device)

    def best(fn, reps=5):
        fn()
        times = []
        for _ in range(reps):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        return min(times)

    bandwidth = big.numel() * 4 / best(lambda: big.sum()) / 1e9
    gflops = 2 * 2048**3 / best(lambda: a @ a) / 1e9
    return {"read_bandwidth_gb_s": bandwidth, "matmul_gflop_s": gflops}


def _best_full_batch(w, b, x, labels, device: torch.device, repeats: int) -> float:
    times = []
    for _ in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        softmax_xent_grad(w, b, x, labels)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    # Best of the repeats, like the floor's own measurements: both are "what this machine
    # can do when nothing else is running", so their ratio is not skewed by noise.
    return min(times[1:])


def full_batch_epoch(dataset: Dataset, device: torch.device, rounds: int = 3, repeats: int = 5) -> tuple[dict, dict]:
    """Time one full-batch forward + backward over the training set against its floor.

    Returns (the machine's floor figures, the epoch figures). The floor and the epoch are
    measured in alternating rounds and each keeps its best: on a shared machine a busy
    spell then lowers neither one alone.
    """
    n = dataset.train_images.shape[0]
    x = (dataset.train_images.reshape(n, -1).float() / 255).to(device)
    n_classes = dataset.n_classes
    labels = dataset.train_labels.to(device)
    w = torch.zeros(n_classes, x.shape[1], device=device)
    b = torch.zeros(n_classes, device=device)
    kernel = kernels.usable(x, w)
    # Every kernel path this CPU runs, and PyTorch's ops ("off").
    paths = [p for p in kernels.RUNNABLE if kernel] + ["off"]
    floors, times = [], {p: [] for p in paths}
    for _ in range(rounds):
        floors.append(machine_floor(device))
        for p in paths:
            with kernels.using(p):
                times[p].append(_best_full_batch(w, b, x, labels, device, repeats))
    floor = {key: max(f[key] for f in floors) for key in floors[0]}
    per_path = {p: min(t) for p, t in times.items()}
    seconds = per_path[kernels.path_for(x, w)]
    bytes_moved = x.numel() * 4  # each block of rows is read once; the backward reuses it from cache
    flops = 2 * 2 * x.numel() * n_classes  # forward and weight-gradient matmuls
    floor_s = max(bytes_moved / (floor["read_bandwidth_gb_s"] * 1e9), flops / (floor["matmul_gflop_s"] * 1e9))
    return floor, {"epoch_seconds": seconds, "floor_seconds": floor_s, "multiple_of_floor": seconds / floor_s,
                   "bytes": bytes_moved, "flops": flops,
                   "path": f"C kernel, {kernels.active()}" if kernel else "PyTorch ops",
                   "pytorch_ops_epoch_seconds": per_path["off"],
                   "per_path": {p: {"epoch_seconds": s, "multiple_of_floor": s / floor_s} for p, s in per_path.items()},
                   "shape": list(x.shape)}


def inference_throughput(checkpoint, dataset: Dataset, repeats: int = 5) -> float:
    checkpoint.logits(dataset.test_images[:100])
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        checkpoint.logits(dataset.test_images)
        times.append(time.perf_counter() - t0)
    return dataset.test_images.shape[0] / statistics.median(times)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_bench(quick: bool = False, device: str = "cpu", repeats: int = 3, data_dir: str | None = None) -> dict:
    dataset = load_dataset(data_dir=data_dir)
    dev = resolve_device(device)
    epochs = 1 if quick else 5
    rows: list[BenchRow] = []

    seconds, acc, _ = tutorial_loop(dataset, epochs=epochs, device=str(dev))
    n = dataset.train_images.shape[0]
    rows.append(BenchRow("tutorial loop (DataLoader + autograd)", epochs, seconds, n * epochs / seconds, acc, 1))
    # The tutorial recipe on every kernel path this CPU runs, best first (the one used by
    # default), then on PyTorch's own ops: what each path adds.
    paths = [*kernels.RUNNABLE, "off"] if kernels.available() and dev.type == "cpu" else [kernels.active()]
    def label(p: str) -> str:
        return " (PyTorch ops, no C kernel)" if p == "off" else f" (kernel {p})"

    for p in paths:
        with kernels.using(p):
            row, _ = _ours(dataset, "tutorial", repeats, device, epochs=epochs)
        row.method += label(p)
        rows.append(row)
    checkpoint = None  # the default recipe's model on the first (default) path: the inference figure
    for p in paths:  # the default recipe: the same accuracy on every path; timed once on the others
        with kernels.using(p):
            row, ck = _ours(dataset, "default", 1 if quick or p != paths[0] else repeats, device,
                            **({"epochs": 2} if quick else {}))
        row.method += label(p)
        rows.append(row)
        checkpoint = checkpoint or ck
    floor, full = full_batch_epoch(dataset, dev)
    rows += sklearn_rows(dataset, ("sag",) if quick else ("sag", "lbfgs"), max_iter=10 if quick else 100)
    base = rows[0].train_seconds
    table = [dict(r.__dict__, speedup_vs_tutorial=base / r.train_seconds) for r in rows]
    return {
        "device": str(dev), "quick": quick, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "rows": table, "machine": floor, "full_batch_epoch": full,
        "inference_images_per_second": inference_throughput(checkpoint, dataset),
        "peak_rss_mb": peak_rss_mb(),
        "split_note": f"train {n} / test {dataset.test_images.shape[0]}; val split of the default recipe "
                      f"{train_val_split(n, build_config().data.val_size)[1].numel()} images",
    }


def format_table(result: dict) -> str:
    lines = ["| method | epochs | train s | samples/s | test acc | vs tutorial |", "|---|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        lines.append(f"| {r['method']} | {r['epochs']} | {r['train_seconds']:.3f} | {r['samples_per_second']:,.0f} "
                     f"| {r['test_accuracy'] * 100:.2f}% | {r['speedup_vs_tutorial']:.1f}x |")
    f, m = result["full_batch_epoch"], result["machine"]
    lines += [
        "",
        f"device {result['device']}, {result['threads']} threads, torch {result['torch']}",
        f"machine: {m['read_bandwidth_gb_s']:.1f} GB/s read, {m['matmul_gflop_s']:.0f} GFLOP/s float32 matmul",
        f"full-batch epoch (forward + backward, {' x '.join(f'{v:,}' for v in f['shape'])}): "
        f"{f['epoch_seconds'] * 1000:.1f} ms ({f['path']}; "
        f"PyTorch ops {f['pytorch_ops_epoch_seconds'] * 1000:.1f} ms), "
        f"floor {f['floor_seconds'] * 1000:.1f} ms -> {f['multiple_of_floor']:.2f}x the floor",
        "full-batch epoch by path: " + ", ".join(
            f"{p} {v['epoch_seconds'] * 1000:.1f} ms ({v['multiple_of_floor']:.2f}x the floor)"
            for p, v in f.get("per_path", {}).items()),
        f"inference: {result['inference_images_per_second']:,.0f} images/s (test set, with preprocessing)",
        f"peak RSS: {result['peak_rss_mb']:.0f} MB",
    ]
    return "\n".join(lines)
