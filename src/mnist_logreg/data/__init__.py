"""Data layer: IDX files -> uint8 tensors, with the bundled MNIST and a download fallback."""

from .datasets import DATASETS, Dataset, default_val_size, load_dataset, train_val_split
from .idx import read_idx, write_idx

__all__ = ["DATASETS", "Dataset", "default_val_size", "load_dataset", "read_idx", "train_val_split", "write_idx"]
