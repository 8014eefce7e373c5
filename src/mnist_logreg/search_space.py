"""The search space of ``tune``: its TOML format, the default space, and sampling a config.

A space maps train flag names to one of ``value = x`` (fixed), ``choices = [...]`` or
``low``/``high`` (with ``log``, ``integer``). ``lr`` is sampled under a per-optimiser
name (``lr_sgd``, ``lr_adam``...) because good ranges differ by optimiser, and parameters
that mean something only for some settings (``CONDITIONS``) are sampled only there.
Every value is checked against the same validation as the CLI's flags before a trial runs.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import build_config, flat_fields, kind_of
from .errors import ConfigError

VAL_SIZE = None  # the default split: 1/12 of the training images (5,000 of MNIST's), see data.default_val_size
# Parameters that only mean something for some optimisers / augmentations.
CONDITIONS = {
    "momentum": ("optimizer", ("sgd",)),
    "nesterov": ("optimizer", ("sgd",)),
    "lbfgs_iters": ("optimizer", ("lbfgs",)),
    "rotate": ("augment", ("affine", "affine,elastic")),
    "translate": ("augment", ("affine", "affine,elastic")),
    "shear": ("augment", ("affine", "affine,elastic")),
    "elastic_alpha": ("augment", ("elastic", "affine,elastic")),
}


@dataclass(frozen=True)
class Param:
    """One dimension of the search space: fixed ``value``, ``choices``, or a ``low``..``high`` range."""

    name: str
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    value: Any = None
    trials_only: bool = False  # see TRIALS_ONLY

    def sample(self, trial):
        if self.value is not None:
            return self.value
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)


# Learning-rate ranges differ by optimiser, so ``lr`` is sampled under a per-optimiser name.
LR_RANGES = {"sgd": (1e-3, 0.5), "adam": (1e-4, 3e-2), "adamw": (1e-4, 3e-2), "lbfgs": (0.1, 1.0)}

DEFAULT_SPACE: dict[str, dict] = {
    "optimizer": {"choices": ["sgd", "adam"]},
    "momentum": {"low": 0.0, "high": 0.95},
    "nesterov": {"choices": [True, False]},
    "weight_decay": {"low": 1e-6, "high": 1e-2, "log": True},
    "batch_size": {"choices": [64, 128, 256, 512, 1024]},
    "epochs": {"low": 2, "high": 12, "integer": True},
    "schedule": {"choices": ["constant", "cosine", "step"]},
    "normalize": {"choices": ["none", "global", "per-pixel"]},
    "deskew": {"choices": [True, False]},
    "moment_norm": {"choices": [True, False]},
    "directions": {"choices": [True, False]},
    # Augmentation is left out of the default search (a --space file can put it back, its
    # ranges below apply then): it never won, and its trials cost 10-50x the others. In 30
    # trials (2026-12-06) the best of 8 affine ones reached 98.92% validation against
    # 99.06% without; presentation augmentation (blur, stroke width, low resolution)
    # gave 98.94% against 99.06%, and no robustness row rose beyond noise (docs/explanation/preprocessing.md).
    "augment": {"value": "none"},
    # The trials rank optimiser settings on the training digits alone: with the damaged
    # copies (--damaged, ``TRIALS_ONLY``) each trial trains on twice the rows, and 30 trials
    # took 72 s instead of 49. The final retraining adds them as the recipe does, unless a
    # --space file names ``damaged``.
    "damaged": {"value": 0.0},
    "rotate": {"low": 0.0, "high": 8.0},
    "translate": {"low": 0.0, "high": 1.5},
    "shear": {"low": 0.0, "high": 8.0},
}


def parse_space(spec: dict[str, Any], where: str = "space") -> dict[str, Param]:
    """Validate a space description (the TOML file's tables) into ``Param`` objects."""
    fields = flat_fields()
    space: dict[str, Param] = {}
    for name, entry in spec.items():
        if name not in fields and not name.startswith("lr"):
            raise ConfigError(f"{where}: unknown parameter {name!r} (a train flag name such as 'lr' or 'batch_size')")
        if not isinstance(entry, dict):
            entry = {"value": entry}  # `epochs = 5` fixes a value
        unknown = set(entry) - {"choices", "low", "high", "log", "integer", "value", "step"}
        if unknown:
            raise ConfigError(f"{where}: {name}: unknown key(s) {', '.join(sorted(unknown))}")
        kinds = [k for k in ("choices", "value") if k in entry] + (["range"] if "low" in entry or "high" in entry
                                                                   else [])
        if len(kinds) != 1:
            raise ConfigError(f"{where}: {name}: give exactly one of choices = [...], low/high, or value")
        if "choices" in entry:
            choices = entry["choices"]
            if not isinstance(choices, list) or not choices:
                raise ConfigError(f"{where}: {name}: choices must be a non-empty list")
            param = Param(name, choices=tuple(choices))
        elif "value" in entry:
            param = Param(name, value=entry["value"])
        else:
            low, high = entry.get("low"), entry.get("high")
            ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (low, high))
            if not ok or low > high:
                raise ConfigError(f"{where}: {name}: low and high must be numbers with low <= high, got {low}, {high}")
            log_scale = bool(entry.get("log", False))
            if log_scale and low <= 0:
                raise ConfigError(f"{where}: {name}: a log-scale range needs low > 0, got {low}")
            integer = bool(entry.get("integer", isinstance(low, int) and isinstance(high, int)
                                     and name in fields and kind_of(name) is int))
            param = Param(name, low=low, high=high, log=log_scale, integer=integer)
        space[name] = param
    _check_values(space)
    return space


