"""Summaries of ``experiments/benchmark.py`` (the benchmark itself is too long for tests)."""

from __future__ import annotations

import argparse

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
