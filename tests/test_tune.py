import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta

import pytest

from conftest import run_main

optuna = pytest.importorskip("optuna")

from mnist_logreg.errors import ConfigError  # noqa: E402
from mnist_logreg.search_space import load_space, parse_space  # noqa: E402
from mnist_logreg.tune import HEARTBEAT_GRACE  # noqa: E402

# Fast trials for tests: few epochs on the small dataset.
FAST_SPACE = """
epochs = {low = 1, high = 2}
batch_size = {choices = [128, 256]}
augment = {value = "none"}
deskew = {choices = [true, false]}
"""


@pytest.fixture(scope="module")
def space_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("space") / "space.toml"
    path.write_text(FAST_SPACE)
    return path


def _tune(out, small_dir, space_file, *extra):
    return ["tune", "--out", str(out), "--data-dir", str(small_dir), "--space", str(space_file),
            "--val-size", "400", *extra]


def _study(storage, name="mnist-logreg"):
    return optuna.load_study(study_name=name, storage=storage)


def _journal(out):
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(str(out / "study.journal")))


def _finished_so_far(out):
    """Trials finished in a study another process is writing; 0 until its journal records the study."""
    if not (out / "study.journal").exists():
        return 0
    try:
        return _finished(_study(_journal(out)))
    except KeyError:  # the journal file is created before the study's first record is written
        return 0


def _finished(study):
    states = [t.state.name for t in study.get_trials(deepcopy=False)]
    return sum(s in ("COMPLETE", "PRUNED") for s in states)


def test_default_space_is_valid():
    space = load_space(None)
    assert {"optimizer", "weight_decay", "batch_size", "epochs", "normalize", "deskew", "augment"} <= set(space)
    assert space["weight_decay"].log


@pytest.mark.parametrize(
    "spec, match",
    [
        ({"learning_rate": {"low": 0.1, "high": 1}}, "unknown parameter 'learning_rate'"),
        ({"weight_decay": {"low": 1.0, "high": 0.1}}, "low <= high"),
        ({"weight_decay": {"low": 0.0, "high": 0.1, "log": True}}, "log-scale range needs low > 0"),
        ({"batch_size": {"choices": []}}, "non-empty list"),
        ({"epochs": {"low": 1, "high": 3, "choices": [1]}}, "exactly one of"),
        ({"optimizer": {"choices": ["sgd", "rmsprop"]}}, "--optimizer must be one of"),
        ({"epochs": {"value": 0}}, "--epochs must be an integer from 1 to 100,000"),
        ({"epochs": {"low": 1, "high": 3, "stride": 2}}, "unknown key"),
    ],
)
def test_bad_space(spec, match):
    with pytest.raises(ConfigError, match=match):
        parse_space(spec)


def test_tune_writes_results_and_resumes(tmp_path, small_dir, space_file):
    out = tmp_path / "tune"
    proc = run_main(*_tune(out, small_dir, space_file, "--trials", "5"))
    assert proc.returncode == 0, proc.stderr
    assert "5 trials finished" in proc.stdout and "test accuracy" in proc.stdout
    best = json.loads((out / "best.json").read_text())
    assert best["finished_trials"] == 5 and 0 < best["test_accuracy"] <= 1 and best["best_params"]
    assert (out / "best-run" / "model.safetensors").is_file()
    # The trials train without damaged copies; the final retraining adds them, as the recipe does.
    trials = _study(_journal(out)).get_trials(deepcopy=False)
    assert {t.user_attrs["config"]["augment"]["damaged"] for t in trials} == {0.0}
    final = json.loads((out / "best-run" / "metrics.json").read_text())
    assert json.loads((out / "best-run" / "config.json").read_text())["augment"]["damaged"] == 1.0
    assert final["n_damaged"] > 0.9 * final["n_train"]
    assert len((out / "trials.csv").read_text().splitlines()) == 1 + 5
    assert (out / "optimization_history.png").stat().st_size > 1000
    # The same command with more trials continues the same study.
    proc = run_main(*_tune(out, small_dir, space_file, "--trials", "8", "--no-final"))
    assert proc.returncode == 0, proc.stderr
    study = _study(_journal(out))
    assert _finished(study) == 8
    numbers = [t.number for t in study.get_trials(deepcopy=False)]
    assert numbers == list(range(len(numbers)))


