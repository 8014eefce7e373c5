"""Every place a command writes, against what a system refuses (issue 18).

Each writer runs against a full disk (0, 8, 28 and 40 KB free), a read-only file system,
a file where a folder should be, and a name longer than the system allows. A case ends
either in success (exit 0, the output there) or in one line naming the path and the
system's reason, exit code 2, with the folder exactly as it was before: no half-written
file, no temporary file, no empty folder left behind.

The disks are small tmpfs mounts, which need root (CI runs as root); the other cases run
anywhere. The commands run in this process (``run_main``): the kernel refuses the same.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import one_line_error, run_main
from digits import png_bytes

KB = 1024
JOURNAL = "study.journal"
RUN_FILES = ("model.safetensors", "config.json", "metrics.json", "history.csv")

# Fast trials: one epoch of plain SGD on the small dataset.
FAST_SPACE = 'epochs = {value = 1}\naugment = {value = "none"}\n'


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, small_dir, default_run, mnist):
    folder = tmp_path_factory.mktemp("write-path-inputs")
    (folder / "seven.png").write_bytes(png_bytes(mnist.test_images[0].numpy()))
    (folder / "space.toml").write_text(FAST_SPACE)
    return {"data": str(small_dir), "run": str(default_run), "image": str(folder / "seven.png"),
            "space": str(folder / "space.toml")}


def copy_run(inputs, dest: Path) -> None:
    dest.mkdir()
    for name in RUN_FILES:
        shutil.copy(Path(inputs["run"]) / name, dest / name)


# name -> (the command, given where its output goes and the inputs; the output path).
# ``needs_run``: the run folder it reads lives where it writes (evaluate writes run/report/).
WRITERS = {
    "train": lambda out, i: ["train", "--data-dir", i["data"], "--out", str(out), "--epochs", "1",
                             "--no-select"],
    "train --report": lambda out, i: ["train", "--data-dir", i["data"], "--out", str(out), "--epochs", "1",
                                      "--no-select", "--report"],
    "evaluate": lambda out, i: ["evaluate", "--run", str(out.parent), "--data-dir", i["data"]],
    "compare --out": lambda out, i: ["compare", i["run"], "--out", str(out)],
    "predict --save-preprocessed": lambda out, i: ["predict", "--run", i["run"], i["image"],
                                                   "--save-preprocessed", str(out)],
    "export onnx": lambda out, i: ["export", "--run", i["run"], "--format", "onnx", "--out", str(out)],
    "export torchscript": lambda out, i: ["export", "--run", i["run"], "--format", "torchscript", "--out",
                                          str(out)],
    "export web": lambda out, i: ["export", "--run", i["run"], "--format", "web", "--out", str(out)],
    "tune --out": lambda out, i: ["tune", "--out", str(out), "--data-dir", i["data"], "--space", i["space"],
                                  "--val-size", "400", "--trials", "2", "--no-final"],
    "bench --out": lambda out, i: ["bench", "--quick", "--out", str(out)],
}
# The output's name under the folder the case controls; evaluate's is the run's report/.
OUTPUT = {"train": "run", "train --report": "run", "evaluate": "run/report", "compare --out": "table.md",
          "predict --save-preprocessed": "digits", "export onnx": "m.onnx", "export torchscript": "m.pt",
          "export web": "m.html", "tune --out": "tune", "bench --out": "bench.json"}


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file's bytes and every folder (None) under ``folder``."""
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes()) for p in folder.rglob("*")}


def check(name: str, proc, before: dict, folder: Path, out: Path, reasons: tuple[str, ...]) -> None:
    """Success with the output in place, or one line naming ``out`` (or the folder it goes
    into) and one of ``reasons``, with ``folder`` exactly as it was."""
    if proc.returncode == 0:
        assert out.exists(), (name, proc.stdout)
        return
    one_line_error(proc)
    line = proc.stderr.strip()
    assert str(out) in line or str(out.parent) in line, (name, line)
    assert any(r in line for r in reasons), (name, line)
    after = snapshot(folder)
    if name == "tune --out" and (out / JOURNAL) in [folder / k for k in after]:
        # The study keeps the trials it finished (the same command resumes it): it must load.
        assert load_study(out / JOURNAL).trials, (name, line)
        after = {k: v for k, v in after.items() if k not in (OUTPUT[name], f"{OUTPUT[name]}/{JOURNAL}")}
    assert after == before, (name, line, sorted(set(after) ^ set(before)))


def load_study(journal: Path):
    import optuna
    from optuna.storages.journal import JournalFileBackend

    return optuna.load_study(study_name="mnist-logreg",
                             storage=optuna.storages.JournalStorage(JournalFileBackend(str(journal))))


def extras_missing(name: str) -> bool:
    import importlib.util

    needs = {"export onnx": ("onnx",), "tune --out": ("optuna",), "bench --out": ("torchvision", "sklearn")}
    return any(importlib.util.find_spec(m) is None for m in needs.get(name, ()))


