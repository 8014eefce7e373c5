"""The evaluation report: figures, an HTML page with them embedded, markdown, JSON.

Plot functions take computed arrays and return a matplotlib figure (Agg backend, no
display needed); ``write_report`` does the I/O. The report folder appears atomically:
it is built beside the run under a temporary name and renamed into place. NumPy only:
the model is the NumPy engine's (``lite.LiteModel``), so ``evaluate`` needs no PyTorch.
"""

from __future__ import annotations

import base64
import html
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .errors import FileSystemError
from .extras import available, install_hint
from .metrics import classification_metrics, reliability, softmax
from .runs import read_history

REPORT_DIR = "report"
N_WRONG = 24


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(cm, classes):
    plt = _plt()
    cm = np.asarray(cm)
    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(cm, cmap="Blues", norm=_log_norm(cm))
    n = len(classes)
    ax.set_xticks(range(n), [str(c) for c in classes])
    ax.set_yticks(range(n), [str(c) for c in classes])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = cm.max() / 3
    for i in range(n):
        for j in range(n):
            v = int(cm[i, j])
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                    color="white" if v > threshold else "black")
    acc = np.trace(cm) / max(1, cm.sum())
    ax.set_title(f"Confusion matrix (accuracy {acc * 100:.2f}%)")
    fig.colorbar(im, ax=ax, shrink=0.8, label="count (log scale)")
    fig.tight_layout()
    return fig


def _log_norm(cm):
    from matplotlib.colors import LogNorm

    return LogNorm(vmin=1, vmax=max(2, int(cm.max())))