def test_ctrl_c_then_resume(tmp_path, small_dir, space_file):
    out = tmp_path / "tune"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    # More trials than can finish before the interrupt, however fast training gets.
    proc = subprocess.Popen([sys.executable, "-m", "mnist_logreg", *_tune(out, small_dir, space_file, "--trials",
                                                                          "10000", "--no-final")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if _finished_so_far(out) >= 3:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "mnist-logreg: interrupted"
    done = _finished(_study(_journal(out)))
    assert 3 <= done < 10000
    proc = run_main(*_tune(out, small_dir, space_file, "--trials", str(done + 2), "--no-final"))
    assert proc.returncode == 0, proc.stderr
    assert _finished(_study(_journal(out))) == done + 2


def test_storage_errors_hide_the_password():
    from mnist_logreg.tune import _redact

    assert _redact("postgresql://me:s3cret@db.example:5432/optuna") == "postgresql://me:***@db.example:5432/optuna"
    assert _redact("sqlite:///study.db") == "sqlite:///study.db"


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--trials", "0"], "--trials must be an integer from 1 to 10,000"),
        (["--timeout", "-1"], "--timeout must be a finite number of seconds > 0"),
        (["--storage", "postgresql+psycopg2://nobody@127.0.0.1:9/none"], "--storage: cannot open"),
        (["--storage", "notadb://x"], "--storage: cannot open"),
    ],
)
def test_bad_input_writes_nothing(tmp_path, small_dir, space_file, args, needle):
    out = tmp_path / "tune"
    proc = run_main(*_tune(out, small_dir, space_file, *args))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert not out.exists() or not any(out.iterdir())


def test_invalid_space_file_breaks_nothing(tmp_path, small_dir, space_file):
    out = tmp_path / "tune"
    assert run_main(*_tune(out, small_dir, space_file, "--trials", "2", "--no-final")).returncode == 0
    before = (out / "study.journal").read_bytes()
    bad = tmp_path / "bad.toml"
    bad.write_text("epochs = {low = 3, high = 1}\n")
    proc = run_main(*_tune(out, small_dir, bad, "--trials", "4"))
    assert proc.returncode == 2 and "low <= high" in proc.stderr
    bad.write_text("epochs = {low = 3, high = \n")
    proc = run_main(*_tune(out, small_dir, bad, "--trials", "4"))
    assert proc.returncode == 2 and "invalid TOML" in proc.stderr
    assert (out / "study.journal").read_bytes() == before
    assert run_main(*_tune(out, small_dir, space_file, "--trials", "3", "--no-final")).returncode == 0
    assert _finished(_study(_journal(out))) == 3


# --- A real PostgreSQL server ------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    pytest.importorskip("psycopg2")
    import shutil
    import tempfile
    from pathlib import Path

    from pg import PostgresServer

    # Not under pytest's private tmp folder: the postgres account must be able to reach it.
    folder = Path(tempfile.mkdtemp(prefix="mnist-logreg-pg-"))
    server = PostgresServer(folder)
    try:
        url = server.start()
    except (RuntimeError, OSError) as exc:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"PostgreSQL could not be started: {exc}")
    yield url
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


