"""MTGNN forecaster with pluggable attention mixers and pyramid fusion.

Paper: Wu et al., "Connecting the Dots: Multivariate Time Series Forecasting with Graph Neural
Networks", KDD 2020, https://arxiv.org/abs/2005.11650

One layer: gated dilated-inception convolution -> dropout -> mixer -> graph mix-hop with ``A``
and ``A^T`` (or a 1x1 convolution when the graph is off) -> residual -> LayerNorm over
``(C, N, T)``. The gated output of every layer, together with the (dropped-out) input and the
last layer's output, forms the temporal pyramid that the fusion merges into one map
``(B, C, N, T_f)``; the head collapses its ``T_f`` steps and maps to the horizon. With
``mixer="identity"``, ``fusion="skip"`` and ``revin=False`` this is the official architecture.

Departures from the official code: the mixer slot, the fusion choice, optional RevIN, calendar
features as extra input channels, a fixed top-k tie-break (see :mod:`tsattn.nn.graph`), and a
check that the input's node count and length match the configuration.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tsattn._config import reject_unknown
from tsattn.nn.cycle import ResidualCycle
from tsattn.nn.fusion import create_fusion
from tsattn.nn.graph import GraphLearner, MixHop, mix_hop_pair
from tsattn.nn.mixers import create_mixer
from tsattn.nn.revin import RevIN, RevINStats
from tsattn.nn.shortcut import (
    SHORTCUTS,
    LinearShortcut,
    moving_average,
    phase_block,
    phase_blocks,
)
from tsattn.nn.temporal import GatedTemporalConv, receptive_field

__all__ = ["MTGNN", "PRESETS", "MTGNNConfig"]


def _dense_strides(x: torch.Tensor) -> bool:
    """Whether ``x``'s strides lay its elements out densely, in some order of its dimensions."""
    expected = 1
    for size, stride in sorted(zip(x.shape, x.stride(), strict=True), key=lambda d: d[1]):
        if size != 1 and stride != expected:
            return False
        expected *= size
    return True


def _random_int16(x: torch.Tensor) -> torch.Tensor:
    """Independent integers, uniform over all 2**16 values of ``int16``, shaped like ``x`` (and
    laid out like it where ``x`` is dense, so that element-wise work with ``x`` reads both in
    one order).

    Drawn as 64-bit integers over their full range, four 16-bit lanes each: one draw per four
    elements where ``rand_like(x)`` makes one per element, from the same seeded generator.
    """
    n = x.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device)
    lanes = words.random_(-(2**63), None).view(torch.int16)[:n]
    if _dense_strides(x):
        return lanes.as_strided(x.shape, x.stride())
    return lanes.view(x.shape)


def _interpolate(knots: torch.Tensor, stride: int, horizon: int) -> torch.Tensor:
    """``(B, K, N) -> (B, H, N)``: values at steps ``0, stride, 2 stride, ...`` joined by straight
    lines, cropped to the first ``horizon`` steps.

    >>> _interpolate(torch.tensor([[[0.0], [4.0], [0.0]]]), 4, 6).flatten().tolist()
    [0.0, 1.0, 2.0, 3.0, 4.0, 3.0]
    """
    length = (knots.size(1) - 1) * stride + 1
    series = knots.transpose(1, 2)  # (B, K, N) -> (B, N, K)
    series = F.interpolate(series, size=length, mode="linear", align_corners=True)  # (B, N, L)
    return series[..., :horizon].transpose(1, 2)  # (B, N, L) -> (B, H, N)


def _dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """``F.dropout`` with a cheaper mask on CPUs.

    On CPUs ``F.dropout`` draws its mask with ``bernoulli_``, and ``rand_like(x) >= p`` with a
    float per element; tsattn compares 16-bit random integers instead, so ``p`` is rounded to a
    multiple of 2**-16 (0.3 drops with probability 0.300003) and the kept values are divided by
    the exact probability of keeping them, which leaves the expectation unchanged
    (``experiments/bench_dropout.py`` measures the three masks, and the training step). Other
    devices, and ``p`` within 2**-17 of 0 or 1, keep ``F.dropout``.
    """
    if not training or p == 0.0:
        return x
    cut = round(p * 2**16)  # drop where the integer, shifted to [0, 2**16), is below cut
    if x.device.type != "cpu" or not 0 < cut < 2**16:
        return F.dropout(x, p, training=True)
    keep = _random_int16(x).ge(cut - 2**15)  # True with probability 1 - cut / 2**16
    return x * keep.to(x.dtype).mul_(2**16 / (2**16 - cut))


