"""Summaries of ``experiments/benchmark.py`` (the benchmark itself is too long for tests)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.experiment_scripts import ROOT, load_experiment


@pytest.fixture(scope="module")
def bench_script():
    return load_experiment("benchmark")


def test_single_step_rows_follow_the_horizons_in_numeric_order(bench_script):
    # cells load in file-name order: h12 < h24 < h3 < h6
    results = pd.DataFrame(
        dict(candidate="mtgnn-paper", dataset="exchange_rate", horizon=h, seed=0,
             test_rse=0.01 * h, test_corr=0.9, test_windows=1518, epochs=30,
             sec_per_epoch=1.0, params=1, device="cpu")
        for h in (12, 24, 3, 6)
    )  # fmt: skip
    table, lines = bench_script.summarize_single_step(results)
    assert list(table.horizon) == [3, 6, 12, 24]
    assert [line.split("|")[2].strip() for line in lines[2:]] == ["3", "6", "12", "24"]
    assert "MTGNN 0.0194/0.9786" in lines[2]  # the published anchors stay with their horizon
    assert lines[2].split("|")[3].strip() == "0.0300"


def test_single_step_rows_name_their_candidate_when_there_are_several(bench_script):
    results = pd.DataFrame(
        dict(candidate=name, dataset="exchange_rate", horizon=3, seed=0, test_rse=rse,
             test_corr=0.9, test_windows=1518, epochs=30, sec_per_epoch=1.0, params=1,
             device="cpu")
        for name, rse in (("mtgnn-paper", 0.02), ("mtgnn-paper-b4", 0.01))
    )  # fmt: skip
    _, lines = bench_script.summarize_single_step(results)
    names = [line.split("|")[1].strip() for line in lines[2:]]
    assert names == ["exchange_rate (mtgnn-paper)", "exchange_rate (mtgnn-paper-b4)"]
    assert lines[3].split("|")[3].strip() == "0.0100"
    _, alone = bench_script.summarize_single_step(results.iloc[:1])
    assert alone[2].split("|")[1].strip() == "exchange_rate"


def test_a_row_whose_seeds_ran_on_two_devices_says_so(bench_script):
    """Seconds per epoch of a CPU seed and a CUDA seed are not averaged into one number."""
    results = pd.DataFrame(
        dict(candidate="default", dataset="ETTm1", horizon=h, seed=seed, test_mse=0.3,
             test_mae=0.3, val_mse=0.4, test_windows=11425, epochs=10, sec_per_epoch=sec,
             params=1, device=device)
        for h in (96, 192, 336, 720)
        for seed, device, sec in ((0, "cpu", 40.0), (1, "cuda", 20.0), (2, "cuda", 30.0))
    )  # fmt: skip
    _, lines = bench_script.summarize_test(results)
    header = [c.strip() for c in lines[0].split("|")]
    row = dict(zip(header, (c.strip() for c in lines[2].split("|")), strict=True))
    assert row["device"] == "cpu 1 · cuda 2"
    assert row["s/epoch"] == "cpu 40.0 · cuda 25.0"
    avg = dict(zip(header, (c.strip() for c in lines[-1].split("|")), strict=True))
    assert avg["H"] == "avg" and avg["device"] == "cpu 1 · cuda 2"
    alone = bench_script.summarize_test(results[results.device == "cpu"])[1]
    assert "| cpu | 40.0 |" in alone[2]


def test_a_cell_belongs_to_the_candidate_folder_it_lies_in(bench_script, tmp_path):
    """Keeping an old recipe's cells under a new name is moving their folder."""
    for folder in ("default", "recipe-v2"):
        (tmp_path / "cells" / folder).mkdir(parents=True)
        (tmp_path / "cells" / folder / "ETTh1-h96-seed0.json").write_text(
            '{"candidate": "default", "dataset": "ETTh1", "horizon": 96, "seed": 0}'
        )
    results = bench_script.load_results(tmp_path)
    assert sorted(results.candidate) == ["default", "recipe-v2"]


def test_a_search_summarised_as_a_benchmark_says_what_to_add(bench_script, tmp_path):
    (tmp_path / "cells" / "default").mkdir(parents=True)
    (tmp_path / "cells" / "default" / "ETTh1-h96-seed0.json").write_text(
        '{"dataset": "ETTh1", "horizon": 96, "seed": 0, "protocol": "tslib", "val_mse": 0.69,'
        ' "test_mse": null, "test_windows": null, "model": {}, "train": {}, "overrides": []}'
    )
    with pytest.raises(SystemExit, match=r"1 of the 1 cells .* no test scores.*--validation-only"):
        bench_script.write_summary(tmp_path, False, "Benchmark")


def _ablation_cells(root, model_of):
    """Cells of two seeds per candidate on one dataset and horizon; ``model_of`` gives each
    candidate's resolved model settings."""
    for name, model in model_of.items():
        (root / "cells" / name).mkdir(parents=True)
        for seed in (0, 1):
            cell = dict(dataset="ETTh1", horizon=96, seed=seed, protocol="tslib", val_mse=0.7,
                        test_mse=0.40 + 0.01 * seed + model.get("shift", 0.0), test_mae=0.4,
                        test_windows=2785, epochs=5, sec_per_epoch=1.0, params=10,
                        device="cpu", model=model, train={}, overrides=[])  # fmt: skip
            (root / "cells" / name / f"ETTh1-h96-seed{seed}.json").write_text(json.dumps(cell))


