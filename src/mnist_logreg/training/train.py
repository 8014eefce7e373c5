"""Training: one ``train`` function that the CLI, the tuner and the benchmark all call.

The whole training set lives on the device as one tensor and a batch is an index
slice of a ``randperm``: no DataLoader, no per-sample Python. The model is linear, so
the gradient of the mean cross-entropy is written out by hand (``softmax - onehot``),
which skips autograd's graph bookkeeping; ``tests/test_train.py`` checks it against
autograd. On the CPU that gradient comes from a fused C kernel (``kernels.py``), else
from PyTorch ops. L-BFGS sees the full batch: the problem is convex and it finds the
optimum.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .. import cache as disk_cache
from ..config import OptimConfig, TrainConfig
from ..data import Dataset, train_val_split
from ..errors import ConfigError
from ..metrics import accuracy, log_loss
from ..reading.modelfile import directions_fit
from ..system import cores
from . import damage, kernels
from .gradients import engine_for
from .model import SoftmaxRegression
from .preprocess import Preprocessor, augment, to_float
from .updates import make_update

log = logging.getLogger(__name__)

# Batches up to this size train fastest single-threaded on the CPU (see ``threads_for``).
SMALL_BATCH = 1024
# Training accuracy per epoch is measured on this many (clean) training images.
PROBE_SIZE = 10000
# Rows per chunk of the full-batch gradient: 2048 x 784 floats (6 MB) stay in cache.
GRAD_CHUNK = 2048


def threads_for(config: TrainConfig) -> int | None:
    """The intra-op thread count that trains ``config`` fastest, or None for PyTorch's own.

    Small per-step matmuls of the PyTorch path run faster on one core than split across
    two (the hand-off costs more than the work): 1.3-1.7x here without the C kernel, the
    same with it. Big batches and L-BFGS use every core. The thread count is the process's
    global state, so the library never sets it: the application does (``torch_threads``),
    the CLI, the benchmark and the tuner around their training.
    """
    o = config.optim
    small = o.optimizer != "lbfgs" and o.batch_size <= SMALL_BATCH
    return 1 if small and resolve_device(config.device).type == "cpu" else None


@contextlib.contextmanager
def torch_threads(n: int | None):
    """PyTorch's intra-op thread count set to ``n`` (None: unchanged) for the block."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; an unavailable CUDA is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available on this machine (use --device cpu or auto)")
    return torch.device(name)


def lr_at(step: int, total_steps: int, base_lr: float, schedule: str) -> float:
    """The learning rate at ``step`` of ``total_steps`` (a pure function of its arguments).

    ``step`` divides by 10 at 50% and again at 75% of training; ``cosine`` anneals from
    ``base_lr`` to 0 over the run.
    """
    if schedule == "constant" or total_steps <= 1:
        return base_lr
    frac = step / total_steps
    if schedule == "step":
        return base_lr * (0.1 ** ((frac >= 0.5) + (frac >= 0.75)))
    if schedule == "cosine":
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * frac))
    raise ValueError(f"unknown schedule {schedule!r}")