class _LastSteps(torch.autograd.Function):
    """``x[..., -steps:]`` whose gradient keeps ``x``'s memory layout.

    Autograd's own slice backward writes a contiguous ``(B, C, N, T)`` buffer; added to the
    channels-last gradient of the gated convolution, the sum would be contiguous too, and the
    layer norm's backward, which reads channels-last, would copy it.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, steps: int) -> torch.Tensor:
        ctx.shape = x.shape
        cl = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        ctx.memory_format = torch.channels_last if cl else torch.contiguous_format
        return x[..., x.size(3) - steps :]

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        out = torch.empty(
            ctx.shape, dtype=grad.dtype, device=grad.device, memory_format=ctx.memory_format
        )
        cut = ctx.shape[3] - grad.size(3)
        out[..., :cut].zero_()
        out[..., cut:].copy_(grad)
        return out, None


def _last_steps(x: torch.Tensor, steps: int, composed: bool = False) -> torch.Tensor:
    """``x[..., -steps:]`` of a ``(B, C, N, T)`` map, its gradient in ``x``'s layout;
    ``composed``: autograd's own slice (for ``torch.func`` transforms, as
    ``GatedTemporalConv.composed``)."""
    if steps == x.size(3):
        return x
    if composed or not torch.is_grad_enabled() or not x.requires_grad:
        return x[..., x.size(3) - steps :]
    return _LastSteps.apply(x, steps)


def _layer_norm(norm: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    """``norm(x)`` over ``(C, N, T)``, read and written in ``x``'s channels-last layout.

    The same elements are normalised together in either layout; this avoids the two copies
    that ``norm(x)`` makes of a channels-last ``x`` (to contiguous and back).
    """
    x_cl = x.permute(0, 2, 3, 1)  # (B, C, N, T) -> (B, N, T, C), a view
    if not x_cl.is_contiguous():
        return norm(x)
    weight = bias = None
    if norm.weight is not None:  # (C, N, T) -> (N, T, C)
        weight, bias = norm.weight.permute(1, 2, 0), norm.bias.permute(1, 2, 0)
    out = F.layer_norm(x_cl, x_cl.shape[1:], weight, bias, norm.eps)
    return out.permute(0, 3, 1, 2)  # (B, N, T, C) -> (B, C, N, T), channels-last


# The two configurations of the MTGNN paper (appendix), by name. Dataset-dependent values
# (num_nodes, seq_len, horizon, top_k for small graphs) are given when the preset is used.
PRESETS: dict[str, dict[str, Any]] = {
    "single_step": dict(
        layers=5,
        dilation_exponential=2,
        conv_channels=16,
        residual_channels=16,
        skip_channels=32,
        end_channels=64,
        node_dim=40,
        top_k=20,
        gcn_depth=2,
        prop_beta=0.05,
        tanh_alpha=3.0,
        dropout=0.3,
        seq_len=168,
        horizon=1,
        revin=False,
        layer_norm_affine=False,  # train_single_step.py builds gtnet(..., layer_norm_affline=False)
    ),
    "multi_step": dict(
        layers=3,
        dilation_exponential=1,
        conv_channels=32,
        residual_channels=32,
        skip_channels=64,
        end_channels=128,
        node_dim=40,
        top_k=20,
        gcn_depth=2,
        prop_beta=0.05,
        tanh_alpha=3.0,
        dropout=0.3,
        seq_len=12,
        horizon=12,
        revin=False,
        layer_norm_affine=True,  # train_multi_step.py builds gtnet(..., layer_norm_affline=True)
    ),
}


@dataclass
class MTGNNConfig:
    """Everything that defines an :class:`MTGNN`; round-trips through ``to_dict``/``from_dict``.

    The recipe switches: ``channel_independent`` (PatchTST), ``linear_shortcut``,
    ``decomposition_kernel`` and ``shortcut_per_variable`` (one map per variable, DLinear's
    ``individual=True``; :mod:`tsattn.nn.shortcut`), ``shortcut_cross_variable`` (the map of
    each variable reads every variable's look-back: the channel-dependent linear model, beside
    a network that may stay channel-independent), ``shortcut_per_phase`` (one map per block of
    the cycle's positions, shared by every variable, picked by the block of each window's first
    forecast step: a periodic autoregression, whose weights change with the hour of the day;
    needs ``cycle_length``), ``shortcut_level`` (the linear map reads, beside the normalised
    look-back, how far the look-back's mean lies from the training series' mean in units of its
    spread, :meth:`MTGNN.level_offset`, so that its forecast can revert part of the way to the
    long-run level, which RevIN hides from it; needs ``linear_shortcut="linear"`` and
    ``revin``), ``cycle_length`` (a learned periodic
    component of that many steps, CycleNet: :mod:`tsattn.nn.cycle`; 0 is off, and a model with a
    cycle reads each window's grid position, ``forward``'s ``step``), ``head_stride`` (the deep
    path forecasts every ``head_stride``-th step of the horizon and interpolates linearly
    between those knots: N-HiTS' hierarchical interpolation, Challu et al., AAAI 2023,
    https://arxiv.org/abs/2201.12886; 1 forecasts every step, as MTGNN does), ``input_scales``
    (the gated TCN reads, beside each series, its centred moving averages over these odd
    numbers of steps, one input channel each: the series at coarser scales, as TimeMixer mixes
    them, Wang et al., ICLR 2024, https://arxiv.org/abs/2405.14616; empty reads the series
    alone).

    >>> cfg = MTGNNConfig(num_nodes=7, seq_len=96, horizon=24, mixer="identity")
    >>> MTGNNConfig.from_dict(cfg.to_dict()) == cfg
    True
    """

    num_nodes: int
    seq_len: int = 96
    horizon: int = 96
    layers: int = 3
    kernel_set: tuple[int, ...] = (2, 3, 6, 7)
    dilation_exponential: int = 1
    conv_channels: int = 32
    residual_channels: int = 32
    skip_channels: int = 64
    end_channels: int = 128
    dropout: float = 0.3
    graph: bool = True
    node_dim: int = 40
    top_k: int = 20
    gcn_depth: int = 2
    prop_beta: float = 0.05
    tanh_alpha: float = 3.0
    mixer: str = "identity"
    mixer_kwargs: dict[str, Any] = field(default_factory=dict)
    fusion: str = "skip"
    fusion_kwargs: dict[str, Any] = field(default_factory=dict)
    revin: bool = True
    revin_affine: bool = True
    time_features: int = 0
    layer_norm_affine: bool = True
    channel_independent: bool = False
    linear_shortcut: str = "none"
    decomposition_kernel: int = 25
    shortcut_per_variable: bool = False
    shortcut_cross_variable: bool = False
    shortcut_per_phase: bool = False
    shortcut_level: bool = False
    cycle_length: int = 0
    head_stride: int = 1
    input_scales: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        self.kernel_set = tuple(int(k) for k in self.kernel_set)
        self.input_scales = tuple(self.input_scales)
        self.mixer_kwargs = dict(self.mixer_kwargs)
        self.fusion_kwargs = dict(self.fusion_kwargs)
        checks = [
            (self.num_nodes >= 1, "num_nodes must be >= 1 (the number of variables)"),
            (self.seq_len >= 1, "seq_len must be >= 1 (input steps)"),
            (self.horizon >= 1, "horizon must be >= 1 (steps to forecast)"),
            (self.layers >= 1, "layers must be >= 1"),
            (len(self.kernel_set) >= 1, "kernel_set must hold at least one kernel size"),
            (all(k >= 1 for k in self.kernel_set), "every kernel size must be >= 1"),
            (self.dilation_exponential >= 1, "dilation_exponential must be >= 1"),
            (self.conv_channels % max(1, len(self.kernel_set)) == 0,
             f"conv_channels must be a multiple of len(kernel_set)={len(self.kernel_set)}"),
            (min(self.conv_channels, self.residual_channels, self.skip_channels,
                 self.end_channels) >= 1, "channel widths must be >= 1"),
            (0.0 <= self.dropout < 1.0, "dropout must lie in [0, 1)"),
            (self.node_dim >= 1, "node_dim must be >= 1"),
            (self.top_k >= 1, "top_k must be >= 1"),
            (self.gcn_depth >= 1, "gcn_depth must be >= 1"),
            (0.0 <= self.prop_beta <= 1.0, "prop_beta must lie in [0, 1]"),
            (self.time_features >= 0, "time_features must be >= 0"),
            (self.linear_shortcut in SHORTCUTS,
             f"linear_shortcut must be one of {', '.join(SHORTCUTS)}"),
            (self.decomposition_kernel >= 1 and self.decomposition_kernel % 2 == 1,
             "decomposition_kernel must be an odd size >= 1"),
            (isinstance(self.shortcut_per_variable, bool),
             "shortcut_per_variable must be true or false ('auto' is for the trainer, which "
             "scores both starts on the validation windows)"),
            (not (self.shortcut_per_variable and self.linear_shortcut == "none"),
             "shortcut_per_variable=True gives a linear shortcut one map per variable, so it "
             "needs linear_shortcut='linear' or 'dlinear'"),
            (isinstance(self.shortcut_cross_variable, bool),
             "shortcut_cross_variable must be true or false ('auto' is for the trainer, "
             "which scores the starts on the validation windows)"),
            (not (self.shortcut_cross_variable and self.linear_shortcut != "linear"),
             "shortcut_cross_variable=True maps every variable's look-back to each forecast, "
             "so it needs linear_shortcut='linear'"),
            (not (self.shortcut_cross_variable and self.shortcut_per_variable),
             "shortcut_cross_variable=True already gives each variable its own map: set "
             "shortcut_per_variable=False"),
            (isinstance(self.shortcut_per_phase, bool),
             "shortcut_per_phase must be true or false ('auto' is for the trainer, which "
             "scores the starts on the validation windows)"),
            (not (self.shortcut_per_phase and self.linear_shortcut != "linear"),
             "shortcut_per_phase=True gives the linear map one set of weights per block of the "
             "cycle, so it needs linear_shortcut='linear'"),
            (not (self.shortcut_per_phase and not self.cycle_length),
             "shortcut_per_phase=True reads each window's place in the cycle, so it needs "
             "cycle_length > 0"),
            (not (self.shortcut_per_phase
                  and (self.shortcut_per_variable or self.shortcut_cross_variable)),
             "shortcut_per_phase=True shares each block's map by every variable: set "
             "shortcut_per_variable=False and shortcut_cross_variable=False"),
            (isinstance(self.shortcut_level, bool),
             "shortcut_level must be true or false ('auto' is for the trainer, which scores "
             "the start with and without it on the validation windows)"),
            (not (self.shortcut_level and (self.linear_shortcut != "linear" or not self.revin)),
             "shortcut_level=True gives the linear map the look-back's distance from the "
             "training level, in RevIN's units, so it needs linear_shortcut='linear' and "
             "revin=True"),
            (isinstance(self.cycle_length, int) and self.cycle_length >= 0,
             "cycle_length must be an int >= 0 (0 turns the cycle off; 'auto' is for the "
             "trainer, which sets it from the data's step)"),
            (isinstance(self.head_stride, int) and self.head_stride >= 1,
             "head_stride must be an int >= 1 (1 forecasts every step of the horizon)"),
            (all(isinstance(k, int) and k >= 3 and k % 2 == 1 for k in self.input_scales),
             "input_scales must hold odd ints >= 3 (the steps of each centred moving average "
             "the network reads beside the series)"),
            (not (self.channel_independent and self.graph),
             "channel_independent=True runs every variable on its own, so it needs graph=False"),
        ]  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise ValueError(f"invalid MTGNNConfig: {message}; got {self._short()}.")

    def _short(self) -> str:
        return ", ".join(
            f"{f.name}={getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
            if f.name in ("num_nodes", "seq_len", "horizon", "layers", "kernel_set",
                          "dilation_exponential", "conv_channels", "dropout", "graph",
                          "channel_independent", "linear_shortcut", "cycle_length", "head_stride",
                          "input_scales")
        )  # fmt: skip

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.kernel_set, self.layers, self.dilation_exponential)

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values only (lists for tuples), safe for YAML and JSON."""
        out = dataclasses.asdict(self)
        out["kernel_set"] = list(self.kernel_set)
        out["input_scales"] = list(self.input_scales)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MTGNNConfig:
        reject_unknown("MTGNNConfig field", data, cls)
        return cls(**dict(data))

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> MTGNNConfig:
        """One of the paper's configurations (``single_step``, ``multi_step``) plus overrides.

        >>> MTGNNConfig.preset("single_step", num_nodes=321).receptive_field
        187
        """
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}.")
        return cls(**{**PRESETS[name], **overrides})


