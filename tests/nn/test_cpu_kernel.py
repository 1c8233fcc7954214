"""The compiled CPU kernel of the gated dilated inception (tsattn/nn/cpu_kernel.cpp)."""

from __future__ import annotations

import ctypes
import os
import platform
import subprocess
import sys
import textwrap

import pytest
import torch

from tests.nn.reference import textbook_dilated_inception, textbook_gated_temporal_conv
from tsattn import MTGNN, MTGNNConfig
from tsattn.nn import cpu_kernel
from tsattn.nn.temporal import GatedTemporalConv

KERNEL = "_GatedInceptionKernelBackward"
LIBRARY = "_GatedInceptionBackward"


@pytest.fixture(scope="module", autouse=True)
def _kernel_built() -> None:
    """Skips where no C++ compiler exists; fails in CI, where the kernel must be tested."""
    if cpu_kernel.load() is None:
        message = "the CPU kernel was not built (no C++ compiler, or TSATTN_CPU_KERNEL=0)"
        if os.environ.get("CI") and cpu_kernel._compiler() is not None:
            pytest.fail(message)
        pytest.skip(message)


def long_enough(nodes: int, dilation: int, k_max: int, extra: int = 37) -> int:
    """Steps ``T`` that give a plane of at least the kernel's minimum rows, plus ``extra``, and
    several output steps per series."""
    rows = cpu_kernel.min_rows() + extra
    return max(-(-(rows + dilation * (k_max - 1)) // nodes), dilation * (k_max - 1) + 8)


def kernel_and_textbook_gradients(module: GatedTemporalConv, x: torch.Tensor):
    out = module(x)
    assert out.grad_fn.name() == KERNEL
    grad_y = torch.randn_like(out)
    params = [x, *module.parameters()]
    got = torch.autograd.grad(out, params, grad_y)
    expected_out = textbook_gated_temporal_conv(module, x)
    want = torch.autograd.grad(expected_out, params, grad_y)
    return out, expected_out, got, want


CASES = [
    # c_in, c_out, kernel_set, dilation, nodes
    (32, 32, (2, 3, 6, 7), 1, 7),  # the ETTh1-like layer
    (16, 16, (2, 3, 6, 7), 4, 5),
    (5, 12, (2, 3, 6, 7), 2, 3),  # c_in not a multiple of the tile, 3 rows per branch
    (6, 9, (1, 3, 5), 3, 4),  # odd rows per branch: one filter row per tile
    (8, 8, (2, 3, 6, 7), 16, 2),
    (7, 6, (7, 2, 4), 2, 1),  # unsorted kernel set, one series
    (3, 4, (3,), 1, 1),
]


@pytest.mark.parametrize(("c_in", "c_out", "kernel_set", "dilation", "nodes"), CASES)
def test_kernel_equals_textbook_form_and_gradients(c_in, c_out, kernel_set, dilation, nodes):
    module = GatedTemporalConv(c_in, c_out, kernel_set, dilation)
    steps = long_enough(nodes, dilation, max(kernel_set))
    x = torch.randn(3, c_in, nodes, steps, requires_grad=True)
    out, expected, got, want = kernel_and_textbook_gradients(module, x)
    assert out.shape == expected.shape and out.is_contiguous()
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("extra", [0, 1, 15, 97])
def test_kernel_handles_every_row_remainder(extra):
    """Plane lengths at the minimum and off the tile and vector widths: the last tile overlaps,
    the last vector of the weight pass is masked."""
    module = GatedTemporalConv(4, 8, (2, 3, 6, 7), dilation=1)
    x = torch.randn(2, 4, 1, cpu_kernel.min_rows() + 6 + extra, requires_grad=True)
    out, expected, got, want = kernel_and_textbook_gradients(module, x)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)


def test_kernel_with_two_threads_equals_one_thread():
    """Threads split rows and sum partial weight gradients: same values as one thread."""
    module = GatedTemporalConv(8, 16, dilation=2)
    x = torch.randn(6, 8, 5, long_enough(5, 2, 7, extra=2000), requires_grad=True)

    def run(threads: int) -> list[torch.Tensor]:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            out = module(x)
            return [out, *torch.autograd.grad(out.square().sum(), [x, *module.parameters()])]
        finally:
            torch.set_num_threads(before)

    for one, two in zip(run(1), run(2), strict=True):
        torch.testing.assert_close(one, two, atol=1e-5, rtol=1e-5)


def test_kernel_is_deterministic():
    module = GatedTemporalConv(8, 8)
    x = torch.randn(4, 8, 3, long_enough(3, 1, 7), requires_grad=True)

    def run() -> list[torch.Tensor]:
        out = module(x)
        return [out, *torch.autograd.grad(out.sum(), [x, *module.parameters()])]

    for first, second in zip(run(), run(), strict=True):
        assert torch.equal(first, second)


def test_kernel_computes_only_the_gradients_asked_for():
    module = GatedTemporalConv(4, 8)
    for conv in module.gate.branches:
        conv.requires_grad_(False)
    x = torch.randn(2, 4, 3, long_enough(3, 1, 7))  # no grad for the input
    out = module(x)
    assert out.grad_fn.name() == KERNEL
    out.sum().backward()
    assert all(conv.weight.grad is None for conv in module.gate.branches)
    expected = torch.autograd.grad(
        textbook_gated_temporal_conv(module, x).sum(),
        [p for conv in module.filter.branches for p in (conv.weight, conv.bias)],
    )
    got = [p.grad for conv in module.filter.branches for p in (conv.weight, conv.bias)]
    for g, w in zip(got, expected, strict=True):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)


