"""Timing helpers of ``experiments/bench_speed.py`` (the benchmark itself is too long for tests)."""

from __future__ import annotations

import pytest
import torch

from tests.experiment_scripts import load_experiment


@pytest.fixture(scope="module")
def bench():
    return load_experiment("bench_speed")


def test_round_robin_warms_up_once_then_alternates_the_cases(bench):
    calls: list[str] = []
    cases = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    samples = bench.time_round_robin_samples(cases, repeats=3, device=torch.device("cpu"))
    assert calls == ["a", "b"] * 4  # one warm-up round, then 3 timed rounds
    assert {name: len(times) for name, times in samples.items()} == {"a": 3, "b": 3}
    assert all(t >= 0 for times in samples.values() for t in times)


def test_primed_cases_are_timed_after_one_untimed_call_of_their_own(bench):
    calls: list[str] = []
    cases = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    samples = bench.time_round_robin_samples(cases, repeats=2, device=torch.device("cpu"),
                                             prime=True)  # fmt: skip
    assert calls == ["a", "b"] + ["a", "a", "b", "b"] * 2
    assert {name: len(times) for name, times in samples.items()} == {"a": 2, "b": 2}


def test_paired_ratios_divide_round_by_round(bench):
    samples = {"textbook": [4.0, 9.0, 3.0], "fused": [2.0, 3.0, 3.0]}
    assert bench.paired_ratios(samples, "textbook", "fused") == [2.0, 3.0, 1.0]


def test_paired_ratios_need_the_same_number_of_rounds(bench):
    with pytest.raises(ValueError):
        bench.paired_ratios({"textbook": [1.0, 2.0], "fused": [1.0]}, "textbook", "fused")


def test_model_step_feeds_phases_to_a_model_with_a_cycle(bench):
    """The recipe's model has a learned daily cycle, which needs each window's phase."""
    config = bench.make_config(dict(num_nodes=3, seq_len=24, horizon=6), cycle_length=24,
                               channel_independent=True, graph=False, linear_shortcut="linear",
                               conv_channels=4, residual_channels=4, skip_channels=4,
                               end_channels=8, layers=1)  # fmt: skip
    torch.manual_seed(0)
    step, _ = bench.model_step(config, batch=4, device=torch.device("cpu"))
    cycle = step.model.cycle.values  # (24, 3)
    before = cycle.detach().clone()
    step()
    assert not torch.equal(cycle, before)  # the cycle was read at the phases and trained
