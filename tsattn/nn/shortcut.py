"""Linear maps of the look-back window, added beside the deep path of a forecaster.

- ``linear``: one ``nn.Linear(L, H)`` along time, shared by every variable (RLinear: Li et al.,
  "Revisiting Long-term Time Series Forecasting: An Investigation on Linear Mapping", 2023,
  https://arxiv.org/abs/2305.10721). Applied after RevIN, it is RLinear.
- ``dlinear``: DLinear's decomposition (Zeng et al., "Are Transformers Effective for Time Series
  Forecasting?", AAAI 2023, https://arxiv.org/abs/2205.13504): a moving average (edge-replicated,
  odd ``kernel_size``, 25 in the paper) splits the window into trend and remainder, each mapped
  to the horizon by its own shared ``nn.Linear(L, H)``, and the two forecasts are added.

The maps are shared across variables (DLinear's ``individual=False``), or, with ``num_nodes``
given, one per variable (DLinear's ``individual=True``; :class:`PerVariableLinear`), or, with
``cross_variable`` too, one per forecast variable that reads every variable's look-back
(:class:`CrossVariableLinear`, the channel-dependent linear model of Han et al., "The Capacity
and Robustness Trade-off: Revisiting the Channel Independent Strategy for Multivariate Time
Series Forecasting", TKDE 2024, https://arxiv.org/abs/2304.05206: more capacity, less
robustness to a shift between the training and later months), or, with ``phases`` given, one
per block of a cycle's positions, shared by every variable (:class:`PerPhaseLinear`: a
periodic autoregression, Pagano, "On Periodic and Multiple Autoregressions", The Annals of
Statistics 1978, https://doi.org/10.1214/aos/1176344366, whose coefficients change with the
season; here with the hour of the day a window's forecast starts at). Departure:
both paths are initialised as in ``nn.Linear`` (DLinear's official code sets every weight to
``1 / L``, a moving average of the whole window).

:meth:`LinearShortcut.fit_least_squares` sets the maps to the closed-form (ridge) least-squares
fit of a set of windows. Toner and Darlow ("An Analysis of Linear Time Series Forecasting
Models", ICML 2024, https://arxiv.org/abs/2403.14587) show that these linear forecasters are all
linear regressions of the look-back, and that the closed-form fit matches or beats the
gradient-trained one; the trainer uses it to start the shortcut at that fit
(``TrainConfig.shortcut_init``). Maps per variable are each fitted to their variable's windows,
or shrunk towards the shared fit (``shrink``: ridge regression towards a common estimate, as in
multi-task learning; a large ``shrink`` gives the shared maps back); maps per phase block are
always shrunk so, by :data:`PHASE_SHRINK` unless told otherwise.

>>> shortcut = LinearShortcut("dlinear", seq_len=96, horizon=24)
>>> shortcut(torch.randn(8, 96, 7)).shape
torch.Size([8, 24, 7])
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "CROSS_RIDGE",
    "PHASE_BLOCKS",
    "PHASE_SHRINK",
    "SHORTCUTS",
    "CrossVariableLinear",
    "LinearShortcut",
    "PerPhaseLinear",
    "PerVariableLinear",
    "moving_average",
    "phase_block",
    "phase_blocks",
]

SHORTCUTS = ("none", "linear", "dlinear")
#: relative ridge penalty of the closed-form fit of cross-variable maps (``N * L`` regressors
#: each), chosen from 0.1, 1 and 10 on the start's validation windows: within 0.7 % of the best
#: on every ETTm1 and weather cell, where the others lose up to 6 %
#: (experiments/results/start_search/cross_ridge.md); the other maps keep ``OWN_RIDGE``
CROSS_RIDGE = 1.0
#: relative ridge penalty of the closed-form fit of the other maps (keeps DLinear's two
#: collinear parts solvable; a larger one validated worse, experiments/results/start_search)
OWN_RIDGE = 1e-4
#: maps per phase block cut a cycle into at most this many blocks of consecutive positions (an
#: hour each on a daily cycle; a cycle of fewer positions gets one block per position)
PHASE_BLOCKS = 24
#: relative penalty that pulls the closed-form fit of each phase block's map towards the map
#: shared by every block, chosen from 0.1, 1, 3 and 10 on the start's validation windows: the
#: lowest on ETTh1, ETTm1 and weather at every horizon scored
#: (experiments/results/start_search/per_phase.md); alone (0), a block's few windows over-fit
PHASE_SHRINK = 1.0


def phase_blocks(cycle_length: int) -> int:
    """The number of phase blocks of maps per phase block on a cycle of ``cycle_length``.

    >>> [phase_blocks(w) for w in (7, 24, 96, 168)]
    [7, 24, 24, 24]
    """
    return min(cycle_length, PHASE_BLOCKS)


def phase_block(step: torch.Tensor, cycle_length: int) -> torch.Tensor:
    """``(B,)`` long: the block of the cycle (of :func:`phase_blocks` blocks) that each grid
    position in ``step`` falls in.

    >>> phase_block(torch.tensor([0, 3, 4, 95, 96]), 96).tolist()
    [0, 0, 1, 23, 0]
    """
    blocks = phase_blocks(cycle_length)
    return (step.long() % cycle_length) * blocks // cycle_length


def moving_average(x: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Centred moving average along time of ``(B, T, N)``, edges replicated; same shape out.

    >>> moving_average(torch.arange(5.0).reshape(1, 5, 1), 3).flatten().tolist()
    [0.3333333432674408, 1.0, 2.0, 3.0, 3.6666667461395264]
    """
    half = (kernel_size - 1) // 2
    series = x.transpose(1, 2)  # (B, T, N) -> (B, N, T)
    series = F.pad(series, (half, half), mode="replicate")  # (B, N, T) -> (B, N, T + k - 1)
    trend = F.avg_pool1d(series, kernel_size, stride=1)  # (B, N, T + k - 1) -> (B, N, T)
    return trend.transpose(1, 2)  # (B, N, T) -> (B, T, N)