def test_library_path_where_the_kernel_does_not_apply():
    module = GatedTemporalConv(4, 8)
    short = torch.randn(2, 4, 1, 20, requires_grad=True)  # fewer rows than the kernel needs
    assert module(short).grad_fn.name() == LIBRARY
    long = torch.randn(2, 4, 3, long_enough(3, 1, 7), requires_grad=True)
    assert module.double()(long.double()).grad_fn.name() == LIBRARY
    module.float().use_cpu_kernel = False
    assert module(long).grad_fn.name() == LIBRARY
    module.use_cpu_kernel = True
    assert module(long).grad_fn.name() == KERNEL


def test_double_backward_through_the_kernel_raises_clearly():
    module = GatedTemporalConv(4, 8)
    x = torch.randn(2, 4, 3, long_enough(3, 1, 7), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"cannot be differentiated again.*composed = True"):
        torch.autograd.grad(module(x).square().sum(), x, create_graph=True)


def test_model_with_the_kernel_equals_the_library_path():
    torch.manual_seed(0)
    model = MTGNN(MTGNNConfig(num_nodes=7, seq_len=96, horizon=24)).eval()
    x = torch.randn(4, 96, 7)
    with torch.no_grad():
        fast = model(x)
        GatedTemporalConv.use_cpu_kernel = False
        try:
            library = model(x)
        finally:
            GatedTemporalConv.use_cpu_kernel = True
    torch.testing.assert_close(fast, library, atol=1e-5, rtol=1e-5)


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
        timeout=120,
    )


CHECK_FALLBACK = """
    import warnings
    import torch
    from tsattn.nn import cpu_kernel
    from tsattn.nn.temporal import GatedTemporalConv
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = GatedTemporalConv(4, 8)(torch.randn(2, 4, 3, 400, requires_grad=True))
    print(out.grad_fn.name(), cpu_kernel.load() is None)
    print("|".join(str(w.message) for w in caught))
"""


