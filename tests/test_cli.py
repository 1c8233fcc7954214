"""The ``tsattn`` command: fit / test / forecast / ablate / datasets, in a temporary folder."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

import tsattn
from tsattn.cli import main
from tsattn.train.config import RunConfig

ROOT = Path(__file__).resolve().parents[1]

TINY_CONFIG = {
    "data": {"seq_len": 24, "horizon": 6, "batch_size": 32},
    "model": {"layers": 1, "conv_channels": 4, "residual_channels": 4, "skip_channels": 8,
              "end_channels": 8, "node_dim": 4, "top_k": 3},
    "train": {"max_steps": 4, "limit_val_batches": 2, "limit_test_batches": 2,
              "progress_bar": False},
}  # fmt: skip


@pytest.fixture(scope="module")
def workdir(data_dir, tmp_path_factory) -> Path:
    """A folder with an ETTh1 slice (small.csv) and a tiny config (tiny.yaml)."""
    folder = tmp_path_factory.mktemp("cli")
    tsattn.load_dataset(data_dir / "ETTh1.csv").iloc[:700].to_csv(folder / "small.csv")
    (folder / "tiny.yaml").write_text(yaml.safe_dump(TINY_CONFIG))
    return folder


@pytest.fixture(scope="module")
def fit_log(workdir) -> str:
    args = ["fit", "--config", str(workdir / "tiny.yaml"), "--data", str(workdir / "small.csv"),
            "--set", "model.mixer=se", "--set", "train.lr=3e-3", "--set", "model.graph=true",
            "--name", "tiny",
            "--output-dir", str(workdir / "runs")]  # fmt: skip
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(args) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def run_dir(workdir, fit_log) -> Path:
    (folder,) = (workdir / "runs").iterdir()
    return folder


def test_fit_prints_a_short_summary(fit_log, run_dir):
    lines = fit_log.splitlines()
    assert lines[0] == f"run folder: {run_dir}"
    assert lines[1].startswith("trained ") and " parameters on cpu for 1 epoch(s)" in lines[1]
    # which model the fit kept: the closed-form start unless training beat it on every part
    metrics = json.loads((run_dir / "metrics.json").read_text())
    n_parts = RunConfig().train.keep_start_parts
    kept = any(
        metrics[f"best_val_loss_part{i}"] >= metrics[f"start_val_loss_part{i}"]
        for i in range(1, n_parts + 1)
    )
    assert lines[2] == (
        "model: the closed-form start the fit began from; the best epoch did not beat it on "
        f"each of {n_parts} validation parts (train.keep_start)"
        if kept
        else "model: the trained network"
    )
    assert (
        lines[3] == "wrote config.yaml, metrics.json, metrics.csv, model.pt, graph.csv, graph.png"
    )
    # one line per metric: start_val_loss, the score of each cycle the fit chose from, and the
    # trained model's and the start's scores on the parts of the validation windows, one line
    # for all parts
    assert lines[4] == "metrics:" and len(lines) < 29
    assert any(line.strip().startswith("start_val_loss_cycle24:") for line in lines)
    (parts,) = [line for line in lines if line.strip().startswith("best_val_loss_parts:")]
    expected = [metrics[f"best_val_loss_part{i}"] for i in range(1, n_parts + 1)]
    assert [float(v) for v in parts.split(":")[1].split("/")] == pytest.approx(expected, rel=1e-5)
    assert not any("_part1:" in line for line in lines)


def test_fit_writes_one_run_folder(run_dir):
    assert run_dir.name.startswith("tiny-")
    for name in ("config.yaml", "metrics.json", "metrics.csv", "model.pt", "checkpoints/best.ckpt",
                 "checkpoints/last.ckpt", "graph.csv", "graph.png"):  # fmt: skip
        assert (run_dir / name).is_file(), name
    graph = pd.read_csv(run_dir / "graph.csv", index_col=0)
    assert list(graph.index) == list(graph.columns) == ["HUFL", "HULL", "MUFL", "MULL", "LUFL",
                                                        "LULL", "OT"]  # fmt: skip
    assert (run_dir / "graph.png").stat().st_size > 1000
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["model"]["mixer"] == "se" and config["train"]["lr"] == 3e-3
    assert config["model"]["layers"] == 1 and config["data"]["horizon"] == 6
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert all(math.isfinite(metrics[k]) for k in ("test_mse", "test_mae", "test_rse", "test_corr"))
    assert metrics["params"] > 0


def test_test_command_reproduces_the_fit_metrics(run_dir, capsys):
    assert main(["test", "--run", str(run_dir)]) == 0
    tested = json.loads((run_dir / "test_metrics.json").read_text())
    fitted = json.loads((run_dir / "metrics.json").read_text())
    # `tsattn test` scores every test window; the fit was limited to 2 test batches
    assert tested["test_mse"] > 0 and math.isfinite(tested["test_corr"])
    assert "test_mse" in capsys.readouterr().out
    assert set(tested) == {"test_mse", "test_mae", "test_rse", "test_corr"}
    assert fitted["test_mse"] != tested["test_mse"]


def test_forecast_with_a_saved_model_and_by_fitting(run_dir, workdir):
    out = workdir / "pred.csv"
    assert main(["forecast", "--data", str(workdir / "small.csv"), "--model",
                 str(run_dir / "model.pt"), "--out", str(out)]) == 0  # fmt: skip
    pred = pd.read_csv(out, index_col=0, parse_dates=True)
    history = pd.read_csv(workdir / "small.csv", index_col=0, parse_dates=True)
    assert pred.shape == (6, 7) and list(pred.columns) == list(history.columns)
    assert pred.index[0] == history.index[-1] + pd.Timedelta("1h")
    out2 = workdir / "pred2.csv"
    assert main(["forecast", "--data", str(workdir / "small.csv"), "--horizon", "4",
                 "--config", str(workdir / "tiny.yaml"), "--set", "data.horizon=4",
                 "--quiet", "--out", str(out2)]) == 0  # fmt: skip
    assert pd.read_csv(out2, index_col=0).shape == (4, 7)
    out3 = workdir / "pred3.csv"
    assert main(["forecast", "--data", str(workdir / "small.csv"), "--model",
                 str(run_dir / "model.pt"), "--level", "80", "--level", "95",
                 "--out", str(out3)]) == 0  # fmt: skip
    pred3 = pd.read_csv(out3, index_col=0)
    assert pred3.shape == (6, 7 * 5) and (pred3["OT-lo-95"] <= pred3["OT-lo-80"]).all()


def test_backtest_writes_forecasts_metrics_and_a_plot(workdir, capsys):
    out = workdir / "bt"
    assert main(["backtest", "--config", str(workdir / "tiny.yaml"), "--data",
                 str(workdir / "small.csv"), "--n-windows", "2", "--step-size", "3",
                 "--level", "80", "--out", str(out)]) == 0  # fmt: skip
    forecasts = pd.read_csv(out / "backtest.csv", parse_dates=["cutoff", "ds"])
    assert len(forecasts) == 2 * 6 * 7 and forecasts["cutoff"].nunique() == 2
    assert {"actual", "forecast", "lo-80", "hi-80"} <= set(forecasts.columns)
    metrics = pd.read_csv(out / "backtest_metrics.csv", index_col="cutoff")
    assert list(metrics.columns) == ["mae", "mse", "rmse", "coverage_80"] and len(metrics) == 2
    assert (out / "backtest.png").stat().st_size > 1000
    assert "backtest.csv" in capsys.readouterr().out
    assert (
        main(
            [
                "backtest",
                "--config",
                str(workdir / "tiny.yaml"),
                "--data",
                str(workdir / "small.csv"),
                "--n-windows",
                "500",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "ask for at most" in capsys.readouterr().err


def test_fit_resume_continues_a_run_folder(run_dir):
    before = json.loads((run_dir / "metrics.json").read_text())
    assert main(["fit", "--resume", str(run_dir)]) == 0  # already at max_steps: nothing to redo
    after = json.loads((run_dir / "metrics.json").read_text())
    assert after["best_val_loss"] == before["best_val_loss"]


@pytest.mark.parametrize("path", sorted((ROOT / "experiments/configs").glob("*.yaml")), ids=str)
def test_experiment_configs_parse(path):
    cfg = RunConfig.from_yaml(path)
    assert cfg.data.data and cfg.name


def test_errors_print_one_clear_line(workdir, capsys):
    assert main(["fit", "--config", str(workdir / "tiny.yaml")]) == 2
    assert "no data: pass --data" in capsys.readouterr().err
    assert main(["fit", "--data", "x.csv", "--set", "train.lrr=1"]) == 2
    assert "unknown TrainConfig field(s) lrr" in capsys.readouterr().err
    assert main(["test", "--run", str(workdir / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


class _MakesFolder:
    """Unpickling this calls ``os.mkdir(path)``: what a tampered checkpoint could run."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_test_run_refuses_a_model_file_linked_from_outside_the_run(run_dir, tmp_path, capsys):
    copy = Path(shutil.copytree(run_dir, tmp_path / "copy"))
    (copy / "test_metrics.json").unlink(missing_ok=True)
    (copy / "model.pt").unlink()
    (copy / "model.pt").symlink_to(run_dir / "model.pt")
    assert main(["test", "--run", str(copy)]) == 2
    assert "model.pt resolves to" in capsys.readouterr().err
    assert not (copy / "test_metrics.json").exists()


