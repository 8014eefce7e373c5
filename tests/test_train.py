import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mnist_logreg import build_config, train
from mnist_logreg.config import OptimConfig
from mnist_logreg.data import load_dataset
from mnist_logreg.training.model import SoftmaxRegression
from mnist_logreg.training.train import fit_features, lr_at, softmax_xent_grad


def _problem(n=300, d=20, c=4, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=dtype)
    true_w = torch.randn(c, d, generator=g, dtype=dtype)
    y = (x @ true_w.t() + 0.5 * torch.randn(n, c, generator=g, dtype=dtype)).argmax(dim=1)
    return x, y


@pytest.mark.parametrize("chunk", [7, 2048])
def test_gradient_equals_autograd(chunk):
    x, y = _problem()
    w = torch.randn(4, 20, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)
    loss = F.cross_entropy(x @ w.t() + b, y)
    loss.backward()
    loss_sum, gw, gb = softmax_xent_grad(w.detach(), b.detach(), x, y, chunk=chunk)
    torch.testing.assert_close(loss_sum / len(y), loss.detach())
    torch.testing.assert_close(gw, w.grad)
    torch.testing.assert_close(gb, b.grad)


def test_lbfgs_optimum_matches_scikit_learn():
    sklearn = pytest.importorskip("sklearn.linear_model")
    x, y = _problem(n=400, d=15, c=3)
    C = 0.5
    ours, _, _ = fit_features(x, y, OptimConfig(optimizer="lbfgs", lr=1.0, epochs=10, lbfgs_iters=50,
                                                weight_decay=1.0 / (C * len(y))))
    ref = sklearn.LogisticRegression(C=C, tol=1e-10, max_iter=10000).fit(x.numpy(), y.numpy())
    np.testing.assert_allclose(ours.linear.weight.detach().numpy(), ref.coef_, atol=2e-4)
    # Unpenalised softmax intercepts are only defined up to a common shift: compare centred.
    ours_b = ours.linear.bias.detach().numpy()
    np.testing.assert_allclose(ours_b - ours_b.mean(), ref.intercept_ - ref.intercept_.mean(), atol=2e-4)
    probs = torch.softmax(ours(x), dim=1).detach().numpy()
    np.testing.assert_allclose(probs, ref.predict_proba(x.numpy()), atol=1e-5)


@pytest.mark.parametrize("momentum, nesterov, wd", [(0.0, False, 0.0), (0.0, False, 1e-2), (0.9, False, 1e-3),
                                                    (0.9, True, 0.0)])
def test_sgd_equals_torch_optim_sgd(momentum, nesterov, wd):
    """Our fused/hand-written SGD is torch.optim.SGD's maths (bias not decayed)."""
    x, y = _problem(n=200)
    optim = OptimConfig(optimizer="sgd", lr=0.1, momentum=momentum, nesterov=nesterov, weight_decay=wd,
                        batch_size=32, epochs=3, schedule="constant")
    ours, _, _ = fit_features(x, y, optim, seed=3)

    ref = SoftmaxRegression(20, 4)
    ref.reset_parameters(torch.Generator().manual_seed(3))
    ref.double()
    opt = torch.optim.SGD([{"params": [ref.linear.weight], "weight_decay": wd},
                           {"params": [ref.linear.bias], "weight_decay": 0.0}], lr=0.1, momentum=momentum,
                          nesterov=nesterov)
    gen = torch.Generator().manual_seed(3)
    for _ in range(3):
        perm = torch.randperm(200, generator=gen)
        for start in range(0, 200, 32):
            idx = perm[start:start + 32]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(ref(x[idx]), y[idx]).backward()
            opt.step()
    torch.testing.assert_close(ours.linear.weight, ref.linear.weight.detach())
    torch.testing.assert_close(ours.linear.bias, ref.linear.bias.detach())


def test_adam_reduces_loss():
    x, y = _problem()
    optim = OptimConfig(optimizer="adam", lr=0.05, epochs=5, batch_size=50, weight_decay=0.0, schedule="constant")
    model, history, _ = fit_features(x, y, optim)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["train_accuracy"] > 0.8