class PerVariableLinear(nn.Module):
    """``(B, N, L) -> (B, N, H)``: a separate ``nn.Linear(L, H)`` for each of ``N`` variables,
    stored as ``weight (N, H, L)`` and ``bias (N, H)`` and initialised as ``nn.Linear``."""

    def __init__(self, num_nodes: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = in_features**-0.5
        self.weight = nn.Parameter(torch.empty(num_nodes, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(num_nodes, out_features))
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bnl,nhl->bnh", x, self.weight) + self.bias  # (B, N, H)


class CrossVariableLinear(PerVariableLinear):
    """``(B, N, L) -> (B, N, H)``: the forecast of each of ``N`` variables is a linear map of
    every variable's ``L`` inputs: a :class:`PerVariableLinear` of ``N * L`` inputs (``weight
    (N, H, N * L)``, the inputs in the order of ``x.flatten(1)``: variable by variable) that
    every variable reads whole, run as one matrix product.

    >>> layer = CrossVariableLinear(3, 8, 4)
    >>> layer(torch.randn(2, 3, 8)).shape
    torch.Size([2, 3, 4])
    """

    def __init__(self, num_nodes: int, in_features: int, out_features: int) -> None:
        super().__init__(num_nodes, num_nodes * in_features, out_features)
        self.num_nodes = num_nodes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes, horizon = self.num_nodes, self.out_features
        weight = self.weight.reshape(nodes * horizon, self.in_features)  # one matrix product
        out = F.linear(x.flatten(1), weight, self.bias.reshape(-1))  # (B, N * L) -> (B, N * H)
        return out.view(x.size(0), nodes, horizon)  # (B, N * H) -> (B, N, H)


class PerPhaseLinear(PerVariableLinear):
    """``(B, N, L), phase (B,) -> (B, N, H)``: a separate ``nn.Linear(L, H)`` for each of
    ``phases`` blocks of a cycle (``weight (P, H, L)``, ``bias (P, H)``); each window is mapped
    by the map of its own block, ``phase`` (ints in ``[0, P)``), the same for all its variables.

    >>> layer = PerPhaseLinear(4, 8, 3)
    >>> layer(torch.randn(2, 5, 8), torch.tensor([0, 3])).shape
    torch.Size([2, 5, 3])
    """

    def __init__(self, phases: int, in_features: int, out_features: int) -> None:
        super().__init__(phases, in_features, out_features)
        self.phases = phases

    def forward(self, x: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        weight = self.weight[phase]  # (P, H, L) -> (B, H, L)
        return torch.einsum("bnl,bhl->bnh", x, weight) + self.bias[phase][:, None, :]


class LinearShortcut(nn.Module):
    """``(B, L, N) -> (B, H, N)``: ``linear`` or ``dlinear`` (see the module docstring), its
    maps shared by every variable, or one per variable when ``num_nodes`` is given, reading
    every variable's look-back with ``cross_variable`` (``linear`` only), or one per phase block
    when ``phases`` is given (``linear`` only; ``forward`` then reads each window's block)."""

    def __init__(
        self,
        kind: str,
        seq_len: int,
        horizon: int,
        kernel_size: int = 25,
        num_nodes: int | None = None,
        cross_variable: bool = False,
        phases: int | None = None,
    ) -> None:
        super().__init__()
        if kind not in SHORTCUTS[1:]:
            raise ValueError(f"linear shortcut {kind!r}: choose one of {', '.join(SHORTCUTS[1:])}.")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                f"kernel_size={kernel_size}: the moving average needs an odd size >= 1."
            )
        if num_nodes is not None and num_nodes < 1:
            raise ValueError(f"num_nodes={num_nodes}: maps per variable need at least one.")
        if cross_variable and (num_nodes is None or kind != "linear"):
            raise ValueError(
                f"cross_variable=True with kind={kind!r}, num_nodes={num_nodes}: maps that read "
                "every variable need kind='linear' and the number of variables."
            )
        if phases is not None and (phases < 1 or kind != "linear" or num_nodes is not None):
            raise ValueError(
                f"phases={phases} with kind={kind!r}, num_nodes={num_nodes}: maps per phase block "
                "need at least one block, kind='linear', and are shared by every variable "
                "(num_nodes=None)."
            )
        self.kind = kind
        self.kernel_size = kernel_size
        self.num_nodes = num_nodes
        self.cross_variable = cross_variable
        self.phases = phases

        def make() -> nn.Module:
            if phases is not None:
                return PerPhaseLinear(phases, seq_len, horizon)
            if cross_variable:
                return CrossVariableLinear(num_nodes, seq_len, horizon)
            if num_nodes is None:
                return nn.Linear(seq_len, horizon)
            return PerVariableLinear(num_nodes, seq_len, horizon)

        self.linear = make()
        self.trend = make() if kind == "dlinear" else None

    def forward(self, x: torch.Tensor, phase: torch.Tensor | None = None) -> torch.Tensor:
        """``phase (B,)``: each window's phase block, for maps per phase block (only)."""
        if (phase is None) != (self.phases is None):
            raise ValueError(
                f"phase {'missing' if phase is None else 'given'}: maps per phase block read "
                f"each window's block, the others none (this shortcut has phases={self.phases})."
            )
        if phase is not None:
            return self.linear(x.transpose(1, 2), phase).transpose(1, 2)  # -> (B, H, N)
        if self.trend is None:
            return self.linear(x.transpose(1, 2)).transpose(1, 2)  # (B, L, N) -> (B, H, N)
        trend = moving_average(x, self.kernel_size)  # (B, L, N)
        season = (x - trend).transpose(1, 2)  # (B, L, N) -> (B, N, L)
        out = self.linear(season) + self.trend(trend.transpose(1, 2))  # (B, N, L) -> (B, N, H)
        return out.transpose(1, 2)  # (B, N, H) -> (B, H, N)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        """The regressors of each series: ``(B, L, N) -> (B, N, F)``, ``F`` = L, 2L (dlinear)
        or N * L (cross_variable: every variable's window, the same for each series)."""
        if self.cross_variable:
            every = x.transpose(1, 2).flatten(1)  # (B, L, N) -> (B, N * L), variable by variable
            return every[:, None, :].expand(-1, x.size(2), -1)  # -> (B, N, N * L)
        if self.trend is None:
            parts = [x]
        else:
            trend = moving_average(x, self.kernel_size)
            parts = [x - trend, trend]  # the inputs of self.linear and self.trend
        return torch.cat([p.transpose(1, 2) for p in parts], dim=2)

    @torch.no_grad()
    def fit_least_squares(
        self,
        windows: Iterable[tuple[torch.Tensor, ...]],
        ridge: float | None = None,
        shrink: float | None = None,
    ) -> int:
        """Set the weights to the least-squares fit of ``windows``, in closed form.

        ``windows`` yields ``(x (B, L, N), y (B, H, N))`` in this module's input and output
        space, or ``(x, y, weight (B, N))`` for a weighted fit, and for maps per phase block
        ``(x, y, weight, phase (B,))`` (``weight`` may be ``None``: unweighted); every variable
        of every window is one sample (of the shared map, of its variable's map, or of its
        window's phase block's map), and ``weight`` scales its
        squared error (the trainer passes each window's variance, so that the fit minimises the
        error of the denormalised forecast: ``TrainConfig.shortcut_init``). The normal equations
        are summed in float64 batch by batch, so memory does not grow with the data.
        ``ridge`` is relative: ``ridge * mean(diag(X^T W X))`` is added to the diagonal (the two
        DLinear parts sum to the window, so their regressors are collinear without it); by
        default ``1e-4``, and :data:`CROSS_RIDGE` for cross-variable maps, whose ``N * L``
        regressors over-fit the training months without a real penalty.
        Maps per variable (``num_nodes``) are fitted to their own variable's samples; with
        ``shrink`` > 0 each is instead pulled towards the shared fit, weights and intercept, by
        the penalty ``shrink * mean(diag(X_n^T W X_n)) * |map - shared|^2`` (``ridge`` then
        applies to the shared fit alone). A variable with no sample gets the shared fit. Maps
        per phase block are fitted so to their block's samples, ``shrink`` :data:`PHASE_SHRINK`
        by default (0: each block alone).
        Samples with a NaN or inf are left out; with no finite sample left, the weights stay as
        they were. Returns the number of samples fitted.

        >>> torch.manual_seed(0) is not None
        True
        >>> x = torch.randn(64, 8, 3)
        >>> y = x.flip(1)[:, :4] * 2.0 + 1.0  # an exact linear map of the window
        >>> sc = LinearShortcut("linear", seq_len=8, horizon=4)
        >>> sc.fit_least_squares([(x, y)], ridge=0.0)
        192
        >>> bool(torch.allclose(sc(x), y, atol=1e-4))
        True
        """
        if ridge is None:
            ridge = CROSS_RIDGE if self.cross_variable else OWN_RIDGE
        if shrink is None:
            shrink = PHASE_SHRINK if self.phases is not None else 0.0
        if shrink < 0 or ridge < 0:
            raise ValueError(f"ridge={ridge} and shrink={shrink} must both be >= 0.")
        if shrink and self.cross_variable:
            raise ValueError(
                f"shrink={shrink}: cross-variable maps have no shared map to shrink towards."
            )
        groups = self.phases or self.num_nodes  # maps fitted apart: per phase block or variable
        gram = cross = None
        counts = None
        for x, y, *rest in windows:
            feats = self._features(x.double())  # (B, N, F)
            feats = torch.cat([feats, torch.ones_like(feats[..., :1])], dim=2)  # + intercept
            target = y.double().transpose(1, 2)  # (B, H, N) -> (B, N, H)
            weight = rest[0] if rest and rest[0] is not None else None
            w = weight.double() if weight is not None else torch.ones_like(target[..., 0])
            finite = feats.isfinite().all(2) & target.isfinite().all(2) & w.isfinite()  # (B, N)
            zero = torch.zeros((), dtype=feats.dtype)
            feats = torch.where(finite[..., None], feats, zero)
            target = torch.where(finite[..., None], target, zero)
            w = torch.where(finite, w, zero)
            if self.phases is not None:
                if len(rest) < 2:
                    raise ValueError("maps per phase block need each window's block: yield "
                                     "(x, y, weight, phase).")  # fmt: skip
                g, c, n = _sums_per_phase(feats, w, target, finite, rest[1], self.phases)
            else:
                apart = "n" if self.num_nodes is not None else ""  # per variable, or summed
                g = torch.einsum(f"bnf,bn,bng->{apart}fg", feats, w, feats)  # ([N,] F+1, F+1)
                c = torch.einsum(f"bnf,bn,bnh->{apart}fh", feats, w, target)  # ([N,] F+1, H)
                n = finite.sum(0)  # (N,)
            gram, cross, counts = (g, c, n) if gram is None else (gram + g, cross + c, counts + n)
        if gram is None:
            raise ValueError("fit_least_squares got no windows to fit.")
        count = int(counts.sum())
        if count == 0:
            return 0
        if groups is None:
            solution = _solve(gram, cross, ridge)  # (F+1, H)
        else:
            if gram.shape[0] != groups:
                raise ValueError(
                    f"fit_least_squares got windows of {gram.shape[0]} variables for maps of "
                    f"{groups}."
                )
            shared = _solve(gram.sum(0), cross.sum(0), ridge)  # (F+1, H)
            solution = torch.stack([
                shared if counts[i] == 0
                else _solve(gram[i], cross[i], shrink, shared) if shrink
                else _solve(gram[i], cross[i], ridge)
                for i in range(groups)
            ])  # (G, F+1, H)  # fmt: skip
        weights = solution[..., :-1, :].transpose(-1, -2)  # (..., H, F)
        bias = solution[..., -1, :]  # (..., H)
        length = self.linear.in_features
        self.linear.weight.copy_(weights[..., :length])
        self.linear.bias.copy_(bias)
        if self.trend is not None:
            self.trend.weight.copy_(weights[..., length:])
            self.trend.bias.zero_()
        return count


def _sums_per_phase(
    feats: torch.Tensor,
    w: torch.Tensor,
    target: torch.Tensor,
    finite: torch.Tensor,
    phase: torch.Tensor,
    phases: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The weighted normal equations of each phase block, ``(P, F+1, F+1)`` and ``(P, F+1, H)``,
    and its number of finite samples ``(P,)``, from a batch's ``feats (B, N, F+1)``,
    ``w (B, N)``, ``target (B, N, H)``, ``finite (B, N)`` and ``phase (B,)``; one product per
    block the batch holds."""
    gram = feats.new_zeros(phases, feats.size(2), feats.size(2))
    cross = feats.new_zeros(phases, feats.size(2), target.size(2))
    counts = torch.zeros(phases, dtype=torch.long)
    phase = phase.long().cpu()
    for block in phase.unique().tolist():
        rows = phase == block
        f, weight = feats[rows], w[rows]  # (b, N, F+1), (b, N)
        gram[block] = torch.einsum("bnf,bn,bng->fg", f, weight, f)
        cross[block] = torch.einsum("bnf,bn,bnh->fh", f, weight, target[rows])
        counts[block] = int(finite[rows].sum())
    return gram, cross, counts


def _solve(
    gram: torch.Tensor,
    cross: torch.Tensor,
    penalty: float,
    towards: torch.Tensor | None = None,
) -> torch.Tensor:
    """``(F+1, H)``: the ridge solution of normal equations whose last row and column are the
    intercept's. The penalty is relative, ``penalty * mean(diag)`` over the regressors; it
    spares the intercept and pulls towards zero, or covers the intercept too and pulls towards
    the solution ``towards``."""
    gram = gram.clone()
    size = gram.shape[0] - 1
    strength = penalty * gram.diagonal()[:size].mean()
    if towards is None:
        gram[range(size), range(size)] += strength
        return torch.linalg.lstsq(gram, cross).solution
    gram.diagonal().add_(strength)
    return torch.linalg.lstsq(gram, cross + strength * towards).solution