def _check_values(space: dict[str, Param]) -> None:
    """Every fixed value, choice and range end must be a valid setting for its flag."""
    for name, p in space.items():
        if name.startswith("lr"):
            name = "lr"
        candidates = [p.value] if p.value is not None else list(p.choices) if p.choices else [p.low, p.high]
        for v in candidates:
            if kind_of(name) is int and isinstance(v, float):
                v = int(v)
            # Check each value on its own: a base where the other knobs cannot object.
            base = {} if name == "nesterov" else {"nesterov": False}
            try:
                build_config("default", **{**base, name: v})
            except ConfigError as exc:
                raise ConfigError(f"space: {p.name}: {exc}") from None


# Entries of the default space that hold for the trials only: the final retraining takes
# the default recipe's value (tune.final_run), unless a --space file gives its own.
TRIALS_ONLY = ("damaged",)


def load_space(path: str | os.PathLike | None) -> dict[str, Param]:
    """The default space, with the tables of a TOML file (if given) replacing its entries."""
    spec = {k: dict(v) for k, v in DEFAULT_SPACE.items()}
    where = "space"
    if path is not None:
        try:
            import tomllib
        except ImportError:  # Python 3.10
            import tomli as tomllib
        path = Path(path)
        where = str(path)
        try:
            user = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"--space {path}: file not found") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--space {path}: invalid TOML ({exc})") from None
        spec.update(user)
        kept = [name for name in TRIALS_ONLY if name not in user]
    else:
        kept = list(TRIALS_ONLY)
    space = parse_space(spec, where)
    return {name: dataclasses.replace(p, trials_only=name in kept) for name, p in space.items()}


def sample_config(trial, space: dict[str, Param], seed: int, device: str, val_size: int | None = VAL_SIZE):
    """Draw one configuration for ``trial``: only the parameters that apply are sampled."""
    default = build_config()
    values: dict[str, Any] = {}
    for name in ("optimizer", "augment"):
        if name in space:
            values[name] = space[name].sample(trial)
    optimizer = values.get("optimizer", default.optim.optimizer)
    lr_param = space.get(f"lr_{optimizer}") or space.get("lr")
    if lr_param is None:
        low, high = LR_RANGES[optimizer]
        lr_param = Param(f"lr_{optimizer}", low=low, high=high, log=True)
    values["lr"] = lr_param.sample(trial)
    for name, param in space.items():
        if name in values or name.startswith("lr"):
            continue
        cond = CONDITIONS.get(name)
        fallback = {"optimizer": default.optim.optimizer, "augment": default.augment.augment}
        if cond and values.get(cond[0], fallback[cond[0]]) not in cond[1]:
            continue
        values[name] = param.sample(trial)
    if not values.get("momentum"):
        values["nesterov"] = False
    # The search samples the preprocessing itself: no --select inside a trial.
    return build_config("default", **values, val_size=val_size, seed=seed, device=device, select=False)


def default_params(space: dict[str, Param]) -> dict[str, Any]:
    """The default recipe as trial parameters (for the parameters the space samples)."""
    flat = build_config().flat()
    params = {}
    for name, p in space.items():
        if name.startswith("lr") or p.value is not None or name not in flat:
            continue
        v = flat[name]
        if p.choices is not None and v not in p.choices:
            continue
        if p.choices is None and not (p.low <= v <= p.high):
            continue
        cond = CONDITIONS.get(name)
        if cond and flat[cond[0]] not in cond[1]:
            continue
        params[name] = v
    params[f"lr_{flat['optimizer']}"] = flat["lr"]
    return params
