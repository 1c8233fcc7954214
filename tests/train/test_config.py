"""Run configuration: YAML round trip, overrides, and clear errors."""

from __future__ import annotations

import re

import pytest

from tsattn.models.mtgnn import MTGNNConfig
from tsattn.train.config import DataConfig, RunConfig, TrainConfig, split_options


def test_yaml_round_trip_and_overrides(tmp_path):
    cfg = RunConfig(data=DataConfig(data="ETTh1", horizon=96), model={"layers": 2})
    cfg = cfg.with_overrides(["model.mixer=eca", "train.lr=1e-3", "train.progress_bar=false"])
    cfg.to_yaml(tmp_path / "cfg.yaml")
    back = RunConfig.from_yaml(tmp_path / "cfg.yaml")
    assert back == cfg
    assert back.model == {"layers": 2, "mixer": "eca"}
    assert back.train.lr == 1e-3 and back.train.progress_bar is False


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.lrr=1", "unknown TrainConfig field"),
        ("model.num_nodes=3", "model.num_nodes is set by the data"),
        ("model.mixr=se", "unknown model field"),
        (
            "train.loss=quantile",
            "train.loss='quantile' is not valid: choose one of auto, mse, l1, huber",
        ),
        ("nosuch.key=1", "'nosuch' is not a section"),
        ("train.lr", "write it as section.key=value"),
    ],
)
def test_bad_overrides_raise_clear_errors(override, message):
    with pytest.raises(ValueError, match=message):
        RunConfig().with_overrides([override])


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: RunConfig.from_dict({"trian": {}}),
            "unknown config section(s) trian; valid: name, output_dir, data, model, train.",
        ),
        (
            lambda: DataConfig.from_dict({"horizn": 3}),
            "unknown DataConfig field(s) horizn; "
            "valid: batch_size, data, eval_batch_size, horizon,",
        ),
        (
            lambda: TrainConfig.from_dict({"lrr": 1, "epochs": 2}),
            "unknown TrainConfig field(s) epochs, lrr; valid: accelerator,",
        ),
        (
            lambda: RunConfig(model={"mixr": "se"}),
            "unknown model field(s) mixr; valid: channel_independent, conv_channels,",
        ),
        (
            lambda: MTGNNConfig.from_dict({"num_nodes": 3, "colour": 1}),
            "unknown MTGNNConfig field(s) colour; valid: channel_independent, conv_channels,",
        ),
    ],
    ids=["run", "data", "train", "model-overrides", "mtgnn"],
)
def test_every_from_dict_names_unknown_fields_and_the_valid_ones(build, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        build()


def test_split_options_sorts_flat_keywords():
    data, model, train = split_options({"horizon": 24, "mixer": "se", "lr": 0.1})
    assert (data, model, train) == ({"horizon": 24}, {"mixer": "se"}, {"lr": 0.1})
    with pytest.raises(ValueError, match="unknown option 'horizn'"):
        split_options({"horizn": 3})


def test_train_config_validates():
    with pytest.raises(ValueError, match=r"train\.lr=0"):
        TrainConfig(lr=0)


def test_a_negative_shrink_names_the_setting():
    with pytest.raises(ValueError, match=r"train\.shortcut_shrink=-0\.5 must be >= 0"):
        TrainConfig(shortcut_shrink=-0.5)
