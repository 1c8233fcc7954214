"""The tsattn command waits passively in OpenMP when it starts on a shared machine, unless the
user chose a wait policy; on a quiet machine its threads keep spinning."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tsattn import cli
from tsattn.train import oversubscription

ROOT = Path(__file__).resolve().parents[1]
posix_only = pytest.mark.skipif(os.name != "posix", reason="restarts only where execv does")


def test_importing_the_cli_leaves_the_policy_alone():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = str(ROOT)
    code = "import os, tsattn.cli; print(os.environ.get('OMP_WAIT_POLICY', 'unset'))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    )
    assert out.stdout.strip() == "unset"


@pytest.fixture
def command_line(monkeypatch):
    monkeypatch.setattr(cli, "_USER_WAIT_POLICY", False)
    monkeypatch.setattr(sys, "argv", ["tsattn", "fit", "--data", "ETTh1"])


def _shared(monkeypatch, shared: bool) -> list:
    asked = []
    monkeypatch.setattr(oversubscription, "cores_shared", lambda t=None: asked.append(t) or shared)
    return asked


@posix_only
def test_a_computing_command_on_a_shared_machine_restarts_once_waiting_passively(
    command_line, monkeypatch
):
    _shared(monkeypatch, True)
    assert cli._passive_restart("fit", None) == [
        sys.executable, "-m", "tsattn.cli", "fit", "--data", "ETTh1",
    ]  # fmt: skip
    assert cli._passive_restart("datasets", None) is None  # nothing to compute


@posix_only
def test_main_sets_the_passive_policy_for_the_restarted_process(command_line, monkeypatch):
    _shared(monkeypatch, True)
    monkeypatch.setenv("OMP_WAIT_POLICY", "unset")  # recorded, so the test restores it
    monkeypatch.delenv("OMP_WAIT_POLICY")
    executed = []

    def execv(path, args):
        executed.append((path, args, os.environ.get("OMP_WAIT_POLICY")))
        raise SystemExit(0)  # execv does not return

    monkeypatch.setattr(os, "execv", execv)
    with pytest.raises(SystemExit):
        cli.main()  # as the console script calls it: the arguments from sys.argv
    assert executed == [(sys.executable, [sys.executable, "-m", "tsattn.cli", "fit", "--data",
                                          "ETTh1"], "PASSIVE")]  # fmt: skip


@posix_only
def test_a_quiet_machine_keeps_spinning_threads(command_line, monkeypatch):
    asked = _shared(monkeypatch, False)
    assert cli._passive_restart("fit", None) is None and asked == [None]
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert cli._passive_restart("fit", None) is None and asked[-1] == 1


def test_the_users_policy_or_a_python_caller_never_restarts(command_line, monkeypatch):
    asked = _shared(monkeypatch, True)
    assert cli._passive_restart("fit", ["fit"]) is None  # called from Python
    monkeypatch.setattr(cli, "_USER_WAIT_POLICY", True)  # the user's choice, or the restart
    assert cli._passive_restart("fit", None) is None
    assert asked == []  # decided without looking at the machine


def test_cores_shared_takes_the_majority_of_its_looks(monkeypatch):
    others = iter([4, 0, 4, 0, 4])
    monkeypatch.setattr(oversubscription, "runnable_elsewhere", lambda: next(others))
    monkeypatch.setattr(oversubscription, "_cores", lambda: 2)
    assert oversubscription.cores_shared(gap=0.0)
    others = iter([4, 0, 0, 0, 4])
    assert not oversubscription.cores_shared(gap=0.0)
    others = iter([0, 0, 0])
    assert oversubscription.cores_shared(3, looks=3, gap=0.0)  # 3 threads on 2 cores
