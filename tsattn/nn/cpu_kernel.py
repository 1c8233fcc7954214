"""A compiled CPU kernel for the gated dilated inception (``cpu_kernel.cpp``).

Why it exists: on a CPU the fused layer of :mod:`tsattn.nn.temporal` spends nearly all its time
in one library convolution with a ``k_max``-wide kernel, and for the kernel set (2, 3, 6, 7) 36%
of that kernel is the zero padding of the small branches. The library runs it close to the
machine's peak, so no arrangement of library calls is much faster. This kernel multiplies only
the taps each branch has, fuses ``tanh``/``sigmoid`` and their derivatives into its passes,
reads and writes the model's ``(B, C, N, T)`` layout directly, and runs on torch's own OpenMP
thread pool. ``experiments/bench_speed.py`` times it against the textbook form and the library
convolution.

How it is built: on first use, with the C++ compiler on the ``PATH`` (``$CXX``, else ``c++``,
``g++`` or ``clang++``) and ``-O3 -march=native`` (the vector width of this CPU), into
``~/.cache/tsattn/kernels`` (``$TSATTN_KERNEL_DIR`` overrides it), named by a hash of the
source, the compiler and the CPU, so it compiles once per machine, in about a second. It has no
torch headers and is loaded with :mod:`ctypes`.

When it is used: float32 CPU tensors, no autocast, not while ``torch.compile`` traces, inputs
with at least :func:`min_rows` rows per plane. Everything else, and every machine where the
build fails (no compiler; a warning says why, once), takes the library path, which computes
the same function. ``TSATTN_CPU_KERNEL=0`` turns the kernel off.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import torch

__all__ = ["available", "gated_backward", "gated_forward", "load", "min_rows"]

SOURCE = Path(__file__).with_name("cpu_kernel.cpp")
_FLAGS = ("-O3", "-std=c++17", "-shared", "-fPIC", "-fno-math-errno", "-ffp-contract=fast")
# tried in order: the vector width of this CPU and torch's OpenMP pool first
_VARIANTS = (("-march=native", "-fopenmp"), ("-march=native", "-pthread"), ("-pthread",))


def _cache_dir() -> Path:
    """``$TSATTN_KERNEL_DIR``, else ``~/.cache/tsattn/kernels``, else a folder in the temp dir
    when the home folder cannot be written."""
    root = os.environ.get("TSATTN_KERNEL_DIR")
    if root:
        return Path(root)
    for path in (
        Path.home() / ".cache" / "tsattn" / "kernels",
        Path(tempfile.gettempdir())
        / f"tsattn-kernels-{os.getuid() if hasattr(os, 'getuid') else 0}",
    ):
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(path, os.W_OK):
            return path
    raise OSError("no writable folder for the compiled kernel: set $TSATTN_KERNEL_DIR")


def _compiler() -> str | None:
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _cpu_identity() -> str:
    """What ``-march=native`` depends on: the model and flags lines of ``/proc/cpuinfo``."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    wanted = ("model name", "flags", "Features", "CPU part")
    return "\n".join(sorted({line for line in lines if line.startswith(wanted)}))


