"""The long-horizon recipe applies under multi-step protocols, and explicit settings win."""

import pytest

from tsattn.train import TrainConfig
from tsattn.train.recipe import long_horizon_recipe, resolve_model_options


def test_recipe_fills_only_unset_model_fields():
    resolved = resolve_model_options("tslib", 7, 96, {"conv_channels": 32, "mixer": "eca"})
    assert resolved["conv_channels"] == 32 and resolved["mixer"] == "eca"
    assert resolved["channel_independent"] is True and resolved["graph"] is False
    assert resolved["residual_channels"] == long_horizon_recipe(7, 96)["residual_channels"]


def test_recipe_leaves_the_single_step_protocol_and_recipe_none_alone():
    assert resolve_model_options("mtgnn", 8, 3, {"layers": 5}) == {"layers": 5}
    assert resolve_model_options("tslib", 7, 96, {"layers": 2}, recipe="none") == {"layers": 2}


def test_asking_for_the_graph_turns_channel_independence_off():
    resolved = resolve_model_options("holdout", 7, 24, {"graph": True})
    assert resolved["graph"] is True and resolved["channel_independent"] is False


def test_unknown_recipe_is_a_value_error_naming_the_setting():
    with pytest.raises(ValueError, match=r"train\.recipe='best' is not valid"):
        TrainConfig(recipe="best")


def test_auto_loss_is_l1_under_the_recipe_and_mse_elsewhere():
    from tsattn.train.recipe import resolve_loss

    assert resolve_loss("tslib", "auto") == "l1" and resolve_loss("holdout", "auto") == "l1"
    assert resolve_loss("mtgnn", "auto") == "mse"
    assert resolve_loss("tslib", "auto", recipe="none") == "mse"
    assert resolve_loss("tslib", "mse") == "mse"


def test_fit_trains_the_recipe_model_with_the_resolved_loss(tmp_path):
    from tests.train.conftest import TINY_MODEL
    from tests.train.toy import ToyDataModule
    from tsattn.train import fit_datamodule

    result = fit_datamodule(ToyDataModule(protocol="holdout"), model=TINY_MODEL,
                            train=TrainConfig(max_steps=1, progress_bar=False, patience=0),
                            run_dir=tmp_path)  # fmt: skip
    assert result.module.train_config.loss == "l1"
    assert result.module.model_config.channel_independent is True
