"""mnist-logreg: multinomial logistic regression on MNIST, fast and accurate, in PyTorch."""

from .api import evaluate_run, load_data, train_run
from .config import TrainConfig, build_config
from .data import Dataset, load_dataset
from .errors import UserError
from .model import LogisticRegression, SoftmaxRegression
from .runs import Checkpoint, load_model, load_run
from .train import TrainResult, train

__version__ = "0.1.0"

__all__ = [
    "Checkpoint", "Dataset", "LogisticRegression", "SoftmaxRegression", "TrainConfig", "TrainResult",
    "UserError", "build_config", "evaluate_run", "load_data", "load_dataset", "load_model", "load_run",
    "train", "train_run",
]
