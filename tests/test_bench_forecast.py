"""``experiments/bench_forecast.py``: the timed user session and its table."""

from __future__ import annotations

import pytest

from tests.experiment_scripts import load_experiment


@pytest.fixture(scope="module")
def bench():
    return load_experiment("bench_forecast")


def test_worker_times_each_part_of_a_real_etth1_session(bench):
    run = bench.worker(4, max_steps=2, seq_len=32)
    assert (run["rows"], run["variables"]) == (17420, 7)
    for part in bench.COLUMNS:
        assert run[part] >= 0.0
    assert run["forecast"] > 0.0 and run["forecast_level"] > 0.0


def test_render_gives_one_row_per_session_and_the_medians(bench):
    runs = [
        {"import": 3.0, "load": 0.5, "forecast": 14.0, "forecast_level": 16.0},
        {"import": 2.0, "load": 0.3, "forecast": 12.0, "forecast_level": 20.0},
        {"import": 4.0, "load": 0.4, "forecast": 13.0, "forecast_level": 18.0},
    ]
    for run in runs:
        run.update(rows=17420, variables=7)
    text = bench.render(runs, 24, "a test")
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + 3 + 1  # header, sessions, median
    assert rows[1] == "| 0 | 3.0 | 0.5 | 14.0 | 16.0 | 33.5 |"
    assert rows[-1] == "| median | **3.0** | **0.4** | **13.0** | **18.0** | |"
    assert "ETTh1 (17420 x 7), H = 24" in text
