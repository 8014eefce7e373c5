import numpy as np
import pytest
import torch

from mnist_logreg import build_config, train
from mnist_logreg.config import AugmentConfig, PreprocessConfig
from mnist_logreg.data import load_dataset
from mnist_logreg.training.preprocess import Preprocessor, augment, deskew, raw_moments, to_float, warp


def _shear(images, s):
    n, h, w = images.shape
    ys = torch.arange(h, dtype=torch.float32).view(1, h, 1).expand(n, h, w)
    xs = torch.arange(w, dtype=torch.float32).view(1, 1, w).expand(n, h, w)
    return warp(images, xs + s * (ys - (h - 1) / 2), ys)


def test_deskew_recovers_a_sheared_digit(mnist):
    digits = to_float(mnist.test_images[:64])
    straight = deskew(digits)
    for s in (-0.4, 0.3):
        recovered = deskew(_shear(straight, s))
        # Two bilinear resamplings blur a little; the shape must come back.
        err = (recovered - straight).abs().sum(dim=(1, 2)) / straight.sum(dim=(1, 2))
        assert err.median() < 0.15, err
        sheared_err = (_shear(straight, s) - straight).abs().sum(dim=(1, 2)) / straight.sum(dim=(1, 2))
        assert (err < sheared_err).float().mean() > 0.95


def test_deskewed_digits_have_no_skew_and_are_centred(mnist):
    out = deskew(to_float(mnist.train_images[:500]))
    _, cx, cy, _, var_y, cov_xy = raw_moments(out)
    assert (cov_xy / var_y).abs().median() < 0.02
    assert (cx - 13.5).abs().median() < 0.2 and (cy - 13.5).abs().median() < 0.2


def test_deskew_leaves_blank_images_alone():
    blank = torch.zeros(3, 28, 28)
    assert torch.equal(deskew(blank), blank)


def test_global_statistics_are_computed(mnist):
    p = Preprocessor(PreprocessConfig(normalize="global", deskew=False, moment_norm=False, directions=False), (28, 28))
    p.fit(p.images(mnist.train_images))
    assert p.mean[0].item() == pytest.approx(0.1307, abs=1e-4)
    assert p.std[0].item() == pytest.approx(0.3081, abs=1e-4)
    feats = p(mnist.train_images[:20000])
    assert feats.mean().item() == pytest.approx(0.0, abs=0.01)


def test_per_pixel_statistics_have_a_floor(mnist):
    p = Preprocessor(PreprocessConfig(normalize="per-pixel", std_floor=0.1, deskew=False, moment_norm=False,
                                      directions=False),
                     (28, 28))
    p.fit(p.images(mnist.train_images[:5000]))
    assert p.std.min().item() == pytest.approx(0.1)  # the always-blank corner
    assert p.mean.shape == (784,) and p.mean.max() > 0.3


AFFINE = AugmentConfig(augment="affine,elastic", rotate=15, translate=2, scale_min=0.9, scale_max=1.1, shear=10,
                       elastic_alpha=2, elastic_sigma=3)