class MTGNN(nn.Module):
    """``forward(x: (B, T, N), x_mark: (B, T, F) | None, step: (B,) | None) -> (B, H, N)``.

    ``step`` is the grid position of each window's first input row (the batch's fourth item);
    only a model with ``cycle_length > 0`` reads it, and it needs it.

    >>> model = MTGNN(MTGNNConfig(num_nodes=3, seq_len=24, horizon=6, layers=2))
    >>> model(torch.randn(4, 24, 3)).shape
    torch.Size([4, 6, 3])
    """

    def __init__(self, config: MTGNNConfig) -> None:
        super().__init__()
        self.config = cfg = config
        in_dim = 1 + len(cfg.input_scales) + cfg.time_features
        self.input_length = max(cfg.seq_len, cfg.receptive_field)
        # the head's outputs: the horizon's steps 0, s, 2 s, ... up to the first at or past
        # its last step (all H steps when s = 1)
        self.knots = -(-(cfg.horizon - 1) // cfg.head_stride) + 1

        # Channel independence runs every variable as its own one-node series.
        self.node_count = 1 if cfg.channel_independent else cfg.num_nodes

        self.revin = RevIN(cfg.num_nodes, affine=cfg.revin_affine) if cfg.revin else None
        self.shortcut = (
            LinearShortcut(
                cfg.linear_shortcut,
                cfg.seq_len + int(cfg.shortcut_level),  # the level offset, one input more
                cfg.horizon,
                cfg.decomposition_kernel,
                num_nodes=cfg.num_nodes
                if cfg.shortcut_per_variable or cfg.shortcut_cross_variable
                else None,
                cross_variable=cfg.shortcut_cross_variable,
                phases=phase_blocks(cfg.cycle_length) if cfg.shortcut_per_phase else None,
            )
            if cfg.linear_shortcut != "none"
            else None
        )
        if cfg.shortcut_level:
            # the training series' mean of each variable, in input units (fit_start sets it)
            self.register_buffer("level", torch.zeros(cfg.num_nodes))
        self.cycle = (
            ResidualCycle(cfg.cycle_length, cfg.num_nodes) if cfg.cycle_length > 0 else None
        )
        self.graph_learner = (
            GraphLearner(cfg.num_nodes, cfg.node_dim, cfg.top_k, cfg.tanh_alpha)
            if cfg.graph
            else None
        )
        self.start_conv = nn.Conv2d(in_dim, cfg.residual_channels, kernel_size=1)

        self.temporal = nn.ModuleList()
        self.mixers = nn.ModuleList()
        self.graph_convs = nn.ModuleList()  # per layer: MixHop pair, or a 1x1 conv
        self.norms = nn.ModuleList()
        lengths = [self.input_length]
        length, dilation = self.input_length, 1
        for _ in range(cfg.layers):
            tconv = GatedTemporalConv(
                cfg.residual_channels, cfg.conv_channels, cfg.kernel_set, dilation
            )
            length = tconv.output_length(length)
            lengths.append(length)
            self.temporal.append(tconv)
            self.mixers.append(create_mixer(cfg.mixer, cfg.conv_channels, **cfg.mixer_kwargs))
            if cfg.graph:
                self.graph_convs.append(
                    nn.ModuleList(
                        MixHop(
                            cfg.conv_channels, cfg.residual_channels, cfg.gcn_depth, cfg.prop_beta
                        )
                        for _ in range(2)
                    )
                )
            else:
                self.graph_convs.append(nn.Conv2d(cfg.conv_channels, cfg.residual_channels, 1))
            self.norms.append(
                nn.LayerNorm(
                    (cfg.residual_channels, self.node_count, length),
                    elementwise_affine=cfg.layer_norm_affine,
                )
            )
            dilation *= cfg.dilation_exponential
        lengths.append(length)  # the last layer's output closes the pyramid
        channels = [in_dim] + [cfg.conv_channels] * cfg.layers + [cfg.residual_channels]
        self.fusion = create_fusion(
            cfg.fusion,
            channels,
            lengths,
            **{"out_channels": cfg.skip_channels, **cfg.fusion_kwargs},
        )
        self.head = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(self.fusion.out_channels, cfg.end_channels, (1, self.fusion.out_length)),
            nn.ReLU(),
            nn.Conv2d(cfg.end_channels, self.knots, kernel_size=1),
        )
        if self.shortcut is not None:
            # Beside a linear shortcut the deep path starts at zero, so training starts from
            # the linear forecast and the network learns what the linear map misses.
            nn.init.zeros_(self.head[-1].weight)
            nn.init.zeros_(self.head[-1].bias)

    def adjacency(self) -> torch.Tensor:
        """The learned graph ``(N, N)``: ``A[v, w] > 0`` means node ``v`` reads from node ``w``."""
        if self.graph_learner is None:
            raise ValueError("this model has graph=False: it learns no adjacency matrix.")
        with torch.no_grad():
            return self.graph_learner().detach().clone()

    def shortcut_phase(self, step: torch.Tensor | None) -> torch.Tensor | None:
        """``(B,)``: the phase block of each window's first forecast step, which picks its map
        where the shortcut has one per block (``shortcut_per_phase``); ``None`` otherwise."""
        if not self.config.shortcut_per_phase:
            return None
        return phase_block(step + self.config.seq_len, self.config.cycle_length)

    def level_offset(self, stats: RevINStats) -> torch.Tensor:
        """``(B, 1, N)``: how far the training series' mean (``level``) lies from each
        window's mean, in units of the window's spread: RevIN's statistics ``stats``.

        RevIN forecasts every window relative to its own mean, so a map of the normalised
        look-back cannot tell a window far above the series' usual level from one at it.
        Given this offset as one more input (``shortcut_level``), the linear map's weight on it
        at step ``h`` moves the denormalised forecast a share of the way from the window's mean
        to the training level: the reversion to the mean that RevIN takes away. Predicting a
        window's future statistics from its own is what SAN does (Liu et al., "Adaptive
        Normalization for Non-stationary Time Series Forecasting: A Temporal Slice
        Perspective", NeurIPS 2023); here the weights are part of the shortcut's closed-form fit.

        >>> model = MTGNN(MTGNNConfig(num_nodes=2, seq_len=4, horizon=2, layers=1,
        ...                           linear_shortcut="linear", shortcut_level=True))
        >>> x = torch.tensor([[[1.0, 0.0], [3.0, 0.0], [1.0, 2.0], [3.0, 2.0]]])  # (1, 4, 2)
        >>> offset = model.level_offset(model.revin.normalize(x)[1])  # (1, 1, 2)
        >>> [round(v, 4) for v in offset.flatten().tolist()]
        [-2.0, -1.0]
        """
        return (self.level - stats.mean) / stats.std

    def _check_input(
        self, x: torch.Tensor, x_mark: torch.Tensor | None, step: torch.Tensor | None
    ) -> None:
        cfg = self.config
        if x.dim() != 3:
            raise ValueError(f"x has shape {tuple(x.shape)}: expected (B, T, N), 3 dimensions.")
        if x.size(2) != cfg.num_nodes:
            raise ValueError(
                f"x has {x.size(2)} variables (shape {tuple(x.shape)}) but the model was built "
                f"for num_nodes={cfg.num_nodes}: build the config with num_nodes={x.size(2)}."
            )
        if x.size(1) != cfg.seq_len:
            raise ValueError(
                f"x has {x.size(1)} time steps (shape {tuple(x.shape)}) but the model was built "
                f"for seq_len={cfg.seq_len}."
            )
        if cfg.time_features and (
            x_mark is None or x_mark.shape != (*x.shape[:2], cfg.time_features)
        ):
            got = None if x_mark is None else tuple(x_mark.shape)
            raise ValueError(
                f"x_mark has shape {got}: the model was built with time_features="
                f"{cfg.time_features}, pass (B, T, {cfg.time_features})."
            )
        if cfg.cycle_length and (step is None or step.shape != (x.size(0),)):
            got = None if step is None else tuple(step.shape)
            raise ValueError(
                f"step has shape {got}: the model has cycle_length={cfg.cycle_length} and needs "
                f"each window's grid position, pass step of shape ({x.size(0)},)."
            )

    def forward(
        self,
        x: torch.Tensor,
        x_mark: torch.Tensor | None = None,
        step: torch.Tensor | None = None,
    ) -> torch.Tensor:
        cfg = self.config
        self._check_input(x, x_mark, step)
        if self.revin is not None:
            x, stats = self.revin.normalize(x)  # (B, T, N)
        if self.cycle is not None:
            x = x - self.cycle(step, 0, cfg.seq_len)  # (B, T, N), the cycle's residual
        linear = None
        if self.shortcut is not None:
            inputs = x
            if cfg.shortcut_level:  # (B, T, N) -> (B, T + 1, N): the offset after the window
                inputs = torch.cat([x, self.level_offset(stats)], dim=1)
            linear = self.shortcut(inputs, self.shortcut_phase(step))  # -> (B, H, N)
        batch, steps, nodes = x.shape
        if cfg.channel_independent:
            x = x.transpose(1, 2).reshape(batch * nodes, steps, 1)  # (B, T, N) -> (B*N, T, 1)
            if cfg.time_features:
                x_mark = x_mark.repeat_interleave(nodes, dim=0)  # (B, T, F) -> (B*N, T, F)
        if cfg.input_scales:  # (B', T, N') -> (B', T, N', 1 + S): the series, then its averages
            x = torch.stack([x, *(moving_average(x, k) for k in cfg.input_scales)], dim=3)
            h = x.permute(0, 3, 2, 1)  # (B', T, N', 1 + S) -> (B', 1 + S, N', T)
        else:
            h = x.transpose(1, 2).unsqueeze(1)  # (B', T, N') -> (B', 1, N', T)
        if cfg.time_features:
            marks = x_mark.transpose(1, 2).unsqueeze(2)  # (B', T, F) -> (B', F, 1, T)
            marks = marks.expand(-1, -1, self.node_count, -1)  # -> (B', F, N', T)
            h = torch.cat([h, marks.to(h.dtype)], dim=1)  # -> (B, 1 + S + F, N, T)
        if h.size(3) < self.input_length:
            h = F.pad(h, (self.input_length - h.size(3), 0))  # (B, D, N, T) -> (B, D, N, RF)

        adj, support, support_t = None, None, None
        if self.graph_learner is not None:
            adj, support = self.graph_learner.learn()  # (N, N), its kept entries
            support_t = support.transpose()[0] if support is not None else None
        pyramid = [_dropout(h, cfg.dropout, self.training)]  # (B, D, N, T0)
        # (B, D, N, T0) -> (B, C_res, N, T0), channels-last as every layer reads and writes it
        # (the gated convolution would copy it there; the residual sum keeps its layout)
        h = self.start_conv(h).contiguous(memory_format=torch.channels_last)
        for tconv, mixer, gconv, norm in zip(
            self.temporal, self.mixers, self.graph_convs, self.norms, strict=True
        ):
            residual = h
            h = tconv(h)  # (B, C_res, N, T) -> (B, C_conv, N, T')
            h = _dropout(h, cfg.dropout, self.training)
            h = mixer(h)  # (B, C_conv, N, T') -> (B, C_conv, N, T')
            pyramid.append(h)
            if adj is not None:
                h = mix_hop_pair(gconv, h, adj, support, support_t)  # -> (B, C_res, N, T')
            else:
                h = gconv(h)  # (B, C_conv, N, T') -> (B, C_res, N, T')
            # residual first: the sum takes its channels-last layout, which the norm reads
            h = _last_steps(residual, h.size(3), tconv.composed) + h
            h = _layer_norm(norm, h)
        pyramid.append(h)

        fused = self.fusion(pyramid)  # -> (B, C_skip, N, T_f)
        out = self.head(fused)  # (B, C_skip, N, T_f) -> (B, K, N, 1)
        out = out.squeeze(3)  # (B', K, N', 1) -> (B', K, N'), K = self.knots
        if cfg.head_stride > 1:
            out = _interpolate(out, cfg.head_stride, cfg.horizon)  # -> (B', H, N')
        if cfg.channel_independent:
            out = out.reshape(batch, nodes, -1).transpose(1, 2)  # (B*N, H, 1) -> (B, H, N)
        if linear is not None:
            out = out + linear  # (B, H, N)
        if self.cycle is not None:
            out = out + self.cycle(step, cfg.seq_len, cfg.horizon)  # (B, H, N)
        if self.revin is not None:
            out = self.revin.denormalize(out, stats)
        return out