def _worker(url, name, trials, small_dir, space_file, out):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.Popen([sys.executable, "-m", "mnist_logreg", *_tune(out, small_dir, space_file, "--trials",
                                                                          str(trials), "--storage", url,
                                                                          "--study-name", name, "--no-final")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.postgres
def test_two_workers_share_one_study_and_stop_at_the_trials_asked(postgres, tmp_path, small_dir, space_file):
    workers = [_worker(postgres, "shared", 12, small_dir, space_file, tmp_path / f"w{i}") for i in range(2)]
    for w in workers:
        _, err = w.communicate(timeout=300)
        assert w.returncode == 0, err
    study = _study(postgres, "shared")
    trials = study.get_trials(deepcopy=False)
    # Each worker stops when the study has 12; the other's running trial may then finish.
    assert 12 <= _finished(study) <= 12 + 1
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))
    # Both workers took part: each finished at least one trial (recorded per trial as host:pid).
    ran = {t.user_attrs["worker"] for t in trials if t.state.name in ("COMPLETE", "PRUNED")}
    assert ran == {f"{socket.gethostname()}:{w.pid}" for w in workers}
    # ... and both used the shared study, not a journal file of their own.
    assert all(not (tmp_path / f"w{i}" / "study.journal").exists() for i in range(2))


# A kill mid-trial, the heartbeat's grace period waited out, a second worker to the end:
# 17-20 s of waiting and training, left to make test-minutes (which .ci/run runs too) so
# that make test keeps its 240 s once the default recipe reads damaged copies.
@pytest.mark.postgres
@pytest.mark.minutes
def test_sigkilled_worker_does_not_corrupt_the_study(postgres, tmp_path, small_dir, space_file):
    slow = tmp_path / "slow.toml"
    # Trials of a second or two, so the kill lands mid-trial even on a loaded machine. The
    # per-batch augmentation sets the pace: plain epochs of 1,500 images take milliseconds.
    slow.write_text(FAST_SPACE.replace("epochs = {low = 1, high = 2}", "epochs = {low = 15, high = 20}")
                    .replace("batch_size = {choices = [128, 256]}", "batch_size = {value = 64}")
                    .replace('augment = {value = "none"}', 'augment = {value = "affine"}'))
    victim = _worker(postgres, "kill", 2, small_dir, slow, tmp_path / "victim")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.2)
        try:
            running = [t for t in _study(postgres, "kill").get_trials(deepcopy=False) if t.state.name == "RUNNING"]
        except KeyError:  # study not created yet
            continue
        # Half a second into a trial: its first heartbeat, sent as it starts, is recorded.
        if running and running[0].datetime_start and datetime.now() - running[0].datetime_start > timedelta(
                seconds=0.5):
            break
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    # The dead trial is stale once its last heartbeat is older than the grace period;
    # the survivor's trials, starting after that, each look for stale ones.
    time.sleep(HEARTBEAT_GRACE + 0.5)
    survivor = _worker(postgres, "kill", 2, small_dir, slow, tmp_path / "survivor")
    try:
        _, err = survivor.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        survivor.kill()
        states = [(t.number, t.state.name) for t in _study(postgres, "kill").get_trials(deepcopy=False)]
        pytest.fail(f"the surviving worker did not finish; trials: {states}")
    assert survivor.returncode == 0, err
    study = _study(postgres, "kill")
    states = [t.state.name for t in study.get_trials(deepcopy=False)]
    assert _finished(study) == 2  # the survivor ran alone to the end: exactly the trials asked
    assert "FAIL" in states  # the killed worker's trial, failed by the heartbeat (and retried)
    assert "RUNNING" not in states


def test_tune_uses_no_private_optuna_name():
    """Optuna's private modules and attributes change without notice (any future Optuna
    is allowed): the coordination must use its public interface only."""
    import ast
    from pathlib import Path

    import mnist_logreg

    package = Path(mnist_logreg.__file__).parent
    for name in ("tune.py", "search_space.py"):
        tree = ast.parse((package / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module != "__future__":
                assert not any(p.startswith("_") for p in node.module.split(".")), f"{name}: {node.module}"
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                assert isinstance(node.value, ast.Name) and node.value.id == "self", f"{name}: .{node.attr}"


def test_threads_of_one_worker_finish_exactly_the_trials_asked(tmp_path, small_dir, space_file):
    from mnist_logreg.tune import tune

    out = tmp_path / "tune"
    summary = tune(trials=5, n_jobs=2, out=out, data_dir=str(small_dir), space_file=str(space_file),
                   final=False, val_size=400)
    assert summary["finished_trials"] == 5 == _finished(_study(_journal(out)))
