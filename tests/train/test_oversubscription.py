"""The once-per-fit warning about oversubscribed CPU threads."""

import warnings

import pytest

from tsattn.train.oversubscription import OversubscriptionWarning


def _feed(callback, steps):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for seconds in steps:
            callback.observe(seconds)
    return [w for w in caught if issubclass(w.category, RuntimeWarning)]


def test_slow_step_on_a_loaded_machine_warns_once_with_the_fix():
    callback = OversubscriptionWarning(cores=2, load=lambda: 5.0)
    caught = _feed(callback, [0.1] * 10 + [0.8] + [0.1] * 3 + [0.9])
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "8x the usual 0.100 s" in message and "OMP_WAIT_POLICY=PASSIVE" in message


def test_slow_step_on_a_quiet_machine_does_not_warn():
    callback = OversubscriptionWarning(cores=2, load=lambda: 1.5)
    assert _feed(callback, [0.1] * 10 + [0.8]) == []


def test_steady_steps_on_a_loaded_machine_do_not_warn():
    callback = OversubscriptionWarning(cores=2, load=lambda: 8.0)
    assert _feed(callback, [0.1, 0.12, 0.11, 0.2] * 10) == []


def test_warmup_steps_are_not_judged():
    callback = OversubscriptionWarning(cores=1, load=lambda: 4.0, warmup=5)
    assert _feed(callback, [0.1, 0.1, 5.0]) == []


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="ratio=1 must be > 1"):
        OversubscriptionWarning(ratio=1)


def test_the_message_quotes_the_load_it_judged():
    """The load is read once: the message shows the value that exceeded the cores, unrounded
    to the core count (2.04 on 2 cores reads 2.04, not 2.0)."""
    loads = iter([2.04, 9.0])
    callback = OversubscriptionWarning(cores=2, load=lambda: next(loads))
    (caught,) = _feed(callback, [0.1] * 10 + [0.8])
    assert "load average (2.04) exceeds this machine's 2 cores" in str(caught.message)
