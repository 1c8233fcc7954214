"""The ablation table compares every mixer with identity seed by seed."""

import re

import pandas as pd
import pytest

from tsattn.train.ablation import (
    ablatable,
    paired_difference,
    run_ablation,
    summarize,
    write_table,
)
from tsattn.train.config import RunConfig


def _runs(rows):
    frame = pd.DataFrame(rows, columns=["mixer", "seed", "test_mse"])
    frame["test_mae"] = frame["test_mse"]
    frame["params"], frame["sec_per_epoch"] = 10, 1.0
    return frame


def test_paired_difference_is_per_seed_and_finds_a_consistent_gain():
    # seeds differ a lot from each other, but se is always 0.010 below identity of its seed
    runs = _runs([("identity", 0, 0.40), ("identity", 1, 0.50), ("identity", 2, 0.45),
                  ("se", 0, 0.390), ("se", 1, 0.491), ("se", 2, 0.439),
                  ("eca", 0, 0.41), ("eca", 1, 0.48), ("eca", 2, 0.46)])  # fmt: skip
    paired = paired_difference(runs)
    assert abs(paired.loc["se", "d_mse_mean"] + 0.010) < 1e-9
    assert paired.loc["se", "verdict"] == "better"
    assert paired.loc["eca", "verdict"] == "within noise"
    assert paired.loc["identity", "verdict"] == "reference"


def test_paired_difference_says_worse_and_one_seed():
    runs = _runs([("identity", 0, 0.40), ("identity", 1, 0.50), ("cbam", 0, 0.45),
                  ("cbam", 1, 0.551), ("sk", 0, 0.30)])  # fmt: skip
    paired = paired_difference(runs)
    assert paired.loc["cbam", "verdict"] == "worse"
    assert paired.loc["sk", "verdict"] == "one seed"


def test_ablation_markdown_states_which_mixers_beat_identity(tmp_path):
    runs = _runs([("identity", 0, 0.40), ("identity", 1, 0.50), ("identity", 2, 0.45),
                  ("se", 0, 0.390), ("se", 1, 0.491), ("se", 2, 0.439)])  # fmt: skip
    write_table(summarize(runs, order=["identity", "se"]), tmp_path, title="t")
    text = (tmp_path / "ablation.md").read_text()
    assert "| se | 3 |" in text and "-0.0100 +- 0.0010 | better |" in text
    assert "better than identity: se." in text


def test_ablation_markdown_gives_no_spread_for_a_single_run(tmp_path):
    runs = _runs([("identity", 0, 0.40), ("identity", 1, 0.50), ("sk", 0, 0.30)])
    write_table(summarize(runs, order=["identity", "sk"]), tmp_path, title="t")
    lines = (tmp_path / "ablation.md").read_text().splitlines()
    rows = {line.split("|")[1].strip(): line for line in lines if line.startswith("| ")}
    assert "| 0.3000 | 0.3000 |" in rows["sk"]  # one run: a mean, no made-up spread
    assert "0.4500 +- 0.0707" in rows["identity"]


def test_ablation_markdown_names_the_mixers_one_seed_cannot_judge(tmp_path):
    # sk has one paired seed: no spread, so no verdict; the summary line must not call it beaten
    runs = _runs([("identity", 0, 0.40), ("identity", 1, 0.50), ("se", 0, 0.390),
                  ("se", 1, 0.491), ("sk", 0, 0.30)])  # fmt: skip
    write_table(summarize(runs, order=["identity", "se", "sk"]), tmp_path, title="t")
    text = (tmp_path / "ablation.md").read_text()
    assert "Not judged (one paired seed, no spread to test against): sk." in text


def test_ablation_markdown_with_one_seed_only_judges_nothing(tmp_path):
    runs = _runs([("identity", 0, 0.40), ("se", 0, 0.39)])
    write_table(summarize(runs, order=["identity", "se"]), tmp_path, title="t")
    text = (tmp_path / "ablation.md").read_text()
    assert "better than identity: none" not in text
    assert "Not judged (one paired seed, no spread to test against): se." in text


