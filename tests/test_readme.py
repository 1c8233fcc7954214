"""README.md stays true: its test command is the one CI runs, its tables are the results files."""

from __future__ import annotations

import re
from pathlib import Path

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


def test_readme_result_tables_match_experiments_results():
    module = load_experiment("render_readme")
    readme = (ROOT / "README.md").read_text()
    assert "<!-- BEGIN results/" in readme
    assert module.render(readme, ROOT / "experiments" / "results") == readme, (
        "README tables are stale: run `python experiments/render_readme.py`"
    )