def test_candidates_that_differ_by_fusion_get_a_fusion_table(bench_script, tmp_path):
    _ablation_cells(tmp_path, {
        "default": {"mixer": "identity", "fusion": "skip"},
        "fpn": {"mixer": "identity", "fusion": "fpn", "shift": 0.01},
    })  # fmt: skip
    bench_script.write_summary(tmp_path, False, "Benchmark")
    text = (tmp_path / "fusion_ablation_etth1_h96" / "ablation.md").read_text()
    assert text.startswith("Fusion ablation: ETTh1, L=96, H=96")
    assert "| fpn | 2 |" in text and "+0.0100 +- 0.0000 | worse |" in text
    assert not (tmp_path / "ablation_etth1_h96").exists()  # every mixer is identity


def test_no_ablation_table_when_candidates_vary_more_than_the_switch(bench_script, tmp_path):
    # two candidates share the mixer se (one with another fusion): se's runs would mix them
    _ablation_cells(tmp_path, {
        "default": {"mixer": "identity", "fusion": "skip"},
        "se": {"mixer": "se", "fusion": "skip"},
        "se-fpn": {"mixer": "se", "fusion": "fpn"},
    })  # fmt: skip
    bench_script.write_summary(tmp_path, False, "Benchmark")
    assert not list(tmp_path.glob("*ablation_*"))
    assert (tmp_path / "benchmark.md").is_file()


def test_a_continued_run_keeps_the_title_of_its_summary(bench_script, tmp_path):
    assert bench_script.summary_title(tmp_path, True) == "Recipe search, validation windows only"
    assert bench_script.summary_title(tmp_path, False) == "Benchmark"
    (tmp_path / "search.md").write_text("Dropout search (seed 0)\n\n| candidate |\n")
    assert bench_script.summary_title(tmp_path, True) == "Dropout search (seed 0)"
    assert bench_script.summary_title(tmp_path, False) == "Benchmark"


@pytest.mark.parametrize(
    "path", sorted((ROOT / "experiments/candidates").glob("*.yaml")), ids=lambda p: p.name
)
def test_every_committed_candidate_is_a_valid_run(bench_script, path):
    """A misspelt setting in a candidates file fails here, not hours into a search."""
    from tsattn.train.config import RunConfig

    args = argparse.Namespace(candidates=str(path), only=None, datasets="ETTh1", horizons="96",
                              seeds=1, out="unused", overrides=[], threads=1, runs_dir=None,
                              accelerator="cpu", validation_only=True)  # fmt: skip
    cells = bench_script.plan_cells(args)
    assert {cell["candidate"] for cell in cells} == {
        c["name"] for c in yaml.safe_load(path.read_text())["candidates"]
    }
    for cell in cells:
        RunConfig().with_overrides(cell["overrides"])  # raises on an unknown or invalid setting


def test_every_row_shows_the_naive_forecast_beside_tsattn(bench_script):
    """The last value repeated is the column a forecast must beat; the average row averages
    the four horizons' scores, and a horizon without one leaves the average empty."""
    results = pd.DataFrame(
        dict(candidate="default", dataset="exchange_rate", horizon=h, seed=0, protocol="tslib",
             test_mse=0.1, test_mae=0.2, val_mse=0.3, test_windows=1422, epochs=5,
             sec_per_epoch=1.0, params=1, device="cpu")
        for h in (96, 192, 336, 720)
    )  # fmt: skip
    asked = []

    def naive(dataset, protocol, horizon, seq_len):
        asked.append((dataset, protocol, horizon, seq_len))
        return horizon / 1000, horizon / 100

    table, lines = bench_script.summarize_test(results, naive)
    header = [c.strip() for c in lines[0].split("|")]
    rows = [
        dict(zip(header, (c.strip() for c in line.split("|")), strict=True)) for line in lines[2:]
    ]
    assert sorted(asked) == sorted(("exchange_rate", "tslib", h, 96) for h in (96, 192, 336, 720))
    assert [r["last value MSE/MAE"] for r in rows] == [
        "0.096/0.960",
        "0.192/1.920",
        "0.336/3.360",
        "0.720/7.200",
        "0.336/3.360",
    ]
    assert table.last_value_mse.iloc[-1] == pytest.approx(0.336)
    _, partial = bench_script.summarize_test(
        results, lambda d, p, h, lookback: None if h == 720 else (0.1, 0.2)
    )
    assert "| 0.100/0.200 |" in partial[2] and "| cpu | 1.0 |  |" in partial[-1]
    _, without = bench_script.summarize_test(results)
    assert "| cpu | 1.0 |  |" in without[2]


def test_the_naive_column_scores_the_test_windows_of_the_protocol(
    bench_script, data_dir, monkeypatch
):
    """ETTh1, tslib protocol: the last input row against every target row of the 2785 test
    windows at H=96, in numpy from the CSV, scaled on the train rows (PROTOCOLS.md)."""
    monkeypatch.setenv("TSATTN_DATA_DIR", str(data_dir))
    bench_script.last_value_scores.cache_clear()
    mse, mae = bench_script.last_value_scores("ETTh1", "tslib", 96)
    raw = pd.read_csv(data_dir / "ETTh1.csv").iloc[:, 1:].to_numpy(np.float64)
    train = raw[:8640]
    scaled = (raw - train.mean(0)) / train.std(0)
    test = scaled[11520 - 96 : 14400]
    starts = range(len(test) - 96 - 96 + 1)
    assert len(starts) == 2785
    err = np.stack([test[s + 96 : s + 192] - test[s + 95] for s in starts])
    assert mse == pytest.approx(float((err**2).mean()), rel=1e-5)
    assert mae == pytest.approx(float(np.abs(err).mean()), rel=1e-5)
    assert bench_script.last_value_scores("no_such_file.csv", "tslib", 96) is None
