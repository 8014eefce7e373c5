"""Export a trained run to ONNX or TorchScript, preprocessing included.

The exported graph takes what ``images.to_mnist`` produces, scaled to [0, 1]: a float32
tensor ``pixels`` [N, 28, 28] (light digit on dark background, centred by mass). It
is the run's ``model.Classifier`` (its own preprocessing, then the linear layer), the
very module ``predict`` and ``serve`` run, with a softmax on top: it returns
``probabilities`` [N, n_classes].
"""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from .atomic import atomic_write_bytes
from .errors import UserError
from .reading import lite, numbers
from .training.checkpoint import Checkpoint

FORMATS = ("onnx", "torchscript", "web")
ONNX_OPSET = 17  # GridSample (deskewing) needs 16 or later


def web_model(checkpoint: Checkpoint, names: list[str] | None = None) -> dict:
    """What the web page's recogniser (web/recognizer.js) needs: settings, and the float32
    tensors in base64 (7,850 weights and 1,570 statistics for MNIST: 50 KB of text), with
    the segmentation's settings and its piece check (``numbers.settings``)."""
    pre, model = checkpoint.preprocessor, checkpoint.model
    tensors = {"linear.weight": model.linear.weight, "linear.bias": model.linear.bias, "preprocess.mean": pre.mean,
               "preprocess.std": pre.std, "preprocess.target_std": pre.target_std}
    spec = lite.web_spec(pre.config, checkpoint.image_shape, checkpoint.classes,
                         {k: t.detach().float().cpu().numpy() for k, t in tensors.items()})
    return {**spec, "names": names, "numbers": numbers.settings()}


def pipeline(checkpoint: Checkpoint) -> nn.Module:
    """pixels [N, H, W] in [0, 1] -> class probabilities: the run's ``Classifier``, softmax on top."""
    return nn.Sequential(checkpoint.classifier, nn.Softmax(dim=1)).eval()


def web_page(checkpoint: Checkpoint, names: list[str] | None = None) -> str:
    """One self-contained HTML file: the drawing page, the recogniser in JavaScript and the
    model inline (no network, no external script); it opens from file:// as from any host."""
    from .web import page_html, script

    model = json.dumps(web_model(checkpoint, names), separators=(",", ":"))
    scripts = "\n".join(f"<script>\n{script(name)}</script>" for name in ("recognizer.js", "page.js"))
    scripts += (f"\n<script>\nconst MODEL = {model};\n"
                "window.digitPage = MnistPage.start(MnistPage.local(MODEL), MnistPage.collectHere());\n</script>")
    return page_html(scripts, title="mnist-logreg: draw a digit (runs in this page, no server)")


def export(checkpoint: Checkpoint, fmt: str, out: str | os.PathLike, names: list[str] | None = None) -> Path:
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    out = Path(out)
    if fmt == "web":
        return atomic_write_bytes(out, web_page(checkpoint, names).encode("utf-8"))
    graph = pipeline(checkpoint)
    h, w = checkpoint.image_shape
    example = torch.rand(2, h, w)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about Python conditions on shapes
        # Serialised in memory, then written atomically: a full disk is a one-line error
        # naming the file, and never leaves half a model behind.
        if fmt == "onnx":
            torch.onnx.export(graph, (example,), buf, dynamo=False, opset_version=ONNX_OPSET,
                              input_names=["pixels"], output_names=["probabilities"],
                              dynamic_axes={"pixels": {0: "batch"}, "probabilities": {0: "batch"}})
        else:
            torch.jit.save(torch.jit.trace(graph, example), buf)
    return atomic_write_bytes(out, buf.getvalue())
