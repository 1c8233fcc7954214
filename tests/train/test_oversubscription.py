"""The guard that keeps CPU training fast when other processes compete for the cores."""

import time
import warnings

import lightning.pytorch as pl
import pytest
import torch

from tsattn.train import oversubscription
from tsattn.train.oversubscription import OversubscriptionGuard, runnable_elsewhere


@pytest.fixture
def set_threads(monkeypatch):
    """The thread counts the guard sets, recorded instead of applied."""
    calls = []
    monkeypatch.setattr(oversubscription.torch, "set_num_threads", calls.append)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    return calls


def _run(guard, others):
    """Feed the guard one judgement per value of ``others``; the RuntimeWarnings it raised."""
    values = iter(others)
    guard.others = lambda: next(values)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in others:
            guard.look()  # what the background sampler does between two steps
            guard.act()
    return [w for w in caught if issubclass(w.category, RuntimeWarning)]


def test_shared_cores_move_the_fit_to_one_thread_and_warn_once(set_threads):
    guard = OversubscriptionGuard(cores=2, threads=2)
    caught = _run(guard, [0, 0, 2, 2, 2, 2])
    assert guard.shared and guard.threads == 1 and set_threads == [1]
    (warning,) = caught
    message = str(warning.message)
    assert "2 cores (up to 2 of their threads runnable beside this fit's 2)" in message
    assert "trains on one thread" in message and "OMP_WAIT_POLICY=PASSIVE" in message


def test_the_warning_counts_the_others_the_guard_acted_on_not_the_last_look(set_threads):
    """Between two long steps the sampler may look several times: the warning names the most
    other threads seen in the looks it judged, not a last look that found them gone."""
    guard = OversubscriptionGuard(cores=2, threads=2)
    values = iter([2, 3, 2, 2, 0])
    guard.others = lambda: next(values)
    for _ in range(5):
        guard.look()
    with pytest.warns(RuntimeWarning, match=r"up to 3 of their threads runnable beside"):
        guard.act()
    assert guard.threads == 1


def test_a_quiet_machine_keeps_the_threads(set_threads):
    guard = OversubscriptionGuard(cores=2, threads=2)
    assert _run(guard, [0] * 20) == [] and set_threads == [] and not guard.shared


def test_a_passing_process_does_not_count_as_shared(set_threads):
    """Three of five judgements (under ``votes=4``) are not enough: a short job, such as a
    compiler or a git command, comes and goes."""
    guard = OversubscriptionGuard(cores=2, threads=2)
    assert _run(guard, [1, 0, 1, 0, 1, 0, 0, 1] * 3) == [] and set_threads == []


def test_threads_come_back_when_the_others_have_gone_and_the_warning_stays_single(set_threads):
    guard = OversubscriptionGuard(cores=2, threads=2)
    caught = _run(guard, [2] * 4 + [2, 0, 0, 0, 0] + [0] * 5 + [3] * 4)
    assert set_threads == [1, 2, 1] and guard.threads == 1 and len(caught) == 1


def test_the_fit_ends_with_the_threads_it_started_with(set_threads):
    guard = OversubscriptionGuard(cores=2, threads=2)
    _run(guard, [2] * 4)
    guard.on_train_end(None, None)
    assert set_threads == [1, 2] and guard.threads == 2


@pytest.mark.parametrize("how", ["env", "adapt", "one thread"])
def test_the_users_choice_is_left_alone_and_only_warned_about(set_threads, monkeypatch, how):
    threads = 2
    if how == "env":
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
    elif how == "adapt":
        monkeypatch.setattr(OversubscriptionGuard, "adapt", False)
    else:
        threads = 1
    guard = OversubscriptionGuard(cores=2, threads=threads)
    (warning,) = _run(guard, [2] * 5)
    assert guard.shared and set_threads == []
    assert "spin-waiting threads can slow every step" in str(warning.message)


def test_a_background_sampler_judges_however_long_the_steps(set_threads):
    """``start`` looks from a thread of its own; ``act`` at the end of a step applies what the
    looks found, even when one step outlasts all of them."""
    guard = OversubscriptionGuard(cores=2, threads=2, others=lambda: 2, interval=0.005)
    guard.start()
    try:
        deadline = time.monotonic() + 5.0
        while len(guard.recent) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)  # one long "step"
        with pytest.warns(RuntimeWarning, match="trains on one thread"):
            guard.act()
        assert guard.shared and set_threads == [1]
    finally:
        guard.stop()
    assert set_threads == [1, 2] and guard._sampler is None


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="votes=6 in"):
        OversubscriptionGuard(window=5, votes=6)
    with pytest.raises(ValueError, match="cores=0"):
        OversubscriptionGuard(cores=0)
    with pytest.raises(ValueError, match="interval=-1"):
        OversubscriptionGuard(interval=-1)


def test_other_runnable_threads_are_counted_without_this_process():
    """This test's own thread is running while it reads, and is not counted."""
    count = runnable_elsewhere()
    assert count >= 0 and isinstance(count, int | float)


def test_without_proc_the_load_average_less_this_process_stands_in(monkeypatch):
    """Off Linux the load average counts this fit's own threads: they are taken off, so a
    quiet machine where only the fit runs does not read as shared."""
    monkeypatch.setattr(oversubscription, "_proc_runnable", lambda: None)
    monkeypatch.setattr(oversubscription.os, "getloadavg", lambda: (2.0, 2.0, 2.0))
    monkeypatch.setattr(oversubscription.torch, "get_num_threads", lambda: 2)
    assert runnable_elsewhere() == 0.0
    monkeypatch.setattr(oversubscription.os, "getloadavg", lambda: (4.5, 3.0, 2.0))
    assert runnable_elsewhere() == 2.5


def test_a_cpu_fit_trains_on_one_thread_while_shared_and_ends_with_its_threads(
    tmp_path, monkeypatch
):
    """Every CPU fit runs the guard: with other work always runnable, the first step runs on
    the fit's threads, later ones on one thread, and the fit returns with the threads it
    started with."""
    from tests.train.conftest import TINY_MODEL
    from tests.train.toy import ToyDataModule
    from tsattn.train import TrainConfig, fit_datamodule

    seen = []

    class Threads(pl.Callback):
        def on_train_batch_start(self, *args, **kwargs):
            seen.append(torch.get_num_threads())

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(oversubscription, "runnable_elsewhere", lambda: 64)
    monkeypatch.setattr(OversubscriptionGuard, "every", 0.005)  # a few short steps: look often
    before = torch.get_num_threads()
    if before < 2:
        torch.set_num_threads(2)
    try:
        train = TrainConfig(max_steps=8, progress_bar=False, patience=0)
        with pytest.warns(RuntimeWarning, match="trains on one thread"):
            fit_datamodule(ToyDataModule(), model=TINY_MODEL, train=train, run_dir=tmp_path,
                           callbacks=[Threads()])  # fmt: skip
        assert seen[0] == max(before, 2) and seen[-1] == 1
        assert torch.get_num_threads() == max(before, 2)
    finally:
        torch.set_num_threads(before)