def test_ablation_markdown_says_how_often_several_tests_err_by_chance(tmp_path):
    # two mixers judged (se, eca), one not (sk): the bound counts the judged ones only
    runs = _runs([("identity", 0, 0.40), ("identity", 1, 0.50), ("se", 0, 0.390),
                  ("se", 1, 0.491), ("eca", 0, 0.41), ("eca", 1, 0.49),
                  ("sk", 0, 0.30)])  # fmt: skip
    write_table(summarize(runs, order=["identity", "se", "eca", "sk"]), tmp_path, title="t")
    text = (tmp_path / "ablation.md").read_text()
    assert "2 mixers tested, each at 95 %" in text and "in up to 10 % of such tables" in text


def test_ablation_markdown_gives_no_chance_bound_for_a_single_test(tmp_path):
    runs = _runs([("identity", 0, 0.40), ("identity", 1, 0.50), ("se", 0, 0.390),
                  ("se", 1, 0.491)])  # fmt: skip
    write_table(summarize(runs, order=["identity", "se"]), tmp_path, title="t")
    assert "mixers tested" not in (tmp_path / "ablation.md").read_text()


def test_a_fusion_ablation_is_paired_with_skip(tmp_path):
    runs = _runs([("skip", 0, 0.40), ("skip", 1, 0.50), ("fpn", 0, 0.41), ("fpn", 1, 0.511),
                  ("asff", 0, 0.39), ("asff", 1, 0.52)])  # fmt: skip
    runs = runs.rename(columns={"mixer": "fusion"})
    table = summarize(runs, order=["skip", "fpn", "asff"], by="fusion", reference="skip")
    assert table.index.name == "fusion"
    assert table.loc["skip", "verdict"] == "reference" and table.loc["fpn", "verdict"] == "worse"
    write_table(table, tmp_path, title="t")
    text = (tmp_path / "ablation.md").read_text()
    assert text.startswith("Fusion ablation: t")
    assert "| fusion | runs |" in text and "MSE - skip (paired by seed) | vs skip |" in text
    assert "better than skip: none." in text and "2 fusions tested" in text
    assert "identity" not in text and "mixer" not in text


def test_a_table_without_its_reference_has_no_paired_columns(tmp_path):
    runs = _runs([("se", 0, 0.40), ("se", 1, 0.50), ("eca", 0, 0.41)])
    write_table(summarize(runs, order=["se", "eca"]), tmp_path, title="t")
    text = (tmp_path / "ablation.md").read_text()
    assert "| mixer | runs | MSE | MAE | params | s/epoch |\n" in text
    assert "paired" not in text and "better than" not in text


def test_the_table_counts_runs_that_tested_the_closed_form_start(tmp_path):
    runs = _runs([("identity", 0, 0.40), ("identity", 1, 0.50), ("se", 0, 0.40),
                  ("se", 1, 0.49)])  # fmt: skip
    runs["kept_start"] = [True, False, True, None]  # None: a run from before it was recorded
    table = summarize(runs, order=["identity", "se"])
    assert list(table["kept_start"]) == [1, 1]
    write_table(table, tmp_path, title="t")
    text = (tmp_path / "ablation.md").read_text()
    assert "In 2 of 4 runs the closed-form start validated lower" in text
    assert "do not depend on the mixer." in text


def test_no_start_note_when_every_run_tested_its_network(tmp_path):
    runs = _runs([("identity", 0, 0.40), ("identity", 1, 0.50), ("se", 0, 0.39)])
    runs["kept_start"] = False
    write_table(summarize(runs, order=["identity", "se"]), tmp_path, title="t")
    assert "closed-form start" not in (tmp_path / "ablation.md").read_text()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"by": "lr"}, "by='lr' cannot be ablated: choose from mixer, fusion."),
        ({"by": "fusion"}, "fusions ['se'] are not valid: choose from skip,"),
    ],
)
def test_run_ablation_names_a_bad_switch_or_value(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        run_ablation(RunConfig(), ["se"], 1, tmp_path, **kwargs)
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_ablatable_switches_start_with_their_control():
    switches = ablatable()
    assert switches["mixer"][0] == "identity" and switches["fusion"][0] == "skip"
    assert set(switches["fusion"]) >= {"fpn", "panet", "asff"}
