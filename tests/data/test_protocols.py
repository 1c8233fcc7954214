"""Split borders and window counts of the tslib, mtgnn and holdout protocols (PROTOCOLS.md)."""

from __future__ import annotations

import pytest

from tsattn.data import TimeSeriesDataModule, plan_splits

ETTH = {96: (8449, 2785, 2785), 192: (8353, 2689, 2689), 336: (8209, 2545, 2545),
        720: (7825, 2161, 2161)}  # fmt: skip
ETTM = {96: (34369, 11425, 11425), 192: (34273, 11329, 11329), 336: (34129, 11185, 11185),
        720: (33745, 10801, 10801)}  # fmt: skip
ELECTRICITY = {96: (18221, 2537, 5165), 192: (18125, 2441, 5069), 336: (17981, 2297, 4925),
               720: (17597, 1913, 4541)}  # fmt: skip
EXCHANGE = {3: (4382, 1518, 1518), 6: (4379, 1518, 1518), 12: (4373, 1518, 1518),
            24: (4361, 1518, 1518)}  # fmt: skip


def _counts(plan) -> tuple[int, int, int]:
    return tuple(len(plan.starts[s]) for s in ("train", "val", "test"))


@pytest.mark.parametrize("horizon", [96, 192, 336, 720])
def test_tslib_window_counts_match_protocol_tables(horizon: int) -> None:
    assert _counts(plan_splits(17420, 96, horizon, "tslib", split="ett_hour")) == ETTH[horizon]
    assert _counts(plan_splits(69680, 96, horizon, "tslib", split="ett_minute")) == ETTM[horizon]
    assert _counts(plan_splits(26304, 96, horizon, "tslib", split="ratio")) == ELECTRICITY[horizon]


@pytest.mark.parametrize("horizon", [3, 6, 12, 24])
def test_mtgnn_window_counts_match_protocol_table(horizon: int) -> None:
    assert _counts(plan_splits(7588, 168, horizon, "mtgnn")) == EXCHANGE[horizon]


def test_tslib_ett_borders_and_first_targets() -> None:
    plan = plan_splits(17420, 96, 96, "tslib", split="ett_hour")
    assert plan.slices == {"train": (0, 8640), "val": (8544, 11520), "test": (11424, 14400)}
    assert plan.train_rows == (0, 8640)
    # the first val/test target row is the split's first row
    assert plan.starts["val"][0] + 96 == 8640
    assert plan.starts["test"][0] + 96 == 11520
    assert plan.starts["test"][-1] + 96 + 96 == 14400  # last target row is row 14399
    minute = plan_splits(69680, 96, 96, "tslib", split="ett_minute")
    assert minute.slices["test"] == (46080 - 96, 57600)


def test_mtgnn_targets_and_inputs_follow_the_reference_indexing() -> None:
    n, P, h = 7588, 168, 3
    plan = plan_splits(n, P, h, "mtgnn")
    g = plan.geometry
    assert (g.input_length, g.gap, g.target_length) == (P, h - 1, 1)
    target = lambda s: s + g.input_length + g.gap  # noqa: E731
    train, val, test = (plan.starts[k] for k in ("train", "val", "test"))
    assert target(train[0]) == P + h - 1 and target(train[-1]) == int(0.6 * n) - 1
    assert target(val[0]) == int(0.6 * n) and target(val[-1]) == int(0.8 * n) - 1
    assert target(test[0]) == int(0.8 * n) and target(test[-1]) == n - 1
    # input rows [i-h-P+1, i-h]: the last input row is h steps before the target
    s = test[0]
    assert target(s) - (s + P - 1) == h
    assert plan.train_rows == (0, int(0.6 * n))


def test_holdout_fractions_and_disabled_splits() -> None:
    plan = plan_splits(1000, 24, 12, "holdout", val_fraction=0.1, test_fraction=0.2)
    assert plan.slices == {"train": (0, 700), "val": (676, 800), "test": (776, 1000)}
    assert _counts(plan) == (700 - 36 + 1, 100 - 12 + 1, 200 - 12 + 1)
    none = plan_splits(1000, 24, 12, "holdout", val_fraction=0.0, test_fraction=0.0)
    assert _counts(none) == (1000 - 36 + 1, 0, 0)


def test_too_short_split_names_the_split_and_rows_needed() -> None:
    with pytest.raises(
        ValueError,
        match=r"the val split \(rows 8544\.\.11520, 2976 rows\) "
        r"holds no window of seq_len=96 and horizon=3000.*needs 3096 rows, 120 more",
    ):
        plan_splits(17420, 96, 3000, "tslib", split="ett_hour")
    with pytest.raises(ValueError, match="the ett_hour borders need 14400 rows, the data has 1000"):
        plan_splits(1000, 96, 96, "tslib", split="ett_hour")
    with pytest.raises(
        ValueError, match=r"protocol must be one of \['tslib', 'mtgnn', 'holdout'\]"
    ):
        plan_splits(1000, 96, 96, "informer")
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\), got 1.5"):
        plan_splits(1000, 9, 9, "holdout", val_fraction=1.5)


@pytest.mark.parametrize("horizon", [96, 192, 336, 720])
def test_real_ett_files_give_table_counts(data_dir, horizon: int) -> None:
    for name, table in (("ETTh1", ETTH), ("ETTh2", ETTH), ("ETTm1", ETTM)):
        dm = TimeSeriesDataModule(name, 96, horizon, root=data_dir)
        dm.setup()
        assert tuple(dm.window_counts.values()) == table[horizon], name


@pytest.mark.parametrize("horizon", [3, 6, 12, 24])
def test_real_exchange_rate_gives_table_counts(data_dir, horizon: int) -> None:
    dm = TimeSeriesDataModule("exchange_rate", 168, horizon, root=data_dir)
    dm.setup()
    assert dm.protocol == "mtgnn" and dm.output_length == 1
    assert tuple(dm.window_counts.values()) == EXCHANGE[horizon]
