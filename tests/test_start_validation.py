"""experiments/start_validation.py: the fits of the start it compares are variations of the
trainer's own fit, and the cycle it reports is the trainer's choice."""

import numpy as np
import pandas as pd
import pytest
import torch

from tests.experiment_scripts import load_experiment


@pytest.fixture(scope="module")
def script():
    return load_experiment("start_validation")


def _hourly(rows: int = 1200) -> pd.DataFrame:
    hours = np.arange(rows)
    g = np.random.default_rng(0)
    values = np.stack([np.sin(2 * np.pi * hours / 24) + g.normal(0, 0.3, rows),
                       np.cos(2 * np.pi * hours / 24) + g.normal(0, 0.3, rows)], 1)  # fmt: skip
    return pd.DataFrame(values, index=pd.date_range("2024-01-01", periods=rows, freq="h"))


def test_refit_with_the_trainers_settings_is_the_trainers_start(script):
    dm, model, _ = script.started(_hourly(), 12, True, None)
    before = {k: v.clone() for k, v in model.shortcut.state_dict().items()}
    script.refit(model, dm, ridge=1e-4, robust=False)
    for key, value in model.shortcut.state_dict().items():
        torch.testing.assert_close(value, before[key], atol=1e-5, rtol=1e-4)
    script.refit(model, dm, ridge=1e-4, robust=True)
    assert (model.shortcut.linear.weight - before["linear.weight"]).abs().max() > 1e-4


def test_recency_weights_reduce_to_the_start_when_the_decay_is_long(script):
    dm, model, _ = script.started(_hourly(), 12, True, None)
    before = {k: v.clone() for k, v in model.shortcut.state_dict().items()}
    script.refit(model, dm, decay=1e9)  # every window weighted alike again
    for key, value in model.shortcut.state_dict().items():
        torch.testing.assert_close(value, before[key], atol=1e-5, rtol=1e-4)
    script.refit(model, dm, decay=0.05)  # the last weeks dominate: another map
    assert (model.shortcut.linear.weight - before["linear.weight"]).abs().max() > 1e-4


def test_reduce_rank_projects_the_map_onto_its_leading_directions(script):
    dm, model, _ = script.started(_hourly(), 12, True, None)
    before = model.shortcut.linear.weight.clone()  # (H, L)
    script.reduce_rank(model, dm, 12)  # full rank: the same map
    torch.testing.assert_close(model.shortcut.linear.weight, before, atol=1e-5, rtol=1e-4)
    script.reduce_rank(model, dm, 2)
    assert torch.linalg.matrix_rank(model.shortcut.linear.weight, rtol=1e-4) == 2
    assert torch.linalg.matrix_rank(before, rtol=1e-4) > 2


def test_variants_rows_score_every_fit(script):
    row = script.variants(_hourly(), 12, None)
    assert row[1] == "12"
    mse = [float(cell.split(" / ")[0]) for cell in row[2:]]
    assert len(mse) == len(script.VARIANTS)
    assert mse[0] == pytest.approx(script.start_val(_hourly(), 12, True, None)[0], abs=5e-5)
    assert len(set(mse)) > 1


def test_cycle_choice_reports_the_trainers_choice_with_both_scores(script):
    row = script.cycle_choice(_hourly(), 12, None)
    day, week, none, chosen = row[2:]
    assert day.startswith("24: ") and week.startswith("168: ")
    loss = {
        int(cell.split(":")[0]): float(cell.split(": ")[1].split(" / ")[0]) for cell in (day, week)
    }
    assert int(chosen) == min(loss, key=loss.get) == 24  # a daily sine: the day validates better
    assert float(none.split(" / ")[0]) not in loss.values()  # the start without a cycle


def test_cycle_choice_without_a_known_step_keeps_no_cycle(script):
    dateless = _hourly().reset_index(drop=True)
    row = script.cycle_choice(dateless, 12, None)
    assert row[2:4] == ["", ""] and row[-1] == "0"
    assert float(row[4].split(" / ")[0]) > 0


def test_refit_cycle_is_the_least_squares_cycle_for_the_map_as_it_stands(script):
    dm, model, _ = script.started(_hourly(), 12, True, None)
    training = script.in_order(dm)
    before = script.scores(model, dm, training)[0]  # phase means, the trainer's start
    script.refit_cycle(model, dm)
    fitted = model.cycle.values.clone()
    after = script.scores(model, dm, training)[0]
    assert after < before  # the exact minimiser over the cycle, the map held fixed
    script.refit_cycle(model, dm)  # the same problem again: the same cycle
    torch.testing.assert_close(model.cycle.values, fitted, atol=1e-5, rtol=1e-4)


def test_per_variable_variants_start_a_model_with_a_map_per_variable(script):
    dm, model, _ = script.started(_hourly(), 12, True, None, per_variable=True, shrink=1.0)
    assert tuple(model.shortcut.linear.weight.shape) == (2, 12, 96)  # (N, H, L)
    row = script.variants(_hourly(), 12, None, ["per variable", "per variable, shrunk 100"])
    assert len(row) == 4
    mse = [float(cell.split(" / ")[0]) for cell in row[2:]]
    alone = script.started(_hourly(), 12, True, None, per_variable=True)[1]
    assert mse[0] == pytest.approx(script.scores(alone, dm)[0], abs=5e-5)


def test_trim_variants_report_the_window_variables_they_leave_out(script):
    """A sentinel in one training row of variable 0: ``trim 10`` leaves out the windows of that
    variable that hold it (at most L + H of them), and scores the start refitted without them."""
    frame = _hourly()
    frame.iloc[300, 0] = -9999.0
    row = script.variants(frame, 12, None, [next(iter(script.VARIANTS)), "trim 10"])
    plain, trimmed = row[2:]
    left_out = int(trimmed.split("(")[1].split()[0])
    assert 0 < left_out <= 96 + 12 and "left out" not in plain
    dm, model, fitted = script.started(frame, 12, True, None, trim=10.0)
    assert fitted["trimmed"] == left_out
    assert float(trimmed.split(" / ")[0]) == pytest.approx(script.scores(model, dm)[0], abs=5e-5)
    assert float(trimmed.split(" / ")[0]) < float(plain.split(" / ")[0])