def plot_templates(weight: np.ndarray, image_shape, classes):
    """Each class's weights as an image, on a diverging map centred on zero."""
    plt = _plt()
    n = weight.shape[0]
    cols = min(5, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.4 * rows), squeeze=False)
    limit = float(np.abs(weight).max())
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < n:
            im = ax.imshow(weight[k].reshape(image_shape), cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set_title(f"class {classes[k]}")
    fig.suptitle("Learned weight templates (red: evidence for, blue: against)")
    fig.colorbar(im, ax=axes, shrink=0.7)
    return fig


def plot_wrong(images, true, predicted, confidence, classes):
    plt = _plt()
    n = len(images)
    cols = 8
    rows = max(1, (n + cols - 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.9 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < n:
            ax.imshow(images[k], cmap="gray_r")
            ax.set_title(f"true {classes[true[k]]} pred {classes[predicted[k]]}\n{confidence[k] * 100:.1f}%",
                         fontsize=7)
    fig.suptitle("Most confidently wrong test images")
    fig.tight_layout()
    return fig


def plot_curves(history: list[dict]):
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = [row["epoch"] for row in history]
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        values = [row.get(key) for row in history]
        if any(v is not None for v in values):
            ax1.plot(epochs, values, marker="o", label=label)
    for key, label in (("train_accuracy", "train"), ("val_accuracy", "validation")):
        values = [row.get(key) for row in history]
        if any(v is not None for v in values):
            ax2.plot(epochs, [v * 100 if v is not None else None for v in values], marker="o", label=label)
    ax1.set(xlabel="epoch", ylabel="cross-entropy", title="Loss")
    ax2.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def plot_reliability(rel: dict, ece: float):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 5))
    edges = rel["edges"]
    centres = (edges[:-1] + edges[1:]) / 2
    width = edges[1] - edges[0]
    mask = rel["count"] > 0
    ax.bar(centres[mask], rel["accuracy"][mask], width=width * 0.9, edgecolor="black", label="accuracy")
    ax.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    ax.plot(rel["confidence"][mask], rel["accuracy"][mask], "o-", color="tab:red",
            label="accuracy vs mean confidence")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy",
           title=f"Reliability diagram (ECE {ece * 100:.2f}%)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def evaluate_checkpoint(logits: np.ndarray, labels: np.ndarray) -> tuple[dict, dict]:
    """Metrics and the arrays the figures need, from a model's logits on a labelled image set."""
    metrics = classification_metrics(logits, labels)
    probs = softmax(logits)
    confidence, predicted = probs.max(axis=1), probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    worst = wrong[np.argsort(-confidence[wrong], kind="stable")[:N_WRONG]]
    arrays = {"probs": probs, "predicted": predicted, "worst": worst, "confidence": confidence}
    return metrics, arrays


def terminal_table(metrics: dict, classes) -> str:
    pc = metrics["per_class"]
    lines = [f"{'class':>5} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8}"]
    for k, c in enumerate(classes):
        lines.append(f"{str(c):>5} {pc['precision'][k]:9.4f} {pc['recall'][k]:7.4f} {pc['f1'][k]:7.4f} "
                     f"{pc['support'][k]:8d}")
    avg = metrics["averages"]
    for kind in ("macro", "weighted"):
        lines.append(f"{kind:>5} {avg['precision'][kind]:9.4f} {avg['recall'][kind]:7.4f} {avg['f1'][kind]:7.4f}")
    lines.append(f"accuracy {metrics['accuracy'] * 100:.2f}%  top-2 {metrics['top2_accuracy'] * 100:.2f}%  "
                 f"top-3 {metrics['top3_accuracy'] * 100:.2f}%  log loss {metrics['log_loss']:.4f}  "
                 f"ECE {metrics['expected_calibration_error'] * 100:.2f}%")
    return "\n".join(lines)


FIGURES = [
    ("confusion_matrix.png", "Confusion matrix"),
    ("weight_templates.png", "Weight templates"),
    ("most_confident_errors.png", "Most confidently wrong"),
    ("training_curves.png", "Training curves"),
    ("reliability.png", "Reliability diagram"),
]


def write_report(run_dir: str | os.PathLike, model, images: np.ndarray, labels: np.ndarray,
                 run_metrics: dict | None = None, logits: np.ndarray | None = None) -> tuple[Path, dict]:
    """Write ``run_dir/report/`` (atomically); returns its path and the metrics. ``model``:
    the run's ``lite.LiteModel``; ``logits``: its logits on ``images``, if the caller has
    them (reading 10,000 digits is most of a report's time)."""
    run_dir = Path(run_dir)
    images, labels = np.asarray(images), np.asarray(labels)
    metrics, arrays = evaluate_checkpoint(model.logits(images) if logits is None else logits, labels)
    classes = model.classes
    worst = arrays["worst"]
    # matplotlib is the report extra: without it the report holds the numbers and says so.
    figures = {} if not available("matplotlib") else {
        "confusion_matrix.png": plot_confusion(metrics["confusion_matrix"], classes),
        "weight_templates.png": plot_templates(model.tensors["linear.weight"], model.image_shape, classes),
        "most_confident_errors.png": plot_wrong(images[worst], labels[worst].tolist(),
                                                arrays["predicted"][worst].tolist(),
                                                arrays["confidence"][worst].tolist(), classes),
        "training_curves.png": plot_curves(read_history(run_dir) or [{"epoch": 0}]),
        "reliability.png": plot_reliability(reliability(arrays["probs"], labels),
                                            metrics["expected_calibration_error"]),
    }
    evaluation = {"run": str(run_dir), "classes": classes, **metrics,
                  "config": model.config.to_dict(), "training": run_metrics or {},
                  "figures": sorted(figures)}
    final = run_dir / REPORT_DIR
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{REPORT_DIR}.", dir=run_dir))
    except OSError as exc:
        raise FileSystemError(f"cannot write {final}: {exc.strerror or exc}") from None
    old = None
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; a report is for reading
        for name, fig in figures.items():
            fig.savefig(tmp / name, dpi=110)
            _plt().close(fig)
        (tmp / "evaluation.json").write_text(json.dumps(evaluation, indent=2) + "\n")
        (tmp / "report.md").write_text(_markdown(evaluation, classes))
        (tmp / "report.html").write_text(_html(evaluation, classes, tmp))
        # Swap in the new report: the old one (if any) is moved aside, then removed.
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{REPORT_DIR}.old.", dir=run_dir))
            os.replace(final, old / REPORT_DIR)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException as exc:  # a full disk, a quota, Ctrl-C: the old report stays as it was
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            if not final.exists():
                os.replace(old / REPORT_DIR, final)
            shutil.rmtree(old, ignore_errors=True)
        if isinstance(exc, OSError):
            raise FileSystemError(f"cannot write {final}: {exc.strerror or exc}") from None
        raise
    return final, {**metrics, "figures": sorted(figures)}


def _summary_rows(ev: dict) -> list[tuple[str, str]]:
    rows = [("accuracy", f"{ev['accuracy'] * 100:.2f}%"), ("top-2 accuracy", f"{ev['top2_accuracy'] * 100:.2f}%"),
            ("top-3 accuracy", f"{ev['top3_accuracy'] * 100:.2f}%"), ("log loss", f"{ev['log_loss']:.4f}"),
            ("expected calibration error (15 bins)", f"{ev['expected_calibration_error'] * 100:.2f}%"),
            ("test images", str(ev["n_samples"]))]
    tr = ev.get("training") or {}
    if tr.get("train_seconds") is not None:
        rows.append(("training time", f"{tr['train_seconds']:.2f} s on {tr.get('device', '?')}"))
    return rows


def _markdown(ev: dict, classes) -> str:
    out = [f"# Evaluation report: {ev['run']}", "", "| metric | value |", "| --- | --- |"]
    out += [f"| {k} | {v} |" for k, v in _summary_rows(ev)]
    out += ["", "| class | precision | recall | F1 | support |", "| --- | ---: | ---: | ---: | ---: |"]
    pc = ev["per_class"]
    for k, c in enumerate(classes):
        out.append(f"| {c} | {pc['precision'][k]:.4f} | {pc['recall'][k]:.4f} | {pc['f1'][k]:.4f} | "
                   f"{pc['support'][k]} |")
    for kind in ("macro", "weighted"):
        a = ev["averages"]
        out.append(f"| {kind} avg | {a['precision'][kind]:.4f} | {a['recall'][kind]:.4f} | {a['f1'][kind]:.4f} | |")
    out.append("")
    out += [f"## {title}\n\n![{title}]({name})\n" for name, title in FIGURES if name in ev["figures"]]
    if not ev["figures"]:
        out.append(f"Figures: matplotlib is not installed ({install_hint('report')}).\n")
    return "\n".join(out)


def _html(ev: dict, classes, folder: Path) -> str:
    esc = html.escape
    rows = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in _summary_rows(ev))
    pc = ev["per_class"]
    per_class = "".join(
        f"<tr><td>{esc(str(c))}</td><td>{pc['precision'][k]:.4f}</td><td>{pc['recall'][k]:.4f}</td>"
        f"<td>{pc['f1'][k]:.4f}</td><td>{pc['support'][k]}</td></tr>" for k, c in enumerate(classes))
    figures = "".join(
        f"<figure><img alt='{esc(title)}' src='data:image/png;base64,"
        f"{base64.b64encode((folder / name).read_bytes()).decode()}'><figcaption>{esc(title)}</figcaption></figure>"
        for name, title in FIGURES if name in ev["figures"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mnist-logreg report</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}
td:first-child{{text-align:left}}figure{{margin:2em 0}}img{{max-width:100%}}</style></head>
<body><h1>Evaluation report</h1><p>{esc(ev['run'])}</p>
<table>{rows}</table>
<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>{per_class}</table>
{figures}
</body></html>
"""