def test_test_run_refuses_to_write_through_a_link_leaving_the_run(run_dir, tmp_path, capsys):
    copy = Path(shutil.copytree(run_dir, tmp_path / "copy"))
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (copy / "test_metrics.json").unlink(missing_ok=True)
    (copy / "test_metrics.json").symlink_to(victim)
    assert main(["test", "--run", str(copy)]) == 2
    assert "test_metrics.json resolves to" in capsys.readouterr().err
    assert victim.read_text() == "keep me"


def test_fit_resume_refuses_a_checkpoint_that_would_run_code(run_dir, tmp_path, capsys):
    copy = Path(shutil.copytree(run_dir, tmp_path / "copy"))
    marker = tmp_path / "code-ran"
    last = copy / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    checkpoint["hyper_parameters"]["extra"] = _MakesFolder(marker)
    torch.save(checkpoint, last)
    assert main(["fit", "--resume", str(copy)]) == 2
    assert "last.ckpt was refused: loading it would run code" in capsys.readouterr().err
    assert not marker.exists()


def test_ablate_writes_a_row_per_mixer_and_resumes(workdir, capsys):
    out = workdir / "ablation"
    base = ["ablate", "--config", str(workdir / "tiny.yaml"), "--data", str(workdir / "small.csv"),
            "--seeds", "1", "--out", str(out)]  # fmt: skip
    assert main([*base, "--mixers", "identity,eca"]) == 0
    capsys.readouterr()
    assert main([*base, "--mixers", "identity,eca,se"]) == 0
    log = capsys.readouterr().out
    assert log.count("done before, skipped") == 2 and "se seed 0: training" in log
    table = pd.read_csv(out / "ablation.csv", index_col="mixer")
    assert list(table.index) == ["identity", "eca", "se"]
    assert (table["runs"] == 1).all() and (table["mse_mean"] > 0).all()
    assert "| eca | 1 |" in (out / "ablation.md").read_text()
    assert (out / "ablation.png").stat().st_size > 1000


