"""Hyperparameter search with Optuna: one laptop by default, many machines on one study.

Each worker process loads the dataset once and keeps its preprocessing in a cache across
trials; every trial calls the same ``train`` as the CLI and maximises *validation*
accuracy, reporting it per epoch to a pruner. The test set is touched once, at the end,
by the best configuration retrained on train + validation.

Storage: a journal file in ``--out`` (so the same command resumes the study) or any
SQLAlchemy URL (``postgresql://...``), which any number of workers on any number of
machines can share. Workers coordinate through the study itself so that exactly
``--trials`` trials finish (complete or pruned), however many workers run.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import signal
import socket
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import atomic_write_json, atomic_write_text
from .config import build_config, flat_fields, kind_of
from .data import Dataset, load_dataset, train_val_split
from .errors import ConfigError, UserError
from .extras import require

log = logging.getLogger(__name__)

JOURNAL_FILE = "study.journal"
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
    "augment": {"choices": ["none", "affine"]},
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
    return parse_space(spec, where)


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


class _Surplus(Exception):
    """This trial started after the study already had enough trials: it is dropped."""


def open_storage(storage: str | None, out: Path):
    import optuna

    if storage is None:
        from optuna.storages.journal import JournalFileBackend

        out.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(out / JOURNAL_FILE)))
    from optuna.storages import RDBStorage, RetryFailedTrialCallback
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    scheme = storage.split("://", 1)[0]
    if scheme in ("postgresql", "postgresql+psycopg2"):  # SQLAlchemy's default PostgreSQL driver
        require(f"tune --storage {scheme}://...", "postgres", "psycopg2")

    for attempt in range(6):
        try:
            # A heartbeat lets surviving workers notice a killed worker's trial and fail it
            # (then retry it once), instead of waiting for it forever.
            return RDBStorage(storage, heartbeat_interval=2, grace_period=6,
                              failed_trial_callback=RetryFailedTrialCallback(max_retry=1),
                              engine_kwargs={"pool_pre_ping": True})
        except (IntegrityError, ProgrammingError):
            # Workers started together on an empty database race to create Optuna's
            # tables; the loser sees a duplicate. The tables exist now: try again.
            if attempt == 5:
                raise
            time.sleep(0.3 * (attempt + 1))
        except Exception as exc:  # SQLAlchemy raises many kinds; all mean the same to the user
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"--storage: cannot open {_redact(storage)} ({first[:200]})") from None


def _redact(url: str) -> str:
    """The URL with its password hidden (SQLAlchemy's own rendering); only the scheme if it does not parse."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("://", 1)[0] + "://..."


def _counts(study) -> tuple[int, int]:
    """(finished, running) trials: finished means complete or pruned."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    finished = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    running = sum(t.state == TrialState.RUNNING for t in trials)
    return finished, running


class CtrlC:
    """Ctrl-C during the search: the running trial finishes, then the workers stop.

    A second Ctrl-C interrupts at once. Why not the usual KeyboardInterrupt: with trials
    of milliseconds a worker spends most of its time in Optuna's storage and in libraries'
    lazy imports, and an exception raised there was lost (the worker went on) or turned
    into another error about half the time, measured here. A flag read between trials
    always works, and leaves no trial half-told in the study.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> CtrlC:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def run_worker(study, objective, n_trials: int, timeout: float | None, poll: float = 0.5,
               stop: CtrlC | None = None) -> None:
    """Run trials until the study holds ``n_trials`` finished ones (or ``timeout`` passes, or ``stop``).

    Several workers (threads, processes, machines) may run this on one study: a worker
    starts a trial only while finished + running < n_trials, and a trial that still finds
    the study full when it starts is dropped (see ``objective``), so exactly ``n_trials``
    finish. Trials of killed workers are failed by the heartbeat and redone.
    """
    from optuna.storages import fail_stale_trials

    start = time.monotonic()
    while True:
        if timeout is not None and time.monotonic() - start > timeout:
            return
        if stop is not None and stop.requested:
            return
        try:
            fail_stale_trials(study)
            _fail_orphans(study)
        except Exception as exc:  # storages without a heartbeat
            log.debug("stale-trial check skipped: %s", exc)
        finished, running = _counts(study)
        if finished >= n_trials:
            return
        if finished + running >= n_trials:
            time.sleep(poll)  # other workers hold the remaining trials; wait for them
            continue
        # Runs a WAITING trial first if there is one (e.g. a killed worker's trial, retried).
        study.optimize(objective, n_trials=1, catch=(_Surplus,))


ORPHAN_SECONDS = 30.0


def _fail_orphans(study) -> None:
    """Fail RUNNING trials that never recorded a heartbeat and started long ago.

    Optuna's stale-trial check skips a trial without any heartbeat row: a worker killed
    between creating its trial and its first heartbeat would leave that trial RUNNING
    forever, and the other workers waiting for it. This uses Optuna's SQL models (there is
    no public query for it) and is a no-op for other storages.
    """
    from datetime import datetime, timedelta

    import sqlalchemy
    from optuna.storages import RDBStorage
    from optuna.storages._rdb import models
    from optuna.trial import TrialState

    storage = study._storage
    storage = getattr(storage, "_backend", storage)  # unwrap a cached storage
    if not isinstance(storage, RDBStorage):
        return
    session = storage.scoped_session()
    try:
        now = session.execute(sqlalchemy.func.now()).scalar().replace(tzinfo=None)
        orphans = [t.trial_id for t in session.query(models.TrialModel)
                   .filter(models.TrialModel.state == TrialState.RUNNING)
                   .filter(models.TrialModel.study_id == study._study_id).all()
                   if not t.heartbeats and t.datetime_start is not None
                   and now - t.datetime_start > timedelta(seconds=ORPHAN_SECONDS)]
    finally:
        session.close()
    callback = storage.get_heartbeat_stale_trial_callback()
    for trial_id in orphans:
        try:
            if storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                log.warning("trial id %d never sent a heartbeat since %s: failed", trial_id, datetime.now())
                if callback is not None:
                    callback(study, storage.get_trial(trial_id))
        except Exception as exc:  # another worker got there first
            log.debug("orphan %d: %s", trial_id, exc)


def make_objective(dataset: Dataset, space: dict[str, Param], n_trials: int, seed: int, device: str,
                   val_size: int | None = VAL_SIZE):
    import optuna
    from optuna.trial import TrialState

    from .train import Stop, train

    cache: dict = {}  # deskewed images and statistics, shared by this worker's trials
    # Which worker ran a trial (machine:process), in trials.csv: a shared study's audit trail.
    worker = f"{socket.gethostname()}:{os.getpid()}"

    def objective(trial) -> float:
        ahead = [t for t in trial.study.get_trials(deepcopy=False)
                 if t.number < trial.number and t.state in (TrialState.COMPLETE, TrialState.PRUNED,
                                                             TrialState.RUNNING)]
        if len(ahead) >= n_trials:
            trial.set_user_attr("dropped", "the study already had enough trials when this one started")
            raise _Surplus()
        config = sample_config(trial, space, seed, device, val_size)
        trial.set_user_attr("worker", worker)
        best = {"val_accuracy": 0.0}

        def on_epoch(row: dict) -> None:
            best["val_accuracy"] = max(best["val_accuracy"], row["val_accuracy"])
            trial.report(row["val_accuracy"], row["epoch"])
            if trial.should_prune():
                raise Stop()

        try:
            result = train(config, dataset, on_epoch=on_epoch, cache=cache)
        except Stop:
            raise optuna.TrialPruned() from None
        trial.set_user_attr("train_seconds", result.train_seconds)
        trial.set_user_attr("config", config.to_dict())
        # The final epoch's model is the one a user would keep: score that, not the best epoch.
        return result.history[-1]["val_accuracy"]

    return objective


def trials_csv(study) -> str:
    trials = study.get_trials(deepcopy=False)
    names = sorted({k for t in trials for k in t.params})
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["number", "state", "value", "seconds", "worker", *names])
    for t in trials:
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and \
            t.datetime_start else ""
        writer.writerow([t.number, t.state.name, "" if t.value is None else t.value, seconds,
                         t.user_attrs.get("worker", ""), *[t.params.get(n, "") for n in names]])
    return buf.getvalue()


