"""Optional TensorBoard logging (``train --tensorboard``; needs the ``tensorboard`` extra)."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import UserError


class TensorBoardLogger:
    """Per-epoch scalars and, at the end, the weight templates as images, in ``run_dir/tensorboard``."""

    def __init__(self, run_dir: str | os.PathLike):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UserError("--tensorboard needs the tensorboard package: pip install 'mnist-logreg[tensorboard]'") \
                from None
        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))

    def log_epoch(self, row: dict) -> None:
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)):
                self.writer.add_scalar(key.replace("_", "/", 1), value, row["epoch"])

    def close(self, checkpoint) -> None:
        w = checkpoint.model.linear.weight.detach()
        h, wd = checkpoint.image_shape
        # Map each template to [0, 1] with zero at 0.5 so the sign stays visible.
        limit = w.abs().max().clamp_min(1e-12)
        images = (w / (2 * limit) + 0.5).reshape(-1, 1, h, wd)
        self.writer.add_images("weight_templates", images, 0)
        self.writer.flush()
        self.writer.close()