@pytest.fixture
def tmpfs():
    """``tmpfs(size)`` mounts a tmpfs of ``size`` bytes and returns it; all unmounted after."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mounted = []

    def mount(size: int) -> Path:
        folder = Path(tempfile.mkdtemp(prefix="mnist-logreg-disk-"))
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            folder.rmdir()
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=True)
        folder.rmdir()


def fill(folder: Path, free: int) -> None:
    """Leave ``free`` bytes on the file system of ``folder`` (tmpfs counts whole pages)."""
    st = os.statvfs(folder)
    available = st.f_bavail * st.f_frsize
    (folder / "filler").write_bytes(b"\0" * (available - free))
    st = os.statvfs(folder)
    assert st.f_bavail * st.f_frsize == free


def prepare(name: str, folder: Path, inputs) -> Path:
    out = folder / OUTPUT[name]
    if name == "evaluate":
        copy_run(inputs, out.parent)
    return out


@pytest.mark.parametrize("free", [0, 8 * KB, 28 * KB, 40 * KB], ids=lambda f: f"{f // KB}KB-free")
@pytest.mark.parametrize("name", list(WRITERS))
def test_a_full_disk(name, free, tmpfs, inputs):
    if extras_missing(name):
        pytest.skip("needs an extra")
    if name == "bench --out" and free > 8 * KB:
        pytest.skip("bench's few KB fit: that is its success path, a minute long")
    if name == "export onnx" and free in (8 * KB, 28 * KB):
        pytest.skip("the same write as the other exports (atomic_write_bytes), 8 s an ONNX export")
    disk = tmpfs(1024 * KB)
    out = prepare(name, disk, inputs)
    fill(disk, free)
    before = snapshot(disk)
    check(name, run_main(*WRITERS[name](out, inputs)), before, disk, out, ("No space left on device",))


@pytest.mark.parametrize("name", list(WRITERS))
def test_a_read_only_file_system(name, tmpfs, inputs):
    if extras_missing(name):
        pytest.skip("needs an extra")
    disk = tmpfs(1024 * KB)
    out = prepare(name, disk, inputs)
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    before = snapshot(disk)
    proc = run_main(*WRITERS[name](out, inputs))
    assert proc.returncode == 2, (name, proc.stdout)
    check(name, proc, before, disk, out, ("Read-only file system",))


@pytest.mark.parametrize("name", [n for n in WRITERS if n != "evaluate"])
def test_a_file_where_a_folder_should_be(name, tmp_path, inputs):
    if extras_missing(name):
        pytest.skip("needs an extra")
    (tmp_path / "blocker").write_text("a file")
    before = snapshot(tmp_path)
    out = tmp_path / "blocker" / OUTPUT[name]
    proc = run_main(*WRITERS[name](out, inputs))
    assert proc.returncode == 2, (name, proc.stdout)
    check(name, proc, before, tmp_path, out, ("a file, not a folder", "a file of that name is in the way",
                                             "Not a directory"))


@pytest.mark.parametrize("name", [n for n in WRITERS if n != "evaluate"])
def test_a_name_too_long(name, tmp_path, inputs):
    if extras_missing(name):
        pytest.skip("needs an extra")
    before = snapshot(tmp_path)
    out = tmp_path / ("x" * 300 + Path(OUTPUT[name]).suffix)
    proc = run_main(*WRITERS[name](out, inputs))
    assert proc.returncode == 2, (name, proc.stdout)
    check(name, proc, before, tmp_path, out, ("File name too long",))


def test_a_disk_that_fills_during_a_study_leaves_a_study_that_resumes(tmpfs, inputs):
    """The journal runs out of room half-way through a record (4 KB free): one line, and
    the record is undone rather than left truncated, where the next run's first record
    would be glued to it and the study would no longer load. With room again, the same
    command finishes the study."""
    if extras_missing("tune --out"):
        pytest.skip("needs an extra")
    disk = tmpfs(1024 * KB)
    out = disk / "tune"
    fill(disk, 4 * KB)
    args = WRITERS["tune --out"](out, inputs)
    args[args.index("--trials") + 1] = "6"
    one_line_error(run_main(*args), "No space left on device", str(out / JOURNAL))
    stored = (out / JOURNAL).read_bytes()
    assert stored.endswith(b"\n") and len(stored) <= 4 * KB, stored[-200:]
    assert load_study(out / JOURNAL).trials
    (disk / "filler").unlink()
    proc = run_main(*args)
    assert proc.returncode == 0, proc.stderr
    trials = load_study(out / JOURNAL).trials
    # --trials counts finished trials (complete or pruned); the one whose result the full
    # disk refused stays RUNNING (a journal may be shared by live workers: not ours to fail).
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in trials) == 6, [t.state.name for t in trials]


@pytest.mark.parametrize("state", ["full", "read-only"])
def test_a_cache_the_disk_refuses_costs_only_its_time(state, tmpfs, inputs, monkeypatch):
    """The cache is an optimisation: a cache folder on a full or read-only disk leaves the
    run to go on without it, and leaves no temporary file there."""
    disk = tmpfs(64 * KB)
    (disk / "cache").mkdir()
    if state == "full":
        fill(disk, 0)
    else:
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    before = snapshot(disk)
    monkeypatch.setenv("MNIST_LOGREG_CACHE", str(disk / "cache"))
    with tempfile.TemporaryDirectory() as elsewhere:
        proc = run_main("train", "--data-dir", inputs["data"], "--out", str(Path(elsewhere) / "run"),
                        "--epochs", "1")
        assert proc.returncode == 0, proc.stderr
        assert (Path(elsewhere) / "run" / "metrics.json").exists()
    assert snapshot(disk) == before
