"""Hyperparameter search with Optuna: one laptop by default, many machines on one study.

Each worker process loads the dataset once and keeps its preprocessing in a cache across
trials; every trial calls the same ``train`` as the CLI and maximises *validation*
accuracy, reporting it per epoch to a pruner. The test set is touched once, at the end,
by the best configuration retrained on train + validation.

Storage: a journal file in ``--out`` (so the same command resumes the study) or any
SQLAlchemy URL (``postgresql://...``), which any number of workers on any number of
machines can share. Coordination is Optuna's own: ``MaxTrialsCallback`` stops every
worker once the study holds ``--trials`` finished trials (complete or pruned); trials
already running then finish too, so a study of W workers may end with up to W - 1 more.
A killed worker's trial is failed by its stopped heartbeat and retried once
(``RetryFailedTrialCallback``). The search space is ``search_space.py``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import math
import os
import signal
import socket
import threading
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from .atomic import atomic_write_files, json_bytes, new_folder
from .config import build_config
from .errors import ConfigError, FileSystemError, UserError
from .extras import require
from .search_space import VAL_SIZE, Param, default_params, load_space, sample_config

if TYPE_CHECKING:
    from .data import Dataset

log = logging.getLogger(__name__)

JOURNAL_FILE = "study.journal"
MAX_TRIALS = 10_000
MAX_JOBS = 64  # threads in one process; more machines scale a study further (docs/how-to/tune.md)
# A worker's heartbeat every HEARTBEAT seconds; a RUNNING trial whose last one is older
# than HEARTBEAT_GRACE is a dead worker's, failed (and retried) by the next trial to start.
HEARTBEAT, HEARTBEAT_GRACE = 2, 6
class JournalFile:
    """Optuna's journal file (its ``BaseJournalBackend`` interface: ``read_logs`` and
    ``append_logs``), except that a write the disk refuses half-way is undone.

    Optuna's own ``JournalFileBackend`` leaves the part that fitted: a truncated last line,
    to which the next run's first record is then glued, and the study no longer loads. Here
    the file is cut back to where the write began, under the same lock, so a full disk
    costs the trial in progress and nothing else. Reading is Optuna's.
    """

    def __init__(self, path: Path):
        from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

        self.path = path
        self.lock = JournalFileSymlinkLock(str(path))  # Optuna's default lock for its journal file
        self.reader = JournalFileBackend(str(path), lock_obj=self.lock)

    def read_logs(self, log_number_from: int):
        return self.reader.read_logs(log_number_from)

    def append_logs(self, logs: list[dict]) -> None:
        data = ("\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n").encode("utf-8")
        self.lock.acquire()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                start = os.lseek(fd, 0, os.SEEK_END)
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                    os.fsync(fd)
                except BaseException:
                    os.ftruncate(fd, start)
                    raise
            finally:
                os.close(fd)
        finally:
            self.lock.release()


def _system_refusal(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc``, if any: Optuna wraps a failed journal write in its own
    errors (an AssertionError when a trial's result could not be stored)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def require_driver(storage: str | None) -> None:
    """Refuse, in one line naming the extra, a storage URL whose database driver is missing."""
    scheme = (storage or "").split("://", 1)[0]
    if scheme in ("postgresql", "postgresql+psycopg2"):  # SQLAlchemy's default PostgreSQL driver
        require(f"tune --storage {scheme}://...", "postgres", "psycopg2")


def open_storage(storage: str | None, out: Path):
    import optuna

    if storage is None:
        return optuna.storages.JournalStorage(JournalFile(out / JOURNAL_FILE))
    from optuna.storages import RDBStorage, RetryFailedTrialCallback
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(6):
        try:
            # A heartbeat lets surviving workers notice a killed worker's trial and fail it
            # (then retry it once), instead of waiting for it forever.
            return RDBStorage(storage, heartbeat_interval=HEARTBEAT, grace_period=HEARTBEAT_GRACE,
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


FINISHED = ("COMPLETE", "PRUNED")


def finished_trials(study) -> int:
    """Trials that count towards ``--trials``: complete or pruned."""
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=tuple(TrialState[s] for s in FINISHED)))


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


def make_objective(dataset: Dataset, space: dict[str, Param], seed: int, device: str,
                   val_size: int | None = VAL_SIZE, own_threads: bool = True):
    """The trial function. ``own_threads``: this worker runs one trial at a time, so each
    trial may set PyTorch's (process-wide) thread count to what its recipe trains best with."""
    import optuna

    from .training.train import Stop, threads_for, torch_threads, train

    cache: dict = {}  # deskewed images and statistics, shared by this worker's trials
    # Which worker ran a trial (machine:process), in trials.csv: a shared study's audit trail.
    worker = f"{socket.gethostname()}:{os.getpid()}"

    def objective(trial) -> float:
        config = sample_config(trial, space, seed, device, val_size)
        trial.set_user_attr("worker", worker)
        trial.set_user_attr("trials_only", [name for name, p in space.items() if p.trials_only])
        best = {"val_accuracy": 0.0}

        def on_epoch(row: dict) -> None:
            best["val_accuracy"] = max(best["val_accuracy"], row["val_accuracy"])
            trial.report(row["val_accuracy"], row["epoch"])
            if trial.should_prune():
                raise Stop()

        try:
            with torch_threads(threads_for(config) if own_threads else None):
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