def test_lr_schedules():
    assert lr_at(0, 100, 0.1, "constant") == lr_at(99, 100, 0.1, "constant") == 0.1
    assert [lr_at(s, 100, 1.0, "step") for s in (0, 49, 50, 74, 75)] == pytest.approx([1, 1, 0.1, 0.1, 0.01])
    assert lr_at(0, 100, 1.0, "cosine") == 1.0
    assert lr_at(50, 100, 1.0, "cosine") == pytest.approx(0.5)
    assert lr_at(100, 100, 1.0, "cosine") == pytest.approx(0.0)


def test_same_seed_same_model(small_dir):
    ds = load_dataset(data_dir=small_dir)
    cfg = build_config(optimizer="sgd", lr=0.1, epochs=2, batch_size=64, augment="affine,elastic", deskew=True,
                       normalize="per-pixel", val_size=0)
    a, b = train(cfg, ds), train(cfg, ds)
    assert torch.equal(a.model.linear.weight, b.model.linear.weight)
    c = train(build_config(optimizer="sgd", lr=0.1, epochs=2, batch_size=64, augment="affine,elastic",
                           deskew=True, normalize="per-pixel", seed=1, val_size=0), ds)
    assert not torch.equal(a.model.linear.weight, c.model.linear.weight)


def test_history_and_validation(small_dir):
    ds = load_dataset(data_dir=small_dir)
    result = train(build_config(optimizer="sgd", lr=0.1, epochs=3, val_size=200, select=False), ds)
    assert [row["epoch"] for row in result.history] == [1, 2, 3]
    assert result.n_train == 1800 and result.n_val == 200
    assert 1750 <= result.n_damaged <= 1800  # one damaged copy of each (a few answered "no digit")
    assert all(0 <= row["val_accuracy"] <= 1 for row in result.history)
    assert result.history[-1]["val_accuracy"] > 0.7
    assert result.train_seconds > 0 and result.samples_processed == 3 * (1800 + result.n_damaged)


@pytest.mark.parametrize("lr, weight_decay, blame", [
    # Past the --lr limit (1e6 keeps cross-entropy's bounded gradient finite): the
    # learning rate is set past validation to reach the check at all.
    (1e38, 0.0, r"lower --lr \(now 1e\+38\)"),
    # Each step multiplies the weights by (1 - lr * wd) = -4: the flag to lower is the decay.
    (0.05, 100.0, r"lower --weight-decay or --lr \(now 100 and 0.05"),
])
def test_divergence_is_reported_with_the_flag_to_lower(small_dir, lr, weight_decay, blame):
    from mnist_logreg.errors import ConfigError

    ds = load_dataset(data_dir=small_dir)
    config = build_config(optimizer="sgd", weight_decay=weight_decay, batch_size=16, epochs=2,
                          normalize="per-pixel", val_size=0, select=False)
    object.__setattr__(config.optim, "lr", lr)
    with pytest.raises(ConfigError, match="diverged at epoch 1 .*" + blame):
        train(config, ds)


def test_cuda_unavailable_is_a_user_error():
    from mnist_logreg.errors import ConfigError
    from mnist_logreg.training.train import resolve_device

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda")


def test_training_leaves_the_thread_count_to_the_caller(monkeypatch, small_dir):
    """PyTorch's thread count is process-wide (tune --n-jobs threads share it): the library
    never sets it; the application picks it with ``threads_for`` and ``torch_threads``."""
    from mnist_logreg.config import build_config
    from mnist_logreg.data import load_dataset
    from mnist_logreg.training.train import threads_for, torch_threads, train

    small = load_dataset(data_dir=small_dir)

    def refuse(n):
        raise AssertionError(f"the library set the thread count to {n}")

    config = build_config("normalized", epochs=1, val_size=200)
    with monkeypatch.context() as m:
        m.setattr(torch, "set_num_threads", refuse)
        train(config, small)
        train(build_config(epochs=1, val_size=200), small)  # --select trains candidates in threads
    assert threads_for(config) == 1 and threads_for(build_config("raw")) is None
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    with torch_threads(None):
        assert torch.get_num_threads() == before
    assert torch.get_num_threads() == before
