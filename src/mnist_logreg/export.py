"""Export a trained run to ONNX or TorchScript, preprocessing included.

The exported graph takes what ``images.to_mnist`` produces, scaled to [0, 1]: a float32
tensor ``pixels`` [N, 28, 28] (light digit on dark background, centred by mass). It
is the run's ``model.Classifier`` (its own preprocessing, then the linear layer), the
very module ``predict`` and ``serve`` run, with a softmax on top: it returns
``probabilities`` [N, n_classes].
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from .atomic import atomic_write_bytes
from .errors import UserError
from .runs import Checkpoint

FORMATS = ("onnx", "torchscript")
ONNX_OPSET = 17  # GridSample (deskewing) needs 16 or later


def pipeline(checkpoint: Checkpoint) -> nn.Module:
    """pixels [N, H, W] in [0, 1] -> class probabilities: the run's ``Classifier``, softmax on top."""
    return nn.Sequential(checkpoint.classifier, nn.Softmax(dim=1)).eval()


def export(checkpoint: Checkpoint, fmt: str, out: str | os.PathLike) -> Path:
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    out = Path(out)
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
