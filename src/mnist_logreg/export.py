"""Export a trained run to ONNX or TorchScript, preprocessing included.

The exported graph takes what ``images.to_mnist`` produces, scaled to [0, 1]: a float32
tensor ``pixels`` [N, 28, 28] (light digit on dark background, centred by mass). It
applies the run's own preprocessing (deskewing and moment normalisation if trained with
them, then standardisation),
the linear layer and the softmax, and returns ``probabilities`` [N, n_classes].
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
from .preprocess import geometric_normalize
from .runs import Checkpoint

FORMATS = ("onnx", "torchscript")
ONNX_OPSET = 17  # GridSample (deskewing) needs 16 or later


class Pipeline(nn.Module):
    """pixels [N, H, W] in [0, 1] -> class probabilities, exactly as ``Checkpoint.predict_proba``."""

    def __init__(self, checkpoint: Checkpoint):
        super().__init__()
        p = checkpoint.preprocessor
        self.shear = p.config.deskew
        self.geometric = p.geometric
        self.moment_norm = p.config.moment_norm
        self.normalize = p.config.normalize != "none"
        self.gamma = float(p.config.gamma)
        self.register_buffer("target_std", p.target_std.clone())
        self.register_buffer("mean", p.mean.clone())
        self.register_buffer("std", p.std.clone())
        self.linear = nn.Linear(checkpoint.model.n_features, checkpoint.model.n_classes)
        self.linear.load_state_dict(checkpoint.model.linear.state_dict())

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels
        if self.geometric:
            x = geometric_normalize(x, self.shear, self.target_std if self.moment_norm else None)
        x = x.reshape(x.shape[0], -1)
        if self.gamma != 1:
            x = x.clamp_min(0).pow(self.gamma)
        if self.normalize:
            x = (x - self.mean) / self.std
        return torch.softmax(self.linear(x), dim=1)


def export(checkpoint: Checkpoint, fmt: str, out: str | os.PathLike) -> Path:
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    out = Path(out)
    pipeline = Pipeline(checkpoint).eval()
    h, w = checkpoint.image_shape
    example = torch.rand(2, h, w)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about Python conditions on shapes
        # Serialised in memory, then written atomically: a full disk is a one-line error
        # naming the file, and never leaves half a model behind.
        if fmt == "onnx":
            torch.onnx.export(pipeline, (example,), buf, dynamo=False, opset_version=ONNX_OPSET,
                              input_names=["pixels"], output_names=["probabilities"],
                              dynamic_axes={"pixels": {0: "batch"}, "probabilities": {0: "batch"}})
        else:
            torch.jit.save(torch.jit.trace(pipeline, example), buf)
    return atomic_write_bytes(out, buf.getvalue())