def render_plots(study) -> dict[str, bytes]:
    """Optimisation history and parameter importances as PNG bytes (skipped if too few trials)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as ovm

    rendered = {}
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
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        rendered[name] = buf.getvalue()
    return rendered


def tune(trials: int = 30, timeout: float | None = None, study_name: str = "mnist-logreg", storage: str | None = None,
         out: str | os.PathLike = "runs/tune", seed: int = 0, n_jobs: int = 1, space_file: str | None = None,
         data_dir: str | None = None, device: str = "auto", final: bool = True,
         val_size: int | None = VAL_SIZE) -> dict:
    """Run (or resume) a study, then retrain its best configuration and score it on test."""
    if not isinstance(trials, int) or not 1 <= trials <= MAX_TRIALS:
        raise ConfigError(f"--trials must be an integer from 1 to {MAX_TRIALS:,} (a trial takes seconds to "
                          f"minutes here: {MAX_TRIALS:,} take days), got {trials!r}")
    if timeout is not None and not 0 < timeout < math.inf:
        raise ConfigError(f"--timeout must be a finite number of seconds > 0 (leave it out for no limit), "
                          f"got {timeout!r}")
    if not isinstance(n_jobs, int) or not 1 <= n_jobs <= MAX_JOBS:
        raise ConfigError(f"--n-jobs must be an integer from 1 to {MAX_JOBS}, got {n_jobs!r}")
    if not isinstance(seed, int) or not 0 <= seed < 2**32:  # Optuna's sampler takes 32 bits
        raise ConfigError(f"--seed must be an integer from 0 to 2**32 - 1, got {seed!r}")
    if val_size == 0:
        raise ConfigError("--val-size must be at least 1 for tune: trials are scored on the validation split")
    space = load_space(space_file)  # validate everything before touching the storage
    require_driver(storage)  # before the data load (seconds), not after
    out = Path(out)
    from .data import load_dataset, train_val_split  # PyTorch: after every check that needs none

    dataset = load_dataset(data_dir=data_dir)  # once per worker, shared by every trial
    build_config(val_size=val_size)
    train_val_split(dataset.train_images.shape[0], val_size)  # a clear error for a too-large split
    journal = out / JOURNAL_FILE if storage is None else None
    fresh = journal is not None and not journal.exists()
    try:
        with new_folder(out) if journal is not None else contextlib.nullcontext():
            try:
                return _search(trials, timeout, study_name, storage, out, seed, n_jobs, space, dataset, device, final,
                               val_size)
            except BaseException:
                if fresh and journal.exists() and journal.stat().st_size == 0:
                    journal.unlink()  # nothing was recorded: no empty study (or folder) left behind
                raise
    except UserError:
        raise
    except Exception as exc:
        refusal = _system_refusal(exc)
        if refusal is None:
            raise
        # A full disk or a read-only folder under the journal: the trial in progress is lost,
        # the finished ones are in the study, and the same command resumes it.
        raise FileSystemError(f"cannot write {refusal.filename or journal or out}: "
                              f"{refusal.strerror or refusal}") from None


def _search(trials, timeout, study_name, storage, out, seed, n_jobs, space, dataset, device, final, val_size):
    import optuna

    store = open_storage(storage, out)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    try:
        study = optuna.create_study(storage=store, study_name=study_name, direction="maximize", load_if_exists=True,
                                    sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=6),
                                    pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1))
    except Exception as exc:
        if isinstance(exc, UserError) or _system_refusal(exc) is not None:
            raise
        raise UserError(f"cannot open study {study_name!r}: {str(exc).splitlines()[0][:200]}") from None
    if not study.get_trials(deepcopy=False):
        # Start from the known-good default recipe: the search can only improve on it.
        study.enqueue_trial(default_params(space), skip_if_exists=True)
    # With --n-jobs K the trials are the parallelism: one core each, set once for all of them.
    objective = make_objective(dataset, space, seed, device, val_size, own_threads=n_jobs == 1)
    t0 = time.perf_counter()
    from .training.train import torch_threads

    with CtrlC() as ctrl_c, torch_threads(1 if n_jobs > 1 else None):
        remaining = trials - finished_trials(study)
        if remaining > 0:
            from optuna.study import MaxTrialsCallback
            from optuna.trial import TrialState

            def stop_on_ctrl_c(study, trial) -> None:
                if ctrl_c.requested:
                    study.stop()

            # n_trials=remaining makes one process exact; MaxTrialsCallback stops this worker
            # when other workers on the same study have brought it to ``trials``.
            enough = MaxTrialsCallback(trials, states=tuple(TrialState[s] for s in FINISHED))
            study.optimize(objective, n_trials=remaining, timeout=timeout, n_jobs=n_jobs,
                           callbacks=[enough, stop_on_ctrl_c])
    if ctrl_c.requested:
        raise KeyboardInterrupt  # the study holds every finished trial: the same command resumes it
    search_seconds = time.perf_counter() - t0
    finished = finished_trials(study)
    summary = {"study": study_name, "finished_trials": finished, "search_seconds": search_seconds,
               "trials_per_minute": 60 * finished / search_seconds if search_seconds > 0 else None}
    try:
        best = study.best_trial
    except ValueError:
        raise UserError(f"study {study_name!r} has no completed trial yet; run tune again") from None
    summary.update(best_trial=best.number, best_val_accuracy=best.value, best_params=best.params)
    if final:
        summary.update(final_run(best, dataset, out, seed, device))
    plots = render_plots(study)
    summary["plots"] = sorted(plots)
    # All the results or none of them; best.json last, as the mark of a complete set.
    atomic_write_files({out / "trials.csv": trials_csv(study).encode("utf-8"),
                        **{out / name: png for name, png in plots.items()}, out / "best.json": json_bytes(summary)})
    return summary


def final_run(best, dataset: Dataset, out: Path, seed: int, device: str) -> dict:
    """Retrain the best configuration on train + validation; the one look at the test set."""
    from .api import train_run
    from .config import TrainConfig
    from .training.train import threads_for, torch_threads

    values = TrainConfig.from_dict(best.user_attrs["config"]).flat()
    values.update(val_size=0, seed=seed, device=device)
    recipe = build_config().flat()
    values.update({name: recipe[name] for name in best.user_attrs.get("trials_only", [])})  # search_space.TRIALS_ONLY
    del values["preset"]  # the trial's settings, all of them, on top of the default preset
    final_config = build_config("default", **values)
    with torch_threads(threads_for(final_config)):
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
