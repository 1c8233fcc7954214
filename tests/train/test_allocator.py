"""Freed memory kept for the next step during CPU fits (``tsattn.train.allocator``)."""

from __future__ import annotations

import resource
from types import SimpleNamespace

import pytest
import torch

from tsattn.train import allocator
from tsattn.train.allocator import FreedMemoryReuse, reuse_freed_memory


class FakeLibc:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("malloc_trim", pad))
        return 1


@pytest.fixture
def libc(monkeypatch):
    fake = FakeLibc()
    monkeypatch.setattr(allocator, "glibc", lambda: fake)
    for name in allocator.USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    return fake


SET = [("mallopt", allocator.M_MMAP_MAX, 0), ("mallopt", allocator.M_TRIM_THRESHOLD, 2**31 - 1)]
RESTORE = [
    ("mallopt", allocator.M_MMAP_MAX, 65536),
    ("mallopt", allocator.M_TRIM_THRESHOLD, 128 * 1024),
    ("malloc_trim", 0),
]


def test_block_sets_then_restores_glibc_limits_and_trims(libc):
    with reuse_freed_memory() as changed:
        assert changed is True
        assert libc.calls == SET
    assert libc.calls == SET + RESTORE


def test_nested_blocks_set_and_restore_once(libc):
    with reuse_freed_memory(), reuse_freed_memory():
        pass
    assert libc.calls == SET + RESTORE


def test_limits_are_restored_when_the_block_raises(libc):
    with pytest.raises(RuntimeError), reuse_freed_memory():
        raise RuntimeError("a failed fit")
    assert libc.calls == SET + RESTORE


@pytest.mark.parametrize("name", allocator.USER_SETTINGS)
def test_a_malloc_setting_of_the_user_is_left_alone(libc, monkeypatch, name):
    monkeypatch.setenv(name, "1")
    with reuse_freed_memory() as changed:
        assert changed is False
    assert libc.calls == []


def test_nothing_changes_without_glibc(monkeypatch):
    monkeypatch.setattr(allocator, "glibc", lambda: None)
    with reuse_freed_memory() as changed:
        assert changed is False


def _trainer(device: str):
    return SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device(device)))


def test_callback_spans_a_cpu_fit_from_setup_to_teardown(libc):
    callback = FreedMemoryReuse()
    callback.setup(_trainer("cpu"), None, "fit")
    assert libc.calls == SET
    callback.teardown(_trainer("cpu"), None, "fit")
    assert libc.calls == SET + RESTORE


@pytest.mark.parametrize(("device", "stage"), [("cpu", "validate"), ("meta", "fit")])
def test_callback_leaves_other_stages_and_devices_alone(libc, device, stage):
    callback = FreedMemoryReuse()
    callback.setup(_trainer(device), None, stage)
    callback.teardown(_trainer(device), None, stage)
    assert libc.calls == []


def test_callback_can_be_turned_off(libc, monkeypatch):
    monkeypatch.setattr(FreedMemoryReuse, "enabled", False)
    callback = FreedMemoryReuse()
    callback.setup(_trainer("cpu"), None, "fit")
    callback.teardown(_trainer("cpu"), None, "fit")
    assert libc.calls == []


def _faults_per_step(nbytes: int, buffers: int = 3, steps: int = 6) -> list[int]:
    """Minor page faults of each of ``steps`` steps that allocate ``buffers`` buffers of
    ``nbytes``, fill them and free them, as a training step does with its activations."""
    faults = []
    for _ in range(steps):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for buffer in [torch.empty(nbytes // 4) for _ in range(buffers)]:
            buffer.fill_(1.0)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return faults


@pytest.mark.skipif(allocator.glibc() is None, reason="glibc's malloc only")
def test_inside_the_block_freed_buffers_are_reused_without_page_faults(monkeypatch):
    for name in allocator.USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    nbytes = 48 * 2**20  # above glibc's largest mmap threshold (32 MiB)
    pages = 3 * nbytes // resource.getpagesize()  # three buffers a step
    # malloc's defaults: every step maps its buffers afresh and the kernel zero-fills them
    assert min(_faults_per_step(nbytes)[2:]) > pages // 2
    with reuse_freed_memory() as changed:
        assert changed
        # the first steps grow the heap (more of them where earlier work fragmented it);
        # after them, the steps reuse what they freed
        assert max(_faults_per_step(nbytes, steps=10)[-3:]) < pages // 10