def test_augmentation_is_per_sample_and_seeded(mnist):
    one = to_float(mnist.train_images[:1]).expand(16, 28, 28).contiguous()
    a = augment(one, AFFINE, torch.Generator().manual_seed(0))
    b = augment(one, AFFINE, torch.Generator().manual_seed(0))
    c = augment(one, AFFINE, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # The same input image, 16 different distortions: every pair differs.
    flat = a.reshape(16, -1)
    dist = torch.cdist(flat, flat) + torch.eye(16) * 1e9
    assert dist.min() > 0.5
    assert not torch.allclose(a[0], one[0], atol=1e-3)
    # Ink is roughly preserved: a distortion, not a different picture.
    ratio = a.sum(dim=(1, 2)) / one.sum(dim=(1, 2))
    assert ((ratio > 0.7) & (ratio < 1.4)).all()


def _presentations(x):
    """The reference for ``preprocess.present``'s family, in NumPy: [kind] -> image [H, W]."""
    h, w = x.shape
    taps = np.exp(-0.5 * np.arange(-2, 3) ** 2)
    taps /= taps.sum()
    blur = np.apply_along_axis(lambda r: np.convolve(r, taps, "same"), 1, x)
    blur = np.apply_along_axis(lambda c: np.convolve(c, taps, "same"), 0, blur)

    def neighbours(pad):
        p = np.pad(x, 1, constant_values=pad)
        return np.stack([p[i:i + h, j:j + w] for i in range(3) for j in range(3)])

    out = {"clean": x, "blur": blur, "thicker": neighbours(-np.inf).max(0), "thinner": neighbours(np.inf).min(0)}
    for side in range(8, 15):
        t = torch.from_numpy(x)[None, None]
        small = torch.nn.functional.interpolate(t, size=(side, side), mode="area")
        out[f"low_res {side}"] = torch.nn.functional.interpolate(small, size=(h, w), mode="bilinear")[0, 0].numpy()
    return out


def test_presentation_augmentation_is_one_of_the_family_per_image(mnist):
    one = to_float(mnist.train_images[:1]).expand(64, 28, 28).contiguous()
    config = AugmentConfig(augment="presentation")
    out = augment(one, config, torch.Generator().manual_seed(0))
    assert torch.equal(out, augment(one, config, torch.Generator().manual_seed(0)))
    x = one[0].double().numpy()
    kinds = []
    for y in out.double().numpy():
        # y = c * (x + a * (T(x) - x)) for one member T, a strength a in [0.3, 1] and the
        # factor c that restores the brightest ink.
        fits = {}
        for kind, t in _presentations(x).items():
            basis = np.stack([x.ravel(), (t - x).ravel()], axis=1)
            coef, *_ = np.linalg.lstsq(basis, y.ravel(), rcond=None)
            fits[kind] = (np.abs(basis @ coef - y.ravel()).max(), coef)
        # An unchanged image fits every member with a = 0: call it clean.
        kind, (err, (c, ca)) = min(fits.items(), key=lambda kv: (kv[1][0] > 1e-6, kv[0] != "clean", kv[1][0]))
        assert err < 1e-4, (kind, err)
        assert y.max() == pytest.approx(x.max(), abs=1e-5)
        if kind != "clean":
            assert 0.3 - 1e-3 <= ca / c <= 1 + 1e-3
        kinds.append(kind.split()[0])
    assert set(kinds) == {"clean", "blur", "thicker", "thinner", "low_res"}


def test_no_augmentation_is_identity(mnist):
    x = to_float(mnist.train_images[:8])
    assert augment(x, AugmentConfig(), torch.Generator()) is x


def test_augmentation_is_off_at_evaluation(small_dir):
    ds = load_dataset(data_dir=small_dir)
    result = train(build_config(optimizer="sgd", lr=0.1, epochs=1, augment="affine,elastic", deskew=True,
                                moment_norm=False, normalize="per-pixel", val_size=200), ds)
    p = result.preprocessor
    x = ds.test_images[:32]
    # Evaluation preprocessing is deterministic and augmentation-free: the same output twice,
    # equal to the plain deskew + standardise pipeline.
    torch.testing.assert_close(p(x), p(x))
    torch.testing.assert_close(p(x), p.standardize(deskew(to_float(x))))


def test_normalisation_is_saved_and_reused(small_dir, tmp_path):
    from mnist_logreg import evaluate_run, train_run
    from mnist_logreg.training.checkpoint import load_run

    cfg = build_config(optimizer="sgd", lr=0.1, epochs=1, normalize="per-pixel", deskew=True, data_dir=str(small_dir),
                       val_size=200)
    ck, _, metrics = train_run(cfg, tmp_path / "run")
    loaded = load_run(tmp_path / "run")
    assert torch.equal(loaded.preprocessor.mean, ck.preprocessor.mean)
    assert torch.equal(loaded.preprocessor.std, ck.preprocessor.std)
    assert evaluate_run(tmp_path / "run")["test_accuracy"] == metrics["test_accuracy"]


def test_moment_normalisation_equalises_digit_sizes(mnist):
    from mnist_logreg.training.preprocess import spreads

    p = Preprocessor(PreprocessConfig(deskew=True, moment_norm=True), (28, 28))
    p.fit_geometry(mnist.train_images[:5000])
    ty, tx = p.target_std.tolist()
    assert 4.0 < ty < 7.0 and 2.0 < tx < 5.0  # medians of real digits, in pixels
    out = p.images(mnist.test_images[:500])
    std_y, std_x = spreads(out)
    before_y, _ = spreads(to_float(mnist.test_images[:500]))
    # Heights now cluster at the target (interpolation blurs a little); before, they spread.
    assert (std_y - ty).abs().median() < 0.25 < (before_y - ty).abs().median()
    assert (std_x - tx).abs().median() < 0.35
    # Shrinking and growing are bounded: a narrow "1" is not blown up to full width.
    ones = mnist.test_images[mnist.test_labels == 1][:100]
    _, ones_x = spreads(p.images(ones))
    assert ones_x.median() < tx


def test_moment_targets_can_be_fixed(mnist):
    """--target-spreads fixes moment normalisation's targets instead of the training images'
    medians (scripts/piece_check.py gives the piece check the digit model's)."""
    p = Preprocessor(PreprocessConfig(target_spreads="5.25,3.5"), (28, 28)).fit_geometry(mnist.train_images[:500])
    assert p.target_std.tolist() == [5.25, 3.5]
    own = Preprocessor(PreprocessConfig(), (28, 28)).fit_geometry(mnist.train_images[:500]).target_std
    assert not torch.equal(own, p.target_std)


def test_moment_targets_are_saved_and_reused(small_dir, tmp_path):
    from mnist_logreg import train_run
    from mnist_logreg.training.checkpoint import load_run

    cfg = build_config(optimizer="sgd", lr=0.1, epochs=1, moment_norm=True, deskew=True, data_dir=str(small_dir),
                       val_size=200)
    ck, _, metrics = train_run(cfg, tmp_path / "run")
    loaded = load_run(tmp_path / "run")
    assert torch.equal(loaded.preprocessor.target_std, ck.preprocessor.target_std)
    assert loaded.preprocessor.target_std.min() > 0
    from mnist_logreg import evaluate_run

    assert evaluate_run(tmp_path / "run", report=False)["test_accuracy"] == metrics["test_accuracy"]


def _directions_reference(images: torch.Tensor, sigma: float = 1.0, radius: int = 3) -> torch.Tensor:
    """stroke_directions written the textbook way: Sobel by conv2d, each gradient split between
    its two nearest of 8 unit directions by solving the 2x2 system (the parallelogram rule),
    opposite directions summed, a 7x7 Gaussian by conv2d, 2x2 average pooling, square root."""
    import math

    import torch.nn.functional as F

    x = images.double().unsqueeze(1)
    sobel = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=torch.float64)
    gx = F.conv2d(x, sobel.view(1, 1, 3, 3), padding=1)[:, 0]
    gy = F.conv2d(x, sobel.t().reshape(1, 1, 3, 3), padding=1)[:, 0]
    n, h, w = gx.shape
    planes = torch.zeros(n, 4, h, w, dtype=torch.float64)
    units = [(math.cos(k * math.pi / 4), math.sin(k * math.pi / 4)) for k in range(8)]
    for i, j, k in torch.nonzero((gx != 0) | (gy != 0)).tolist():
        g = (gx[i, j, k].item(), gy[i, j, k].item())
        sector = int(math.floor(math.atan2(g[1], g[0]) / (math.pi / 4))) % 8
        a, b = units[sector], units[(sector + 1) % 8]
        share = torch.linalg.solve(torch.tensor([[a[0], b[0]], [a[1], b[1]]], dtype=torch.float64),
                                   torch.tensor(g, dtype=torch.float64))
        planes[i, sector % 4, j, k] += share[0]
        planes[i, (sector + 1) % 4, j, k] += share[1]
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g1 = torch.exp(-t * t / (2 * sigma * sigma))
    kernel = torch.outer(g1, g1) / g1.sum() ** 2
    blurred = F.conv2d(planes.view(n * 4, 1, h, w), kernel.view(1, 1, 7, 7), padding=radius)
    pooled = F.avg_pool2d(blurred, 2).view(n, 4, h // 2, w // 2).sqrt()
    return pooled.view(n, 2, 2, h // 2, w // 2).permute(0, 1, 3, 2, 4).reshape(n, h, w)


def test_stroke_directions_equal_the_textbook_computation(mnist):
    from mnist_logreg.training.preprocess import stroke_directions

    digits = deskew(to_float(mnist.test_images[:12]))
    ours = stroke_directions(digits)
    assert ours.shape == digits.shape and ours.dtype == torch.float32
    # Squared: near zero, a square root turns float32's last bits into 1e-5 differences.
    torch.testing.assert_close(ours.double() ** 2, _directions_reference(digits) ** 2, atol=1e-6, rtol=1e-5)


def test_each_stroke_lands_in_its_orientation_plane():
    """A vertical bar is all in the top-left plane, a horizontal one in the bottom-left,
    the two diagonals in the two right-hand planes; a blank image gives zeros, not NaN."""
    from mnist_logreg.training.preprocess import stroke_directions

    images = torch.zeros(5, 28, 28)
    images[0, 4:24, 13:15] = 1  # |
    images[1, 13:15, 4:24] = 1  # -
    for i in range(4, 24):
        images[2, i, 27 - i] = 1  # /  (y grows downwards)
        images[3, i, i] = 1  # \\
    planes = stroke_directions(images).view(5, 2, 14, 2, 14).permute(0, 1, 3, 2, 4).reshape(5, 4, 14, 14)
    energy = planes.pow(2).sum(dim=(2, 3))
    share = energy / energy.sum(dim=1, keepdim=True).clamp_min(1e-12)
    assert share[0, 0] > 0.8 and share[1, 2] > 0.8  # the bars' two ends are edges across them
    assert share[2, 1] > 0.8 and share[3, 3] > 0.8
    assert torch.equal(planes[4], torch.zeros(4, 14, 14))


def test_directions_need_even_sides(tmp_path):
    """An odd-sided dataset: --directions is refused in one line; --select leaves that rung out."""
    from mnist_logreg.data.datasets import make_dataset
    from mnist_logreg.errors import ConfigError

    g = torch.Generator().manual_seed(0)
    tensors = {("train", "images"): torch.randint(0, 256, (400, 27, 27), generator=g, dtype=torch.uint8),
               ("train", "labels"): torch.arange(400) % 4,
               ("t10k", "images"): torch.randint(0, 256, (40, 27, 27), generator=g, dtype=torch.uint8),
               ("t10k", "labels"): torch.arange(40) % 4}
    ds = make_dataset(tensors, "odd", "test")
    with pytest.raises(ConfigError, match="even sides, these are 27x27"):
        train(build_config("directions", epochs=1, val_size=100), ds)
    result = train(build_config(epochs=1, val_size=100), ds)
    assert "directions" not in result.selection["val_accuracy"]