def test_ablate_fusions_pairs_each_with_skip_and_tests_the_trained_network(workdir, capsys):
    out = workdir / "fusion-ablation"
    assert main(["ablate", "--config", str(workdir / "tiny.yaml"), "--data",
                 str(workdir / "small.csv"), "--fusions", "skip,fpn", "--seeds", "2",
                 "--out", str(out)]) == 0  # fmt: skip
    assert "fpn seed 1: training" in capsys.readouterr().out
    table = pd.read_csv(out / "ablation.csv", index_col="fusion")
    assert list(table.index) == ["skip", "fpn"] and (table["runs"] == 2).all()
    assert table.loc["skip", "verdict"] == "reference" and table.loc["fpn", "paired_seeds"] == 2
    assert (table["kept_start"] == 0).all()  # keep_start off: the fusion is in every forecast
    text = (out / "ablation.md").read_text()
    assert text.startswith("Fusion ablation: small.csv") and ", trained network" in text
    assert "| MSE - skip (paired by seed) | vs skip |" in text
    run = RunConfig.from_yaml(out / "runs" / "fpn-seed1" / "config.yaml")
    assert run.model["fusion"] == "fpn" and run.train.keep_start is False
    assert run.train.seed == RunConfig().train.seed + 1


def test_ablate_refuses_to_resume_runs_trained_with_other_settings(workdir, capsys):
    base = ["ablate", "--config", str(workdir / "tiny.yaml"), "--data", str(workdir / "small.csv"),
            "--mixers", "identity", "--seeds", "1", "--out", str(workdir / "changed")]  # fmt: skip
    assert main(base) == 0
    assert main([*base, "--quiet"]) == 0  # how a run shows progress is not a setting it learns
    assert "done before, skipped" in capsys.readouterr().out
    assert main([*base, "--set", "train.lr=0.002"]) == 2
    err = capsys.readouterr().err
    assert "identity-seed0 was trained with other settings than this ablation's" in err
    assert "train.lr: " in err and "0.002 now" in err


def test_ablate_takes_mixers_or_fusions_not_both(workdir, capsys):
    with pytest.raises(SystemExit):
        main(["ablate", "--data", str(workdir / "small.csv"), "--mixers", "se",
              "--fusions", "fpn"])  # fmt: skip
    assert "not allowed with argument" in capsys.readouterr().err


def test_gpu_check_script_runs_in_cpu_only_mode(data_dir, tmp_path):
    """Also the console-script smoke test: the script calls `tsattn fit`."""
    assert shutil.which("tsattn"), "the tsattn console script is not installed (pip install -e .)"
    env = {**os.environ, "TSATTN_DATA_DIR": str(data_dir), "GPU_CHECK_OUT": str(tmp_path),
           "OMP_NUM_THREADS": "1"}  # fmt: skip
    proc = subprocess.run(["bash", str(ROOT / "experiments/gpu_check.sh"), "--cpu-only"],
                          capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "speed benchmark on CUDA: skipped (--cpu-only)" in proc.stdout
    assert "LeafSpec" not in proc.stderr  # Lightning's deprecation noise stays out of the CLI
    (metrics_file,) = tmp_path.glob("runs/gpu_check-*/metrics.json")
    assert math.isfinite(json.loads(metrics_file.read_text())["test_mse"])


@pytest.mark.parametrize("variable", ["RANK", "SLURM_PROCID", "LOCAL_RANK"])
def test_fit_on_a_secondary_ddp_rank_writes_no_run_folder(workdir, monkeypatch, capsys, variable):
    """Every process of a multi-process launch runs the same command; rank 0 alone writes."""
    for name in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, "1")
    out = workdir / f"rank1-{variable}"
    assert main(["fit", "--config", str(workdir / "tiny.yaml"), "--data",
                 str(workdir / "small.csv"), "--output-dir", str(out)]) == 0  # fmt: skip
    assert not out.exists()
    assert capsys.readouterr().out == ""
