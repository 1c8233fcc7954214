"""``experiments/selection_holdout.py``: fits select on the first validation windows only and
are scored on later ones whose targets they never saw."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tests.experiment_scripts import load_experiment
from tsattn.api import FORECAST_DEFAULTS


@pytest.fixture(scope="module")
def script():
    return load_experiment("selection_holdout")


def test_scored_windows_start_after_the_selection_targets_end(script):
    select, scored = script.split_validation(2785, 96, 0.5)
    assert (select.start, select.stop) == (0, 1392)
    # window i's targets are rows i + L .. i + L + H - 1: the first scored window's start one
    # row after the last selection window's end
    assert scored.start == select.stop - 1 + 96
    assert scored.stop == 2785


@pytest.mark.parametrize("fraction", [0.0, 1.0])
def test_selection_fraction_must_leave_both_parts(script, fraction):
    with pytest.raises(ValueError, match="--select-fraction"):
        script.split_validation(100, 10, fraction)


def test_a_cell_selects_on_the_first_windows_and_scores_the_later_ones(
    script, data_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv("TSATTN_DATA_DIR", str(data_dir))
    candidate = {"name": "tiny", "set": ["train.max_steps=2", "model.conv_channels=4"]}
    args = SimpleNamespace(out=str(tmp_path), runs_dir=None, select_fraction=0.5)
    row = script.run_cell(candidate, "ETTh1", 24, 0, args)
    assert row["select_windows"] == 2857 // 2  # ETTh1's tslib validation windows at H=24
    assert row["select_windows"] + 23 + row["scored_windows"] == 2857
    assert row["scored_mse"] > 0 and row["select_mse"] > 0
    # the recipe's closed-form start, scored on the same windows (two steps barely move it)
    assert row["start_scored_mse"] == pytest.approx(row["scored_mse"], rel=0.05)
    assert row["start_select_mse"] == pytest.approx(row["select_mse"], rel=0.05)
    # what decided keep_start: the trained model's and the start's loss on each of the parts
    assert sorted(row["parts"]) == sorted(
        f"{who}_val_loss_part{i}" for who in ("best", "start") for i in range(1, 5)
    )
    saved = script.cell_path(tmp_path, "tiny", "ETTh1", 24, 0)
    assert json.loads(saved.read_text()) == row
    assert not (tmp_path / "runs" / "tiny" / saved.stem).exists()  # the run folder is removed
    monkeypatch.setattr(script, "fit_config", lambda *a, **k: pytest.fail("trained again"))
    assert script.run_cell(candidate, "ETTh1", 24, 0, args) == row
    text = script.summary(script.load_rows(tmp_path), "tiny", 0.5)
    assert "| tiny | " in text and "1.0000" in text and "| tiny, closed-form start | " in text
    scored, selected = text.split("MSE of the selection windows themselves")
    assert f"| tiny | {row['scored_mse']:.4f} | 1.0000 |" in scored
    assert f"| tiny | {row['select_mse']:.4f} | 1.0000 |" in selected
    assert f"| tiny, closed-form start | {row['start_select_mse']:.4f} |" in selected


def test_summary_only_rewrites_the_table_from_the_cells(script, tmp_path):
    row = {"candidate": "a", "dataset": "ETTh1", "horizon": 96, "seed": 0, "scored_mse": 0.5,
           "select_mse": 0.4, "start_scored_mse": 0.6, "start_select_mse": 0.45}  # fmt: skip
    for name, scale in (("a", 1.0), ("b", 0.9)):
        path = script.cell_path(tmp_path, name, "ETTh1", 96, 0)
        path.parent.mkdir(parents=True)
        cell = {**row, "candidate": name, "scored_mse": 0.5 * scale, "select_mse": 0.4 / scale}
        path.write_text(json.dumps(cell))
    script.main(["--summary-only", "--out", str(tmp_path), "--reference", "a"])
    scored, selected = (tmp_path / "summary.md").read_text().split("selection windows themselves")
    # b: 10 % lower on the later windows, 11 % higher on the ones it selected on
    assert "| b | 0.4500 | 0.9000 |" in scored and "| b | 0.4444 | 1.1111 |" in selected
    with pytest.raises(SystemExit):
        script.main(["--out", str(tmp_path)])  # running cells needs --candidates


def test_forecast_defaults_candidate_is_what_forecast_runs():
    """The search's reference copies ``FORECAST_DEFAULTS`` by hand (a YAML file cannot import
    it); if the defaults change, its committed verdict no longer speaks of them."""
    path = Path(__file__).parents[1] / "experiments/candidates/forecast_defaults.yaml"
    candidates = yaml.safe_load(path.read_text())["candidates"]
    reference = next(c["set"] for c in candidates if c["name"] == "forecast-defaults")
    options = {key.split(".", 1)[1]: value for key, value in reference.items()}
    # protocol and seq_len stay the benchmark's (tslib, L = 96) so that test windows stay unread
    expected = {k: v for k, v in FORECAST_DEFAULTS.items() if k not in ("protocol", "seq_len")}
    assert options == expected
    assert FORECAST_DEFAULTS["seq_len"] == 96
