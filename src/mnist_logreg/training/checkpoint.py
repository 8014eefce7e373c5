"""A trained run as PyTorch modules: what training returns, the exports build on, and the
Python API's ``load_run`` gives. Writing its model file (``model_bytes``) and reading one
back (``load_model``, every part checked by ``reading.modelfile``) are here; the rest of a
run folder is ``runs.py``."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import torch

from ..config import TrainConfig
from ..reading.modelfile import FORMAT, check_image_shape, model_path, read_model_file
from .model import Classifier, SoftmaxRegression
from .preprocess import Preprocessor


@dataclass
class Checkpoint:
    """A trained classifier ready to use: model, preprocessing, config, class labels."""

    classifier: Classifier
    config: TrainConfig
    classes: list[int]

    @property
    def model(self) -> SoftmaxRegression:
        return self.classifier.model

    @property
    def preprocessor(self) -> Preprocessor:
        return self.classifier.preprocess

    @property
    def image_shape(self) -> tuple[int, int]:
        return self.preprocessor.image_shape

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """uint8/float images [N, H, W] (tensor or array) -> logits [N, n_classes], by ``Classifier.logits``."""
        images = torch.as_tensor(images)
        check_image_shape(tuple(images.shape), self.image_shape)
        return self.classifier.logits(images)

    def predict_proba(self, images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(images), dim=1)


# The file names the classifier's tensors as format 1 did, before the classifier was one
# module: "linear.weight" for its "model.linear.weight".
_MODEL_PREFIX = "model."


def model_bytes(classifier: Classifier, config: TrainConfig, classes: list[int]) -> bytes:
    """The model file's contents (safetensors: raw tensors and string metadata, no pickle)."""
    from safetensors.torch import save

    tensors = {k.removeprefix(_MODEL_PREFIX): v.detach().cpu().contiguous()
               for k, v in classifier.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "config": json.dumps(config.to_dict()),
        "image_shape": json.dumps(list(classifier.preprocess.image_shape)),
        "classes": json.dumps(classes),
    }
    # Serialised in memory (31 KB), then written by Python: a full disk is then an OSError
    # that names the file, not a SafetensorError from inside the Rust writer.
    return save(tensors, metadata=metadata)



def load_model(path: str | os.PathLike) -> Checkpoint:
    """Load a model file, every part checked (``modelfile.read_model_file``), as a PyTorch classifier."""
    mf = read_model_file(path)
    n_features = mf.image_shape[0] * mf.image_shape[1]
    classifier = Classifier(Preprocessor(mf.config.preprocess, mf.image_shape),
                            SoftmaxRegression(n_features, len(mf.classes)))
    classifier.load_state_dict({(_MODEL_PREFIX + k if k.startswith("linear.") else k): torch.from_numpy(v).float()
                                for k, v in mf.tensors.items()})
    return Checkpoint(classifier=classifier.eval(), config=mf.config, classes=mf.classes)


def load_run(run_dir: str | os.PathLike) -> Checkpoint:
    return load_model(model_path(run_dir))
