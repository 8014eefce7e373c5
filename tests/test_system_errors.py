"""What the system refuses is a user error too: one line, exit code 2, nothing half-written.

A full disk is a real one where the test may mount a small tmpfs (root), and everywhere a
file-size limit (``RLIMIT_FSIZE``: writes fail with EFBIG, as a quota would); permission
denied drops root's right to ignore permissions when the tests run as root.
"""

import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import BASE, one_line_error, run_cli, run_main
from digits import png_bytes


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def tiny_disk():
    """A 32 KB tmpfs: too small for a run folder (the model file alone is 31 KB)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    folder = Path(tempfile.mkdtemp(prefix="mnist-logreg-full-"))
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32k", "tmpfs", str(folder)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        folder.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    (folder / "filler").write_bytes(b"\0" * 8192)  # what else is on the disk
    yield folder
    subprocess.run(["umount", str(folder)], check=True)
    folder.rmdir()


def test_a_full_disk_while_saving_a_run(tiny_disk, small_dir):
    proc = run_cli("train", "--data-dir", str(small_dir), "--out", str(tiny_disk / "run"), "--epochs", "1")
    one_line_error(proc, "No space left on device", str(tiny_disk / "run"))
    assert files_under(tiny_disk) == ["filler"]  # no run folder, no model, no temporary file


def test_a_full_disk_while_exporting(tiny_disk, default_run):
    proc = run_cli("export", "--run", str(default_run), "--format", "torchscript", "--out", str(tiny_disk / "m.pt"))
    one_line_error(proc, "No space left on device", "m.pt")
    assert files_under(tiny_disk) == ["filler"]


def _limit_file_size():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # then a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))


def test_a_file_size_limit_while_saving_a_run(tmp_path, small_dir):
    """A new run: nothing left. Over an earlier run: no new model beside old metrics, no
    old model half overwritten. (The two trainings run side by side: most of each is
    starting Python and PyTorch.)"""
    fresh, earlier = tmp_path / "fresh", tmp_path / "earlier"
    fresh.mkdir()
    assert run_main("train", "--data-dir", str(small_dir), "--out", str(earlier), "--epochs", "1").returncode == 0
    before = {name: (earlier / name).read_bytes() for name in files_under(earlier)}
    env = dict(os.environ, PYTHONWARNINGS="ignore", MNIST_LOGREG_NO_CACHE="1")
    procs = [subprocess.Popen([sys.executable, "-m", "mnist_logreg", "train", "--data-dir", str(small_dir), "--out",
                               str(out), "--epochs", epochs], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env, preexec_fn=_limit_file_size)
             for out, epochs in ((fresh / "run", "1"), (earlier, "2"))]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        one_line_error(subprocess.CompletedProcess(p.args, p.returncode, out, err), "File too large")
    assert "model.safetensors" in outs[0][1]
    assert files_under(fresh) == []
    assert {name: (earlier / name).read_bytes() for name in files_under(earlier)} == before


def run_unprivileged(*args: str, hide_torch: bool = False) -> subprocess.CompletedProcess:
    """The CLI without the right to write where the permissions say no (``hide_torch``: with
    torch unimportable, as tests/base_install.py hides a package).

    As root, the child runs without CAP_DAC_OVERRIDE (dropped from its bounding set by
    util-linux's setpriv): still root, but the file permissions now bind it.
    """
    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("as root, permissions bind only without CAP_DAC_OVERRIDE: needs setpriv")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    env = dict(os.environ, PYTHONWARNINGS="ignore", MNIST_LOGREG_NO_CACHE="1")
    python = [sys.executable, str(BASE)] if hide_torch else [sys.executable]
    if hide_torch:
        env["BASE_INSTALL_HIDE"] = "torch"
    return subprocess.run([*prefix, *python, "-m", "mnist_logreg", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_permission_denied(tmp_path, default_run, mnist):
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    image = tmp_path / "digit.png"
    image.write_bytes(png_bytes(mnist.test_images[0].numpy()))
    # Every command that writes, refused in one line naming the path, nothing left. bench
    # works for a minute before it writes: a folder it may not write in is refused first,
    # and by every command before PyTorch loads (seconds): here any import of torch fails.
    # The commands are independent: run side by side (most of each is starting Python).
    cases = [(("train", "--out", str(read_only / "run")), ("Permission denied", str(read_only))),
             (("export", "--run", str(default_run), "--format", "torchscript", "--out", str(read_only / "m.pt")),
              ("Permission denied", str(read_only / "m.pt"))),
             (("evaluate", "--run", str(read_only)), ("no model.safetensors",)),  # no model there: the usual line
             (("bench", "--quick", "--out", str(read_only / "bench.json")),
              ("Permission denied", str(read_only / "bench.json")))]
    for args, target in ((("compare", str(default_run), "--out"), "table.md"),
                         (("predict", "--run", str(default_run), str(image), "--save-preprocessed"), "digits"),
                         (("export", "--run", str(default_run), "--format", "web", "--out"), "m.html"),
                         (("tune", "--trials", "1", "--out"), "tune")):
        cases.append(((*args, str(read_only / target)), ("Permission denied", str(read_only / target))))
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        procs = list(pool.map(lambda case: run_unprivileged(*case[0], hide_torch=True), cases))
    for (args, expected), proc in zip(cases, procs):
        one_line_error(proc, *expected)
        if args[0] == "bench":
            assert proc.stdout == ""
    assert files_under(read_only) == []
    read_only.chmod(0o755)
    # A model file the user may not read: said so, not called missing (safetensors' words).
    unreadable = tmp_path / "unreadable"
    shutil.copytree(default_run, unreadable)
    unreadable.chmod(0o755)
    (unreadable / "model.safetensors").chmod(0o000)
    proc = run_unprivileged("export", "--run", str(unreadable), "--format", "onnx", "--out", str(tmp_path / "m.onnx"))
    one_line_error(proc, "permission denied (cannot read the model file)")


def test_a_path_that_is_a_file(tmp_path, default_run):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    one_line_error(run_main("train", "--out", str(blocker / "run")), "is a file, not a folder")
    one_line_error(run_main("train", "--out", str(blocker)), "exists and is not a folder")
    proc = run_main("export", "--run", str(default_run), "--format", "torchscript", "--out", str(blocker / "m.pt"))
    one_line_error(proc, str(blocker), "a file of that name is in the way")
    proc = run_main("predict", "--run", str(default_run), str(blocker), "--save-preprocessed", str(blocker / "x"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert blocker.read_text() == "not a folder"
