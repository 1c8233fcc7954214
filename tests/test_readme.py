"""README.md stays true: its test command is the one CI runs, its tables are the results files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.experiment_scripts import load_experiment

ROOT = Path(__file__).resolve().parents[1]


def _setup_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Install and test", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None, "README has no bash block under 'Install and test'"
    return [line for line in block[1].splitlines() if line.strip()]


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    install, test = _setup_commands()
    assert install == 'pip install -e ".[dev]"'
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == test


@pytest.mark.parametrize("name", ["README.md", "experiments/README.md"])
def test_result_tables_match_experiments_results(name):
    module = load_experiment("render_readme")
    assert name in module.DOCUMENTS
    document = (ROOT / name).read_text()
    assert "<!-- BEGIN results/" in document
    assert module.render(document, ROOT / "experiments" / "results") == document, (
        f"{name} tables are stale: run `python experiments/render_readme.py`"
    )


def test_readme_links_to_the_research_log_and_back():
    readme = (ROOT / "README.md").read_text()
    log = (ROOT / "experiments" / "README.md").read_text()
    assert "](experiments/README.md)" in readme
    assert "](../README.md#long-horizon-recipe-and-benchmark)" in log
    assert "### Long-horizon recipe and benchmark" in readme  # the anchor the log links to
    assert "## How each benchmark row was scored" in log  # the anchor README links to