def write_plots(study, out: Path) -> list[str]:
    """Optimisation history and parameter importances as PNGs (skipped if too few trials)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as ovm

    written = []
    for name, fn in (("optimization_history.png", ovm.plot_optimization_history),
                     ("param_importances.png", ovm.plot_param_importances)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "few trials in some regimes" notes from the evaluator
                ax = fn(study)
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:  # e.g. fewer than two complete trials
            log.warning("%s skipped: %s", name, exc)
            continue
        fig = ax.figure if hasattr(ax, "figure") else ax[0].figure
        fig.set_size_inches(8, 5)
        fig.tight_layout()
        from .atomic import atomic_write

        atomic_write(out / name, lambda tmp, fig=fig: fig.savefig(tmp, format="png", dpi=100))
        plt.close(fig)
        written.append(name)
    return written


def tune(trials: int = 30, timeout: float | None = None, study_name: str = "mnist-logreg", storage: str | None = None,
         out: str | os.PathLike = "runs/tune", seed: int = 0, n_jobs: int = 1, space_file: str | None = None,
         data_dir: str | None = None, device: str = "auto", final: bool = True,
         val_size: int | None = VAL_SIZE) -> dict:
    """Run (or resume) a study, then retrain its best configuration and score it on test."""
    import optuna

    if not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"--trials must be an integer >= 1, got {trials!r}")
    if timeout is not None and not timeout > 0:
        raise ConfigError(f"--timeout must be > 0 seconds, got {timeout!r}")
    if not isinstance(n_jobs, int) or n_jobs < 1:
        raise ConfigError(f"--n-jobs must be an integer >= 1, got {n_jobs!r}")
    space = load_space(space_file)  # validate everything before touching the storage
    out = Path(out)
    dataset = load_dataset(data_dir=data_dir)  # once per worker, shared by every trial
    build_config(val_size=val_size)
    train_val_split(dataset.train_images.shape[0], val_size)  # a clear error for a too-large split
    store = open_storage(storage, out)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    try:
        study = optuna.create_study(storage=store, study_name=study_name, direction="maximize", load_if_exists=True,
                                    sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=6),
                                    pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1))
    except Exception as exc:
        if isinstance(exc, UserError):
            raise
        raise UserError(f"cannot open study {study_name!r}: {str(exc).splitlines()[0][:200]}") from None
    if not study.get_trials(deepcopy=False):
        # Start from the known-good default recipe: the search can only improve on it.
        study.enqueue_trial(default_params(space), skip_if_exists=True)
    objective = make_objective(dataset, space, trials, seed, device, val_size)
    t0 = time.perf_counter()
    with CtrlC() as ctrl_c:
        if n_jobs == 1:
            run_worker(study, objective, trials, timeout, stop=ctrl_c)
        else:
            workers = [threading.Thread(target=run_worker, args=(study, objective, trials, timeout),
                                        kwargs={"stop": ctrl_c}) for _ in range(n_jobs)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
    if ctrl_c.requested:
        raise KeyboardInterrupt  # the study holds every finished trial: the same command resumes it
    search_seconds = time.perf_counter() - t0
    finished, _ = _counts(study)
    summary = {"study": study_name, "finished_trials": finished, "search_seconds": search_seconds,
               "trials_per_minute": 60 * finished / search_seconds if search_seconds > 0 else None}
    try:
        best = study.best_trial
    except ValueError:
        raise UserError(f"study {study_name!r} has no completed trial yet; run tune again") from None
    summary.update(best_trial=best.number, best_val_accuracy=best.value, best_params=best.params)
    if final:
        summary.update(final_run(best, dataset, out, seed, device))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "trials.csv", trials_csv(study))
    summary["plots"] = write_plots(study, out)
    atomic_write_json(out / "best.json", summary)
    return summary


def final_run(best, dataset: Dataset, out: Path, seed: int, device: str) -> dict:
    """Retrain the best configuration on train + validation; the one look at the test set."""
    from .api import train_run
    from .config import TrainConfig

    values = TrainConfig.from_dict(best.user_attrs["config"]).flat()
    values.update(val_size=0, seed=seed, device=device)
    del values["preset"]  # the trial's settings, all of them, on top of the default preset
    final_config = build_config("default", **values)
    _, _, metrics = train_run(final_config, out / "best-run", dataset=dataset)
    return {"test_accuracy": metrics["test_accuracy"], "test_loss": metrics["test_loss"],
            "final_train_seconds": metrics["train_seconds"], "best_run": str(out / "best-run")}


def format_summary(summary: dict) -> str:
    lines = [f"study {summary['study']}: {summary['finished_trials']} trials finished in "
             f"{summary['search_seconds']:.1f} s ({summary['trials_per_minute']:.1f} trials/min)",
             f"best trial #{summary['best_trial']}: validation accuracy {summary['best_val_accuracy'] * 100:.2f}%"]
    if "test_accuracy" in summary:
        lines.append(f"retrained on train+validation: test accuracy {summary['test_accuracy'] * 100:.2f}% "
                     f"(saved to {summary['best_run']})")
    width = max(len(k) for k in summary["best_params"]) if summary["best_params"] else 0
    lines += [f"  {k:<{width}}  {v}" for k, v in sorted(summary["best_params"].items())]
    return "\n".join(lines)