@pytest.mark.parametrize(
    ("compiler", "path", "message"),
    [
        ("c++", "", "no C++ compiler found"),
        ("/bin/false", os.environ.get("PATH", ""), "could not be built"),
    ],
    ids=["no-compiler", "failing-compiler"],
)
def test_a_failed_build_warns_once_and_falls_back(tmp_path, compiler, path, message):
    proc = run_python(CHECK_FALLBACK, CXX=compiler, PATH=path, TSATTN_KERNEL_DIR=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    first, *lines = proc.stdout.splitlines()
    warned = "\n".join(lines)
    assert first == f"{LIBRARY} True"
    assert message in warned and warned.count("tsattn:") == 1
    assert not list(tmp_path.glob("*.so"))


def test_kernel_can_be_turned_off_by_environment():
    proc = run_python(CHECK_FALLBACK, TSATTN_CPU_KERNEL="0")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"{LIBRARY} True", ""]


def test_kernel_is_built_once_into_the_cache(tmp_path):
    code = "from tsattn.nn import cpu_kernel; print(cpu_kernel.load()._name)"
    first = run_python(code, TSATTN_KERNEL_DIR=str(tmp_path))
    assert first.returncode == 0, first.stderr
    (built,) = tmp_path.glob("gated_inception-*.so")
    stamp = built.stat().st_mtime_ns
    second = run_python(code, TSATTN_KERNEL_DIR=str(tmp_path))
    assert second.returncode == 0, second.stderr
    assert first.stdout.strip() == second.stdout.strip() == str(built)
    assert built.stat().st_mtime_ns == stamp  # loaded, not rebuilt
    assert list(tmp_path.iterdir()) == [built]  # no temporary files left behind


def test_kernel_propagates_nan_and_saturates_at_large_inputs():
    module = GatedTemporalConv(2, 4, (2, 3), dilation=1)
    x = torch.randn(1, 2, 1, long_enough(1, 1, 3)) * 300
    x[0, 0, 0, 50] = float("nan")
    with torch.no_grad():
        blocks = (module.filter, module.gate)
        pre_activation = torch.cat([textbook_dilated_inception(block, x) for block in blocks])
        out = module(x)
        expected = textbook_gated_temporal_conv(module, x)
    assert pre_activation.nan_to_num().abs().max() > 88  # where exp() saturates in float32
    assert torch.equal(out.isnan(), expected.isnan()) and out.isnan().any()
    finite = ~expected.isnan()
    # pre-activations of hundreds carry a float32 rounding of ~1e-5 in either form
    torch.testing.assert_close(out[finite], expected[finite], atol=1e-4, rtol=0)


@pytest.mark.skipif(platform.machine() not in {"x86_64", "AMD64"}, reason="x86 vector widths")
@pytest.mark.parametrize(("march", "width"), [("x86-64-v3", 8), ("x86-64", 4)])
def test_narrower_vector_builds_equal_textbook_form(tmp_path, monkeypatch, march, width):
    """The AVX2 (8 floats) and plain SSE (4 floats) builds that CPUs without AVX-512 get."""
    cpu_flags = set(cpu_kernel._cpu_identity().split())
    if march == "x86-64-v3" and not {"avx2", "fma", "bmi2"} <= cpu_flags:
        pytest.skip("this CPU cannot run an AVX2 build")
    compiler = cpu_kernel._compiler()
    target = tmp_path / f"gated_inception-{march}.so"
    flags = (*cpu_kernel._FLAGS, f"-march={march}", "-fopenmp")
    assert cpu_kernel._compile(compiler, flags, target) is None
    lib = cpu_kernel._bind(ctypes.CDLL(str(target)))
    assert lib.tsattn_vector_width() == width
    monkeypatch.setattr(cpu_kernel, "load", lambda: lib)
    for c_in, c_out, kernel_set, dilation, nodes in CASES[:4]:
        module = GatedTemporalConv(c_in, c_out, kernel_set, dilation)
        x = torch.randn(2, c_in, nodes, long_enough(nodes, dilation, max(kernel_set)) + 5)
        x.requires_grad_()
        out, expected, got, want = kernel_and_textbook_gradients(module, x)
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
        for g, w in zip(got, want, strict=True):
            torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)
