"""The tsattn command waits passively in OpenMP unless the user chose a wait policy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tsattn import cli

ROOT = Path(__file__).resolve().parents[1]


def _policy_after_import(env_policy: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = str(ROOT)
    if env_policy is not None:
        env["OMP_WAIT_POLICY"] = env_policy
    code = "import os, tsattn.cli; print(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def test_cli_sets_passive_wait_policy_unless_the_user_chose_one():
    assert _policy_after_import(None) == "PASSIVE"
    assert _policy_after_import("ACTIVE") == "ACTIVE"


def test_computing_commands_restart_once_with_the_policy_in_effect(monkeypatch):
    monkeypatch.setattr(cli, "_USER_WAIT_POLICY", False)
    monkeypatch.setattr(sys, "argv", ["tsattn", "fit", "--data", "ETTh1"])
    command = cli._passive_restart("fit", None)
    if os.name != "posix":
        pytest.skip("restarts only where os.execv replaces the process")
    assert command == [sys.executable, "-m", "tsattn.cli", "fit", "--data", "ETTh1"]
    assert cli._passive_restart("datasets", None) is None  # nothing to compute
    assert cli._passive_restart("fit", ["fit"]) is None  # called from Python: no restart
    monkeypatch.setattr(cli, "_USER_WAIT_POLICY", True)  # the user's choice, or the restart
    assert cli._passive_restart("fit", None) is None
