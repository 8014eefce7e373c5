import json
import math

import pytest

from mnist_logreg.config import PRESETS, TrainConfig, build_config, flat_fields, kind_of
from mnist_logreg.errors import ConfigError


def test_tutorial_preset_is_the_tutorial_recipe():
    cfg = build_config("tutorial")
    o = cfg.optim
    assert (o.optimizer, o.lr, o.momentum, o.nesterov, o.batch_size, o.epochs, o.weight_decay, o.schedule) == (
        "sgd", 0.001, 0.0, False, 100, 5, 0.0, "constant")
    assert cfg.preprocess.normalize == "none" and not cfg.preprocess.deskew
    assert cfg.augment.kinds == () and cfg.data.val_size == 0


def test_flags_override_the_preset():
    cfg = build_config("tutorial", lr=0.5, epochs=None)
    assert cfg.optim.lr == 0.5 and cfg.optim.epochs == 5


def test_default_recipe_selects_on_validation_only():
    cfg = build_config()
    assert cfg.preprocess.select and cfg.data.val_size is None  # the default split: see test_select.py
    assert build_config("deskewed").preprocess.select is False


def test_a_preprocessing_flag_fixes_the_preprocessing():
    assert build_config(deskew=True).preprocess.select is False
    assert build_config(gamma=0.5, moment_norm=False).preprocess.select is False
    assert build_config(deskew=False, select=True).preprocess.select is True
    assert build_config(lr=0.1).preprocess.select is True  # other flags leave the choice on


def test_the_field_defaults_are_the_default_recipe():
    assert TrainConfig() == build_config() == build_config("default")
    o = TrainConfig().optim
    assert (o.optimizer, o.lr, o.momentum, o.nesterov, o.batch_size, o.schedule) == (
        "sgd", 0.05, 0.9, True, 256, "cosine")


def test_a_saved_config_lacking_newer_fields_keeps_them_off():
    """config.json of a run trained before moment normalisation, gamma and --select existed."""
    old = build_config("deskewed").to_dict()
    for key in ("moment_norm", "gamma", "select"):
        del old["preprocess"][key]
    pre = TrainConfig.from_dict(old).preprocess
    assert (pre.deskew, pre.moment_norm, pre.gamma, pre.select) == (True, False, 1.0, False)


def test_config_round_trips_through_json():
    cfg = build_config("default", lr=0.3, deskew=True, augment="affine")
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(lr=-0.1), "--lr must be a positive number up to 1,000,000, got -0.1"),
        (dict(lr=float("nan")), "--lr must be a positive number"),
        (dict(epochs=0), "--epochs must be an integer from 1 to 100,000"),
        (dict(batch_size=0), "--batch-size"),
        (dict(momentum=1.5), "--momentum must be in \\[0, 1\\)"),
        (dict(nesterov=True, momentum=0.0, optimizer="sgd"), "--nesterov"),
        (dict(weight_decay=-1.0), "--weight-decay"),
        (dict(optimizer="rmsprop"), "--optimizer must be one of"),
        (dict(schedule="linear"), "--schedule"),
        (dict(normalize="zscore"), "--normalize"),
        (dict(val_size=-5), "--val-size"),
        (dict(augment="blur"), "--augment"),
        (dict(rotate=-5.0), "--rotate must be a number >= 0, got -5.0"),
        (dict(scale_min=0.0), "--scale-min must be > 0, got 0.0"),
        (dict(scale_min=1.2, scale_max=1.1), "--scale-max must be >= --scale-min"),
        (dict(elastic_sigma=0.0), "--elastic-sigma must be > 0"),
        (dict(seed=-1), "--seed"),
        (dict(device="tpu"), "--device"),
        (dict(target_spreads="4.2"), "--target-spreads must be two positive numbers of pixels 'Y,X'"),
        (dict(target_spreads="4.2,0"), "--target-spreads must be two positive"),
        (dict(target_spreads="nan,2.9"), "--target-spreads must be two positive"),
    ],
)
def test_bad_values_name_the_flag(overrides, match):
    with pytest.raises(ConfigError, match=match):
        build_config(**overrides)


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown preset 'fastest'; choose from " + ", ".join(PRESETS)):
        build_config("fastest")


@pytest.mark.parametrize("preset", list(PRESETS))
def test_flat_settings_rebuild_the_config(preset):
    cfg = build_config(preset, lr=0.25, gamma=0.5)
    flat = cfg.flat()
    assert flat["lr"] == 0.25 and flat["preset"] == preset and set(flat) == set(flat_fields())
    assert build_config(flat.pop("preset"), **flat) == cfg


def test_field_kinds_come_from_the_annotations():
    from mnist_logreg.config import kind_of

    assert kind_of("val_size") is int  # int | None
    assert kind_of("data_dir") is str and kind_of("deskew") is bool and kind_of("lr") is float
    assert kind_of("seed") is int and kind_of("device") is str


# --val-size's upper limit is the dataset's size, checked when it is loaded (test_hostile).
NUMERIC_FIELDS = [name for name in flat_fields() if kind_of(name) in (int, float) and name != "val_size"]


@pytest.mark.parametrize("name", NUMERIC_FIELDS)
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 1e308, 10**20, -1])
def test_every_numeric_setting_refuses_what_cannot_make_sense(name, value):
    """NaN, infinities, 1e308 and 10**20 in any numeric flag: refused, naming the flag, before
    any work (a flag fuzz found --lr 1e308 overflowing float32 mid-run, and more)."""
    if kind_of(name) is int and isinstance(value, float):
        value = value if not math.isfinite(value) else int(value)
    with pytest.raises(ConfigError, match="--" + name.replace("_", "-") + " must be"):
        build_config(**{name: value})
