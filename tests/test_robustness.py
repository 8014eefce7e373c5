"""The robustness benchmark: its corruptions, its table, and floors that keep the reader honest.

The floors are the reduced benchmark (a fixed 200 test digits a row, 50 for the 640x480
photos) a little under what the full benchmark measures; where a row is short of the
issue's goal its floor sits a little under today's figure, so that a regression fails.
"""

import json

import numpy as np
import pytest

from conftest import run_main
from mnist_logreg import robustness as R

# A little under the goals, or under today's figure where this sample of 200 sits below
# the goal (marker, blur 4): see docs/explanation/robustness.md. Measured at commit
# 3fcdf85 on this sample: clean 100%, MNIST-C mean 96.3%, zigzag 84.5%, dotted line 90.5%.
FLOORS = {
    "clean": 0.98, "shot_noise": 0.93, "impulse_noise": 0.94, "glass_blur": 0.93, "motion_blur": 0.96,
    "shear": 0.97, "scale": 0.97, "rotate": 0.94, "brightness": 0.97, "translate": 0.97, "stripe": 0.95,
    "fog": 0.95, "spatter": 0.94, "dotted_line": 0.87, "zigzag": 0.80, "canny_edges": 0.93,
    "dark_on_white": 0.97, "paper_60": 0.98, "paper_100": 0.98, "paper_160": 0.98, "paper_200": 0.98,
    "low_res_8": 0.93, "low_res_12": 0.97, "low_res_16": 0.97, "frame_filling": 0.98, "blur_2": 0.97,
    "blur_4": 0.93, "marker": 0.94, "thin_pen": 0.97, "jpeg_15": 0.97, "photo": 0.92,
}
MNIST_C_MEAN = 0.945
MAX_NO_DIGIT = {"photo": 0.06}  # 50 photos: one or two refusals; every other row at most 1%


@pytest.fixture(scope="module")
def sampled(mnist):
    labels, digits = mnist.test_labels.numpy(), mnist.test_images.numpy()
    return digits, labels


def test_rows_are_named_as_mnist_c_names_them():
    assert list(R.MNIST_C) == ["shot_noise", "impulse_noise", "glass_blur", "motion_blur", "shear", "scale",
                               "rotate", "brightness", "translate", "stripe", "fog", "spatter", "dotted_line",
                               "zigzag", "canny_edges"]
    assert R.ROWS[0] == "clean" and set(FLOORS) == set(R.ROWS)


def test_every_row_changes_the_image_the_same_way_each_time(sampled):
    digits, _ = sampled
    d = digits[0]
    clean = np.asarray(R.corrupted_image("clean", d, np.random.default_rng(0)).convert("L"))
    assert np.array_equal(clean, d)
    for name in R.ROWS[1:]:
        a = R.corrupted_image(name, d, np.random.default_rng(1))
        b = R.corrupted_image(name, d, np.random.default_rng(1))
        a, b = np.asarray(a.convert("L")), np.asarray(b.convert("L"))
        assert np.array_equal(a, b), name
        assert a.shape != clean.shape or not np.array_equal(a, clean), name


def test_corruptions_against_their_definitions(sampled):
    """The ones with a closed form, checked against it."""
    digits, _ = sampled
    x = digits[0] / 255.0
    rng = np.random.default_rng(0)
    assert np.allclose(R.brightness(x, rng), np.clip(x + 0.5, 0, 1))
    s = R.stripe(x, rng)
    assert np.allclose(s[:, 7:21], x[:, 7:21]) and np.allclose(s[:, :7], 1 - x[:, :7])
    noisy = R.impulse_noise(x, rng)
    changed = noisy != x
    assert 0.05 < changed.mean() < 0.17 and set(np.unique(noisy[changed])) <= {0.0, 1.0}
    assert set(np.unique(R.canny_edges(x, rng))) == {0.0, 1.0}
    shifted = R.translate(x, np.random.default_rng(3))  # 3 whole pixels along each axis, either way
    moves = []
    for dy in (-3, 3):
        for dx in (-3, 3):
            moved = np.zeros_like(x)
            moved[max(dy, 0):28 + min(dy, 0), max(dx, 0):28 + min(dx, 0)] = \
                x[max(-dy, 0):28 + min(-dy, 0), max(-dx, 0):28 + min(-dx, 0)]
            moves += [(dy, dx)] if np.allclose(shifted, moved) else []
    assert len(moves) == 1, moves
    small = R.scale(x, rng)
    assert (small > 0.1).sum() < 0.6 * (x > 0.1).sum()  # 70% of the size: about half the ink
    assert np.isclose(R.gaussian(np.ones((9, 9)), 2.0), 1).all()  # weights sum to one, edges repeated


def test_the_reduced_benchmark_meets_its_floors(sampled, default_run):
    from mnist_logreg.reading import lite

    digits, labels = sampled
    model = lite.load_run(default_run)
    picked = R.sample(labels, 20)
    rows = tuple(r for r in R.ROWS if r != "photo")
    result = R.run_robustness(model, digits[picked], labels[picked], rows, workers=2)
    photos = R.sample(labels, 5)
    result["rows"].update(R.run_robustness(model, digits[photos], labels[photos], ("photo",))["rows"])
    print("\n" + R.format_robustness(result))
    low = {n: r["accuracy"] for n, r in result["rows"].items() if r["accuracy"] < FLOORS[n]}
    refused = {n: r["no_digit"] for n, r in result["rows"].items() if r["no_digit"] > MAX_NO_DIGIT.get(n, 0.01)}
    assert not low, low
    assert not refused, refused
    assert result["mnist_c_mean"] >= MNIST_C_MEAN, result["mnist_c_mean"]


def test_bench_robustness_writes_the_table_and_its_chart(default_run, tmp_path):
    out = tmp_path / "r.json"
    proc = run_main("bench", "--robustness", "--run", str(default_run), "--per-class", "1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert set(result["rows"]) == set(R.ROWS)
    for row in result["rows"].values():
        assert set(row) >= {"accuracy", "no_digit", "n"} and row["n"] == 10
    assert result["mnist_c_mean"] == pytest.approx(np.mean([result["rows"][n]["accuracy"] for n in R.MNIST_C]))
    assert "MNIST-C mean" in proc.stdout
    pytest.importorskip("matplotlib")
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_robustness_refuses_a_missing_run(tmp_path):
    from conftest import one_line_error

    one_line_error(run_main("bench", "--robustness", "--run", str(tmp_path / "nope")), "no such run folder")
    one_line_error(run_main("bench", "--per-class", "3"), "--robustness")
    assert not list(tmp_path.iterdir())