def _compile(compiler: str, flags: tuple[str, ...], target: Path) -> str | None:
    """Build ``cpu_kernel.cpp`` into ``target``; ``None``, or the compiler's complaint."""
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        built = Path(tmp) / target.name
        result = subprocess.run(
            [compiler, *flags, str(SOURCE), "-o", str(built)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            return result.stderr.strip()[-500:]
        os.replace(built, target)  # atomic: concurrent builds leave one good file
    return None


def _build(compiler: str) -> Path:
    """Compile ``cpu_kernel.cpp`` into the cache (once per source, compiler and CPU)."""
    source = SOURCE.read_bytes()
    version = subprocess.run(
        [compiler, "--version"], capture_output=True, text=True, check=False
    ).stdout
    targets = {}
    for variant in _VARIANTS:
        flags = (*_FLAGS, *variant)
        identity = "\0".join((version, " ".join(flags), _cpu_identity(), platform.machine()))
        key = hashlib.sha256(source + identity.encode()).hexdigest()[:16]
        targets[flags] = _cache_dir() / f"gated_inception-{key}.so"
    for target in targets.values():
        if target.is_file():
            return target
    errors = []
    for flags, target in targets.items():
        error = _compile(compiler, flags, target)
        if error is None:
            return target
        errors.append(f"{' '.join(flags[len(_FLAGS) :])}: {error}")
    raise RuntimeError("compiling cpu_kernel.cpp failed:\n" + "\n".join(errors))


def _bind(lib: ctypes.CDLL) -> ctypes.CDLL:
    """Declare the C signatures of the entry points."""
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    lib.tsattn_min_rows.restype = i64
    lib.tsattn_min_rows.argtypes = []
    lib.tsattn_vector_width.restype = ctypes.c_int
    lib.tsattn_vector_width.argtypes = []
    lib.tsattn_gated_forward.restype = ctypes.c_int
    lib.tsattn_gated_forward.argtypes = [ctypes.c_int, *[i64] * 7, *[ptr] * 7]
    lib.tsattn_gated_backward.restype = ctypes.c_int
    lib.tsattn_gated_backward.argtypes = [ctypes.c_int, *[i64] * 7, *[ptr] * 9]
    return lib


@functools.cache
def load() -> ctypes.CDLL | None:
    """The compiled kernel, built on first call; ``None`` where it cannot be built or is off."""
    if os.environ.get("TSATTN_CPU_KERNEL", "1").strip().lower() in {"0", "false", "no", "off"}:
        return None
    compiler = _compiler()
    if compiler is None:
        warnings.warn(
            "tsattn: no C++ compiler found (set $CXX, or install g++ or clang++), so the "
            "gated temporal convolution uses the slower library path on this CPU.",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    try:
        lib = ctypes.CDLL(str(_build(compiler)))
    except (OSError, RuntimeError) as error:
        warnings.warn(
            f"tsattn: the CPU kernel of the gated temporal convolution could not be built, "
            f"so the slower library path is used: {error}",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return _bind(lib)


def min_rows() -> int:
    """Rows per plane (``N * T - dilation * (k_max - 1)``) the kernel needs; 0 without it."""
    lib = load()
    return int(lib.tsattn_min_rows()) if lib is not None else 0


def available(x: torch.Tensor, k_max: int, dilation: int) -> bool:
    """Whether the kernel can run the layer on ``x`` of shape ``(B, C, N, T)``."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or x.dim() != 4:
        return False
    if _is_compiling():
        return False
    lib = load()
    if lib is None:
        return False
    _, _, nodes, steps = x.shape
    rows = nodes * steps - dilation * (k_max - 1)
    return steps - dilation * (k_max - 1) >= 1 and rows >= lib.tsattn_min_rows()


def _is_compiling() -> bool:
    check = getattr(torch.compiler, "is_compiling", None)  # torch >= 2.3
    return bool(check and check())


def _address(tensor: torch.Tensor | None) -> int | None:
    return None if tensor is None else tensor.data_ptr()


def gated_forward(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    first_tap: torch.Tensor,
    dilation: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(y, tanh f, sigmoid g)`` for ``x (B, C, N, T)``.

    ``weight (2 c_out, k_max, C)`` and ``bias (2 c_out,)``: filter rows first, scaled by 2
    (``tanh f = 2 sigmoid(2 f) - 1``), then gate rows. ``first_tap (2 c_out,)`` int32: the first
    tap each row uses (``k_max - k``). ``y`` is ``(B, c_out, N, T')``; the other two are the
    ``(B, c_out, N * T)`` activations the backward needs.
    """
    lib = load()
    batch, channels, nodes, steps = x.shape
    rows, k_max = weight.shape[:2]
    c_out = rows // 2
    steps_out = steps - dilation * (k_max - 1)
    act = x.new_empty(batch, c_out, nodes * steps)
    gate = torch.empty_like(act)
    y = x.new_empty(batch, c_out, nodes, steps_out)
    status = lib.tsattn_gated_forward(
        torch.get_num_threads(),
        batch, channels, rows, nodes, steps, k_max, dilation,
        *map(_address, (first_tap, x, weight, bias, act, gate, y)),
    )  # fmt: skip
    if status != 0:
        raise RuntimeError(f"tsattn cpu kernel: the forward failed with status {status}")
    return y, act, gate


def gated_backward(
    grad_y: torch.Tensor,
    act: torch.Tensor,
    gate: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    first_tap: torch.Tensor,
    dilation: int,
    need: tuple[bool, bool, bool],
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Gradients ``(x, weight (2 c_out, k_max, C), bias)`` for those ``need`` asks for.

    ``weight`` unscaled. The weight gradient of a tap a row does not use is undefined: slice it
    away.
    """
    lib = load()
    batch, channels, nodes, steps = x.shape
    rows, k_max = weight.shape[:2]
    grad_x = torch.empty_like(x) if need[0] else None
    grad_w = torch.empty_like(weight) if need[1] else None
    grad_b = weight.new_empty(rows) if need[2] else None
    status = lib.tsattn_gated_backward(
        torch.get_num_threads(),
        batch, channels, rows, nodes, steps, k_max, dilation,
        *map(_address, (first_tap, grad_y, act, gate, x, weight, grad_x, grad_w, grad_b)),
    )  # fmt: skip
    if status == 2:
        raise MemoryError("tsattn cpu kernel: out of memory in the backward")
    if status != 0:
        raise RuntimeError(f"tsattn cpu kernel: the backward failed with status {status}")
    return grad_x, grad_w, grad_b
