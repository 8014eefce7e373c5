import pytest
import torch

from mnist_logreg import build_config, train
from mnist_logreg.config import AugmentConfig, PreprocessConfig
from mnist_logreg.data import load_dataset
from mnist_logreg.preprocess import Preprocessor, augment, deskew, raw_moments, to_float, warp


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
    p = Preprocessor(PreprocessConfig(normalize="global", deskew=False, moment_norm=False), (28, 28))
    p.fit(p.images(mnist.train_images))
    assert p.mean[0].item() == pytest.approx(0.1307, abs=1e-4)
    assert p.std[0].item() == pytest.approx(0.3081, abs=1e-4)
    feats = p(mnist.train_images[:20000])
    assert feats.mean().item() == pytest.approx(0.0, abs=0.01)


def test_per_pixel_statistics_have_a_floor(mnist):
    p = Preprocessor(PreprocessConfig(normalize="per-pixel", std_floor=0.1, deskew=False, moment_norm=False),
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
    from mnist_logreg.runs import load_run

    cfg = build_config(optimizer="sgd", lr=0.1, epochs=1, normalize="per-pixel", deskew=True, data_dir=str(small_dir),
                       val_size=200)
    ck, _, metrics = train_run(cfg, tmp_path / "run")
    loaded = load_run(tmp_path / "run")
    assert torch.equal(loaded.preprocessor.mean, ck.preprocessor.mean)
    assert torch.equal(loaded.preprocessor.std, ck.preprocessor.std)
    assert evaluate_run(tmp_path / "run")["test_accuracy"] == metrics["test_accuracy"]


def test_moment_normalisation_equalises_digit_sizes(mnist):
    from mnist_logreg.preprocess import spreads

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


def test_moment_targets_are_saved_and_reused(small_dir, tmp_path):
    from mnist_logreg import train_run
    from mnist_logreg.runs import load_run

    cfg = build_config(optimizer="sgd", lr=0.1, epochs=1, moment_norm=True, deskew=True, data_dir=str(small_dir),
                       val_size=200)
    ck, _, metrics = train_run(cfg, tmp_path / "run")
    loaded = load_run(tmp_path / "run")
    assert torch.equal(loaded.preprocessor.target_std, ck.preprocessor.target_std)
    assert loaded.preprocessor.target_std.min() > 0
    from mnist_logreg import evaluate_run

    assert evaluate_run(tmp_path / "run", report=False)["test_accuracy"] == metrics["test_accuracy"]