def softmax_xent_grad(
    weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor, labels: torch.Tensor, chunk: int = GRAD_CHUNK
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Summed cross-entropy and the gradients of the *mean* cross-entropy, by hand.

    For logits z = W x + b and p = softmax(z): dL/dz = (p - y) / n, so
    dL/dW = (p - y) x^T / n and dL/db = sum over samples of (p - y) / n.
    On the CPU this is the fused C kernel (``kernels.py``). Otherwise the work goes in
    chunks of rows so each chunk of ``x`` is still in cache when the backward reads it.
    """
    if kernels.usable(x, weight):
        return kernels.softmax_xent_grad(weight, bias, x, labels)
    n = x.shape[0]
    loss = torch.zeros((), dtype=x.dtype, device=x.device)
    gw = torch.zeros_like(weight)
    gb = torch.zeros_like(bias).view(-1, 1)
    for xc, yc in zip(x.split(chunk), labels.split(chunk)):
        logp = torch.log_softmax(torch.addmm(bias.view(-1, 1), weight, xc.t()), dim=0)
        yc = F.one_hot(yc, weight.shape[0]).t().to(x.dtype)
        loss.sub_(torch.vdot(logp.reshape(-1), yc.reshape(-1)))
        g = logp.exp_().sub_(yc)
        gw.addmm_(g, xc)
        gb.add_(g.sum(dim=1, keepdim=True))
    return loss, gw.div_(n), gb.view(-1).div_(n)


@dataclass
class TrainResult:
    """What ``train`` returns: the fitted model and preprocessing, and how it went."""

    model: SoftmaxRegression
    preprocessor: Preprocessor
    config: TrainConfig
    history: list[dict] = field(default_factory=list)
    train_seconds: float = 0.0
    preprocess_seconds: float = 0.0
    samples_processed: int = 0
    n_train: int = 0  # the training digits trained on (a person's --add copies included)
    n_damaged: int = 0  # and the damaged copies of them added (``damage.py``)
    n_val: int = 0
    device: str = "cpu"
    # The C kernel's path that computed the gradients (kernels.PATHS), or "off": PyTorch ops.
    kernel: str = "off"
    # With ``--select``: every candidate's validation accuracy and the one chosen.
    selection: dict | None = None

    @property
    def samples_per_second(self) -> float:
        return self.samples_processed / self.train_seconds if self.train_seconds > 0 else float("nan")


class Stop(Exception):
    """Raised by an ``on_epoch`` callback to end training early (e.g. a pruned trial)."""


EpochCallback = Callable[[dict], None]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="epoch", disable=not sys.stderr.isatty(), leave=False)


def fit(
    model: SoftmaxRegression,
    optim: OptimConfig,
    labels: torch.Tensor,
    batch: Callable[[torch.Tensor], torch.Tensor],
    full: Callable[[], torch.Tensor],
    generator: torch.Generator,
    probe: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    on_epoch: EpochCallback | None = None,
    table: torch.Tensor | None = None,
) -> tuple[list[dict], float, int]:
    """Optimise ``model`` in place; returns (history, train seconds, samples processed).

    ``batch(idx)`` gives the features of the training rows ``idx`` (augmented if asked);
    ``full()`` gives features for all rows (L-BFGS: called once per epoch, so each
    epoch may see a fresh augmented copy). ``labels`` are int64 on the model's device.
    ``table``, when given, is what ``batch`` gathers from (``batch(idx) == table[idx]``):
    the C kernel then reads the rows in place instead of copying them out first.
    ``probe`` (clean training features and labels, a fixed sample) gives the per-epoch
    training loss and accuracy, measured after the epoch, without a pass over the whole set.
    """
    device = labels.device
    labels = labels.long()  # the C kernel reads int64 labels
    n_train = labels.numel()
    w, b = model.linear.weight, model.linear.bias
    history: list[dict] = []
    elapsed = 0.0

    if optim.optimizer == "lbfgs":
        step_epoch, counter = _lbfgs_epoch(model, optim, labels, full)
    else:
        step_epoch, counter = _minibatch_epoch(model, optim, n_train, labels, batch, table, generator)

    with _progress(optim.epochs, "train") as bar, torch.no_grad():
        for epoch in range(1, optim.epochs + 1):
            _sync(device)
            t0 = time.perf_counter()
            lr = step_epoch(epoch)
            _sync(device)
            elapsed += time.perf_counter() - t0
            logits = model.logits(probe[0])
            row = {"epoch": epoch, "lr": lr, "train_loss": log_loss(logits, probe[1]),
                   "train_accuracy": accuracy(logits, probe[1])}
            if val is not None and val[1].numel():
                logits = model.logits(val[0])
                row["val_loss"] = log_loss(logits, val[1])
                row["val_accuracy"] = accuracy(logits, val[1])
            row["seconds"] = elapsed
            if "iterations" in counter:
                row["iterations"] = counter["iterations"]
            history.append(row)
            bar.set_postfix({k: f"{v:.4f}" for k, v in row.items() if k.endswith(("loss", "accuracy"))})
            bar.update()
            finite = bool(torch.isfinite(w).all()) and bool(torch.isfinite(b).all())
            if not (math.isfinite(row["train_loss"]) and finite):
                # Each step shrinks the weights by a factor (1 - lr * wd): past 2 it flips and grows them.
                blame = (f"lower --weight-decay or --lr (now {optim.weight_decay:g} and {optim.lr:g}: their "
                         f"product should stay below 1)" if optim.lr * optim.weight_decay >= 1
                         else f"lower --lr (now {optim.lr:g})")
                raise ConfigError(f"training diverged at epoch {epoch} (loss {row['train_loss']}); {blame}")
            if on_epoch is not None:
                on_epoch(row)
    return history, elapsed, counter["samples"]


def _minibatch_epoch(model, optim: OptimConfig, n_train, labels, batch, table, generator):
    """One epoch of minibatch SGD/Adam: a permutation, then per batch its gradient sums
    (``gradients.py``: the C kernel or PyTorch's ops) and the update (``updates.py``)."""
    w, b = model.linear.weight, model.linear.bias
    engine = engine_for(w, labels, batch, table, model.n_classes)
    update = make_update(optim, w, b)
    bs = optim.batch_size
    total_steps = math.ceil(n_train / bs) * optim.epochs
    counter = {"samples": 0, "step": 0}

    def step_epoch(epoch: int) -> float:
        perm = torch.randperm(n_train, generator=generator, device=labels.device)
        engine.start_epoch(perm)
        lr = optim.lr
        step = counter["step"]
        for start in range(0, n_train, bs):
            idx = perm[start:start + bs]
            if optim.schedule != "constant":
                lr = lr_at(step, total_steps, optim.lr, optim.schedule)
            gw, gb = engine.sums(w, b, idx, start)
            update.step(gw, gb, idx.numel(), lr)
            step += 1
        counter["step"] = step
        counter["samples"] += n_train
        return lr

    return step_epoch, counter


def _lbfgs_epoch(model, optim: OptimConfig, labels, full):
    w, b = model.linear.weight, model.linear.bias
    counter = {"samples": 0}

    def step_epoch(epoch: int):
        x = full()
        n = x.shape[0]
        # With augmentation ``full()`` is the originals followed by distorted copies.
        y = labels if n == labels.numel() else labels.repeat(n // labels.numel())
        # A fresh L-BFGS each epoch: with augmentation each epoch's objective differs.
        opt = torch.optim.LBFGS([w, b], lr=optim.lr, max_iter=optim.lbfgs_iters, history_size=optim.lbfgs_history,
                                line_search_fn="strong_wolfe", tolerance_grad=1e-9, tolerance_change=1e-12)

        def closure():
            loss, gw, gb = softmax_xent_grad(w, b, x, y)
            loss = loss / n
            if optim.weight_decay:
                loss = loss + 0.5 * optim.weight_decay * (w * w).sum()
                gw.add_(w, alpha=optim.weight_decay)
            w.grad, b.grad = gw, gb
            counter["samples"] += n
            return loss

        opt.step(closure)
        counter["iterations"] = counter.get("iterations", 0) + opt.state[w].get("n_iter", 0)
        return optim.lr

    return step_epoch, counter


_DAMAGE_LOCK = threading.Lock()


def _damage_round(dataset: Dataset, images: torch.Tensor, rnd: int, cache: dict | None, own: bool = False) -> dict:
    """One damaged copy of each of ``images`` (``damage.damage_round``): the dataset's own
    training digits, from memory, the disk cache, or made now (half a minute for MNIST on two
    cores); or, ``own``, a person's --add digits, from memory or made now (a few, not worth a file)."""
    # --select's candidates prepare side by side: the first makes the copies, the others wait for them.
    with _DAMAGE_LOCK:
        memo = ("damaged", id(dataset), own, rnd)
        if cache is not None and memo in cache:
            return cache[memo]

        def build() -> dict[str, torch.Tensor]:
            made, refused = damage.damage_round(images.numpy(), damage.SEED, rnd, workers=cores())
            return {"images": torch.from_numpy(made), "refused": torch.from_numpy(refused.astype(np.uint8))}

        if own:
            made = build()
        else:
            # With a person's digits after the dataset's, the digest of the dataset's alone (as
            # ``Dataset.train_digest`` computes it), so that adding digits reuses the copies made without them.
            digest = hashlib.blake2b(images.contiguous().numpy().data, digest_size=20).hexdigest() \
                if dataset.n_extra else dataset.train_digest
            key = {"train_images": digest, "n": len(images), "what": "damaged", "round": rnd,
                   "damage": damage.version()}
            made = disk_cache.cached(key, build)
        made["refused"] = made["refused"].bool()
        if cache is not None:
            cache[memo] = made
        return made


@dataclass
class Prepared:
    """A training split made ready for the model: what ``train`` computes before the loop."""

    preprocessor: Preprocessor
    images: torch.Tensor  # training images as stored, uint8 [N, H, W]
    geometric: torch.Tensor | None  # training images after deskewing, float [N, H, W] (kept to augment)
    features: torch.Tensor  # standardised training features [N, H*W]
    labels: torch.Tensor
    val: tuple[torch.Tensor, torch.Tensor] | None
    n_damaged: int = 0  # the last rows of ``images``/``features``: damaged copies


def prepare(config: TrainConfig, dataset: Dataset, device: torch.device, cache: dict | None = None) -> Prepared:
    """Split, move to the device, deskew and standardise, once per distinct setting.

    Two caches. ``cache`` (any dict the caller keeps: the tuner across trials, ``--select``
    across its candidates) holds results in memory by the settings they depend on. The
    disk cache (``cache.py``) keeps what costs seconds across runs: the features and fitted
    statistics, or, where batches are augmented, the deskewed images they are drawn from.
    Plain pixel / 255 features are not worth a file.
    """
    pre = config.preprocess
    augmenting = bool(config.augment.kinds)
    damaging = config.augment.damaged > 0 and dataset.image_shape == (damage.SIDE, damage.SIDE)
    key = ("prepared", id(dataset), config.data.val_size, pre, augmenting, str(device),
           config.augment.damaged if damaging else None)
    if cache is not None and key in cache:
        return cache[key]
    n = dataset.train_images.shape[0]
    train_idx, val_idx = train_val_split(n - dataset.n_extra, config.data.val_size)
    if train_idx.numel() < dataset.n_classes:  # a split that leaves (almost) nothing to learn from
        raise ConfigError(f"--val-size {val_idx.numel()} leaves {train_idx.numel()} of the {n - dataset.n_extra:,} "
                          f"training images to train on; at least {dataset.n_classes} (one per class) are needed: "
                          f"--val-size at most {n - dataset.n_extra - dataset.n_classes:,}")
    disk_key = {"train_images": dataset.train_digest, "n_val": int(val_idx.numel()), "n_extra": dataset.n_extra,
                "deskew": pre.deskew,
                "moment_norm": pre.moment_norm, "target_spreads": pre.target_spreads, "torch": torch.__version__}
    copies = []
    if damaging:  # damaged copies of the training split's digits (never of the validation split's)
        disk_key = {**disk_key, "damaged": config.augment.damaged, "damage": damage.version()}
        # The training split's digits, then a person's own (--add: so that they keep their share).
        sources = [(dataset.train_images[:n - dataset.n_extra], train_idx.numpy(), 0, False)]
        if dataset.n_extra:
            sources.append((dataset.train_images[n - dataset.n_extra:], np.arange(dataset.n_extra),
                            n - dataset.n_extra, True))
        for rnd in range(math.ceil(config.augment.damaged)):
            for images_, idx, first, own in sources:
                made = _damage_round(dataset, images_, rnd, cache, own)
                take = damage.pick(idx, config.augment.damaged, rnd)
                take = torch.from_numpy(take[~made["refused"].numpy()[take]])
                copies.append((made["images"][take], dataset.train_labels[first + take]))
    if dataset.n_extra:  # a person's own digits (--add): always trained on, never validated on
        train_idx = torch.cat([train_idx, torch.arange(n - dataset.n_extra, n)])
    images = torch.cat([dataset.train_images[train_idx], *(c[0] for c in copies)])
    labels = torch.cat([dataset.train_labels[train_idx], *(c[1] for c in copies)])
    images, labels = images.to(device), labels.to(device)
    val_labels = dataset.train_labels[val_idx].to(device)
    preprocessor = Preprocessor(pre, dataset.image_shape)

    def geometry() -> dict[str, torch.Tensor]:
        """The images after the geometric steps (deskew, size), and moment normalisation's targets."""
        geo_key = ("geometric", id(dataset), config.data.val_size, pre.deskew, pre.moment_norm, pre.target_spreads,
                   str(device), key[-1])
        if cache is not None and geo_key in cache:
            return cache[geo_key]

        def build() -> dict[str, torch.Tensor]:
            geo = Preprocessor(pre, dataset.image_shape).fit_geometry(images)
            return {"train": geo.images(images), "val": geo.images(dataset.train_images[val_idx].to(device)),
                    "target_std": geo.target_std}

        if augmenting and preprocessor.geometric:
            out = {k: v.to(device) for k, v in disk_cache.cached({**disk_key, "what": "geometric"}, build).items()}
        else:
            out = build()
        if cache is not None:
            cache[geo_key] = out
        return out

    def fitted(geo: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        p = Preprocessor(pre, dataset.image_shape)
        p.target_std = geo["target_std"].cpu()
        features = p.fit_standardize(geo["train"])
        return {"features": features, "val_features": p.standardize(geo["val"]),
                **{f"preprocess.{k}": v for k, v in p.state_dict().items()}}

    plain = not preprocessor.geometric and pre.normalize == "none" and pre.gamma == 1
    geometric = None
    if augmenting or plain:
        geo = geometry()
        geometric, tensors = geo["train"], fitted(geo)
    else:
        feature_key = {**disk_key, "what": "features", "normalize": pre.normalize, "std_floor": pre.std_floor,
                       "gamma": pre.gamma, "directions": pre.directions}
        tensors = {k: v.to(device) for k, v in disk_cache.cached(feature_key, lambda: fitted(geometry())).items()}
    preprocessor.load_state_dict({k.removeprefix("preprocess."): v.cpu() for k, v in tensors.items()
                                  if k.startswith("preprocess.")})
    val = (tensors["val_features"], val_labels) if val_labels.numel() else None
    prepared = Prepared(preprocessor, images, geometric, tensors["features"], labels, val,
                        sum(len(c[1]) for c in copies))
    if cache is not None:
        cache[key] = prepared
    return prepared


def train(config: TrainConfig, dataset: Dataset, on_epoch: EpochCallback | None = None,
          cache: dict | None = None) -> TrainResult:
    """Train one model as ``config`` says, on the training split of ``dataset``.

    The validation split (``config.data.val_size`` images) is held out of training and
    scored every epoch; the test set is not touched here. ``cache``: see ``prepare``.
    With ``config.preprocess.select`` the preprocessing is chosen first (``select_preprocessing``).
    """
    if config.preprocess.select:
        return select_preprocessing(config, dataset, on_epoch, cache)
    if config.preprocess.directions and not directions_fit(dataset.image_shape):
        h, w = dataset.image_shape
        raise ConfigError(f"--directions needs images with even sides, these are {h}x{w} (use --no-directions)")
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)  # for any op that has no explicit generator
    generator = torch.Generator(device=device).manual_seed(config.seed)
    init_generator = torch.Generator().manual_seed(config.seed)

    t0 = time.perf_counter()
    data = prepare(config, dataset, device, cache)
    preprocessor, geometric, features, labels = data.preprocessor, data.geometric, data.features, data.labels
    aug, pre = config.augment, config.preprocess
    if aug.kinds:
        def batch(idx):
            return preprocessor.standardize(augment(geometric.index_select(0, idx), aug, generator))

        def full():
            # L-BFGS with augmentation: the original images plus freshly distorted copies.
            copies = [preprocessor.standardize(augment(chunk, aug, generator)) for chunk in geometric.split(8192)]
            return torch.cat([features, torch.cat(copies)])
    elif not preprocessor.geometric:
        # Without deskewing a feature is an elementwise function of its uint8 pixel, so a
        # batch can be gathered from the uint8 images (4x fewer bytes from memory, the
        # cost that dominates small batches) and converted by the very same ops that made
        # ``features``: the values, and so the results, are identical. (The PyTorch path:
        # where the C kernel runs, it reads the rows of ``table`` below in place instead.)
        images = data.images

        def batch(idx):
            return preprocessor.standardize(to_float(images.index_select(0, idx)))

        def full():
            return features
    else:
        def batch(idx):
            return features.index_select(0, idx)

        def full():
            return features
    table = None if aug.kinds else features
    if table is not None and not preprocessor.geometric and pre.normalize == "none" and pre.gamma == 1:
        # Features are pixel / 255: the C kernel can read the uint8 images (a quarter of
        # the bytes) and convert them exactly as ``to_float`` does.
        pixels = data.images.reshape(data.images.shape[0], -1)
        table = pixels if kernels.usable(pixels, features.new_empty(1, pixels.shape[1])) else features
    _sync(device)
    preprocess_seconds = time.perf_counter() - t0

    model = SoftmaxRegression(preprocessor.n_features, dataset.n_classes)
    model.reset_parameters(init_generator)
    model.to(device)
    kernel = kernels.path_for(table if table is not None else features, model.linear.weight)
    probe = (features[:PROBE_SIZE], labels[:PROBE_SIZE])
    history, seconds, samples = fit(model, config.optim, labels, batch, full, generator, probe,
                                    val=data.val, on_epoch=on_epoch, table=table)
    model.cpu()
    return TrainResult(model=model, preprocessor=preprocessor, config=config, history=history,
                       train_seconds=seconds, preprocess_seconds=preprocess_seconds, samples_processed=samples,
                       n_train=labels.numel() - data.n_damaged, n_damaged=data.n_damaged,
                       n_val=data.val[1].numel() if data.val else 0, device=str(device), kernel=kernel)


def select_preprocessing(config: TrainConfig, dataset: Dataset, on_epoch: EpochCallback | None = None,
                         cache: dict | None = None) -> TrainResult:
    """Train every candidate preprocessing (``config.candidates()``) and keep the best on validation.

    Each candidate is the fixed recipe it names, trained on the same training split; the
    winner's model is the result, as if that recipe had been asked for, so nothing is
    retrained. Only validation accuracy decides (ties go to the simpler, earlier
    candidate); the test set is never looked at. The reported training time is that of
    all candidates together.
    """
    n = dataset.train_images.shape[0]
    if train_val_split(n, config.data.val_size)[1].numel() == 0:
        raise ConfigError("--select chooses the preprocessing on a validation split: give --val-size > 0, "
                          "or fix the preprocessing (--no-select, or a --preset)")
    cache = {} if cache is None else cache  # the candidates share the split and the geometric steps
    candidates = config.candidates()
    if not directions_fit(dataset.image_shape):
        del candidates["directions"]
    # The candidates train side by side, one per core: each one's steps are small and
    # mostly in the C kernel, which releases the GIL (1.5x on 2 cores, measured here).
    # Heaviest first (the geometric ones, seconds of preprocessing when the disk cache is
    # cold), so the light ones fill in beside them. Each candidate has its own generators:
    # the results do not depend on the schedule.
    def run(name: str) -> TrainResult:
        return train(candidates[name], dataset, cache=cache)

    order = list(reversed(candidates))
    workers = min(len(order), cores())
    if workers <= 1 or resolve_device(config.device).type != "cpu":
        done = [run(name) for name in order]
    else:
        with ThreadPoolExecutor(workers) as pool:
            done = list(pool.map(run, order))
    finished = dict(zip(order, done))
    results = {name: finished[name] for name in candidates}  # in the ladder's order
    scores = {name: r.history[-1]["val_accuracy"] for name, r in results.items()}
    chosen = max(scores, key=scores.get)  # max keeps the first of equal scores
    best = results[chosen]
    log.info("preprocessing chosen on validation: %s (%s)", chosen, scores)
    if on_epoch is not None:
        for row in best.history:
            on_epoch(row)
    best.selection = {"chosen": chosen, "val_accuracy": scores,
                      "train_seconds": {name: r.train_seconds for name, r in results.items()}}
    best.train_seconds = sum(r.train_seconds for r in results.values())
    best.preprocess_seconds = sum(r.preprocess_seconds for r in results.values())
    best.samples_processed = sum(r.samples_processed for r in results.values())
    return best


def fit_features(
    features: torch.Tensor, labels: torch.Tensor, optim: OptimConfig, n_classes: int | None = None, seed: int = 0,
    val: tuple[torch.Tensor, torch.Tensor] | None = None, on_epoch: EpochCallback | None = None,
) -> tuple[SoftmaxRegression, list[dict], float]:
    """Fit the linear model on ready-made features [N, D] (no images, no augmentation).

    The same ``fit`` loop as ``train``; the model takes the dtype and device of ``features``.
    """
    n_classes = n_classes if n_classes is not None else int(labels.max()) + 1
    model = SoftmaxRegression(features.shape[1], n_classes)
    model.reset_parameters(torch.Generator().manual_seed(seed))
    model.to(device=features.device, dtype=features.dtype)
    generator = torch.Generator(device=features.device).manual_seed(seed)
    probe = (features[:PROBE_SIZE], labels[:PROBE_SIZE])
    history, seconds, _ = fit(model, optim, labels, lambda idx: features.index_select(0, idx), lambda: features,
                              generator, probe, val=val, on_epoch=on_epoch, table=features.contiguous())
    return model, history, seconds


