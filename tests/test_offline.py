"""A first run on a fresh machine without network: the README's main job uses the shipped
ETTh1, and a dataset that cannot be found leaves no run folder behind.

The CLI runs in a fresh process with an empty home folder, no ``TSATTN_DATA_DIR`` or
``TSATTN_CACHE_DIR``, an empty working folder, and every HTTP(S) request sent to a closed
local port, so a download attempt fails at once.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tsattn.data import get_spec, load_dataset
from tsattn.data.loader import dataset_file
from tsattn.data.registry import shipped_file

ROOT = Path(__file__).resolve().parents[1]

TINY = ["--horizon", "6", "--seq-len", "24", "--max-steps", "2", "--quiet",
        "--set", "model.layers=1", "--set", "model.conv_channels=4",
        "--set", "model.residual_channels=4", "--set", "model.skip_channels=8",
        "--set", "model.end_channels=8", "--set", "model.node_dim=4",
        "--set", "train.limit_val_batches=2", "--set", "train.limit_test_batches=2"]  # fmt: skip


def _offline_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TSATTN_")}
    dead = "http://127.0.0.1:9"  # the discard port: nothing listens, so a download fails
    env.update(
        HOME=str(home), PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", http_proxy=dead,
        https_proxy=dead, HTTP_PROXY=dead, HTTPS_PROXY=dead, no_proxy="", NO_PROXY="",
    )  # fmt: skip
    return env


def _cli(args: list[str], home: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tsattn.cli", *args], cwd=cwd, env=_offline_env(home),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_shipped_etth1_decompresses_to_the_registered_file():
    path = shipped_file(get_spec("ETTh1"))
    assert path is not None and path.name == "ETTh1.csv.gz"
    assert (path.parent / "README.md").read_text().count("CC BY-ND 4.0") >= 1
    digest = hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()
    assert digest == get_spec("ETTh1").sha256


def test_main_job_runs_offline_from_an_empty_folder(tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(), work.mkdir()
    proc = _cli(["fit", "--data", "ETTh1", *TINY], home, work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = (work / "runs").iterdir()
    assert run.name.startswith("ETTh1-h6-")
    metrics = json.loads((run / "metrics.json").read_text())
    assert math.isfinite(metrics["test_mse"])
    assert not (home / ".cache" / "tsattn" / "ETTh1.csv").exists()  # nothing was downloaded


def test_missing_data_offline_fails_clearly_and_writes_no_run_folder(tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(), work.mkdir()
    proc = _cli(["fit", "--data", "ETTm2", *TINY], home, work)
    assert proc.returncode == 2
    assert "ETTm2.csv not found" in proc.stderr and "Downloading" in proc.stderr
    assert not (work / "runs").exists()
    proc = _cli(["fit", "--data", "nope.csv", *TINY], home, work)
    assert proc.returncode == 2 and "no such file, and not a registered dataset" in proc.stderr
    assert not (work / "runs").exists()


def test_a_local_copy_comes_before_the_shipped_one(tmp_path, monkeypatch, data_dir):
    monkeypatch.delenv("TSATTN_DATA_DIR", raising=False)
    monkeypatch.setenv("TSATTN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    assert dataset_file("ETTh1", download=False) == shipped_file(get_spec("ETTh1"))
    monkeypatch.setenv("TSATTN_DATA_DIR", str(data_dir))
    assert dataset_file("ETTh1", download=False) == data_dir / "ETTh1.csv"
    monkeypatch.delenv("TSATTN_DATA_DIR")
    frame = load_dataset("ETTh1", download=False)  # parsed straight from the gzip copy
    assert frame.shape == (17420, 7) and frame.index[0].isoformat() == "2016-07-01T00:00:00"


def test_a_damaged_shipped_copy_is_refused(tmp_path, monkeypatch):
    import tsattn.data.registry as registry

    fake = tmp_path / "builtin"
    fake.mkdir()
    (fake / "ETTh1.csv.gz").write_bytes(gzip.compress(b"date,OT\n2016-07-01,1.0\n"))
    monkeypatch.setattr(registry, "BUILTIN_DIR", fake)
    monkeypatch.delenv("TSATTN_DATA_DIR", raising=False)
    monkeypatch.setenv("TSATTN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="the installation is damaged"):
        dataset_file("ETTh1", download=False)


def test_datasets_list_and_verify_know_the_shipped_copy(tmp_path, monkeypatch, capsys):
    from tsattn.cli import main

    monkeypatch.delenv("TSATTN_DATA_DIR", raising=False)
    monkeypatch.setenv("TSATTN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    assert main(["datasets", "list"]) == 0
    etth1 = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("ETTh1"))
    assert "shipped with tsattn:" in etth1 and etth1.endswith("ETTh1.csv.gz")
    assert main(["datasets", "verify", "ETTh1"]) == 0
    assert capsys.readouterr().out.startswith("ETTh1: OK ")
