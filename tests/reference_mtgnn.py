"""A textbook re-implementation of the official MTGNN forward (``gtnet``), for parity and speed.

Wu et al., "Connecting the Dots: Multivariate Time Series Forecasting with Graph Neural
Networks", KDD 2020, https://arxiv.org/abs/2005.11650. Written the way the authors' ``net.py``
and ``layer.py`` compute it, not the way tsattn does:

- each dilated inception is four separate convolutions (kernels 2, 3, 6, 7) cropped to the
  shortest output and concatenated, once for the ``tanh`` filter and once for the ``sigmoid``
  gate: eight convolutions per layer;
- mix-hop propagation is a dense ``einsum`` per hop with ``D^-1 (A + I)``, the hops are
  concatenated on channels and mixed by a 1x1 convolution (``mixprop``);
- one skip convolution per layer whose kernel spans the layer's whole length, plus ``skip0``
  on the (dropped-out) input and ``skipE`` on the last layer's output;
- the LayerNorm over ``(C, N, T)`` indexes its affine weights with the node ids, as the
  official ``LayerNorm(input, idx)`` does; dropout is ``F.dropout``.

Departures, all of which tsattn shares: the top-k tie-break noise is the learner's fixed
``tie_break`` buffer instead of fresh ``rand_like`` noise on every call, and the
``residual_convs`` that the official model builds but never uses when the graph is on are
left out. Only the official architecture is covered: ``mixer="identity"``, ``fusion="skip"``,
``revin=False``, ``graph=True``, ``time_features=0``.

``TextbookMTGNN.from_model(model)`` copies the weights of a :class:`tsattn.MTGNN`;
``parameter_pairs(model, textbook)`` pairs every tsattn parameter with its textbook twin, so
tests can compare gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tsattn import MTGNN, MTGNNConfig


class TextbookDilatedInception(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel_set: tuple[int, ...], dilation: int):
        super().__init__()
        self.tconv = nn.ModuleList(
            nn.Conv2d(c_in, c_out // len(kernel_set), (1, k), dilation=(1, dilation))
            for k in kernel_set
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [conv(x) for conv in self.tconv]
        outs = [out[..., -outs[-1].size(3) :] for out in outs]
        return torch.cat(outs, dim=1)


class TextbookMixProp(nn.Module):
    def __init__(self, c_in: int, c_out: int, depth: int, alpha: float):
        super().__init__()
        self.depth, self.alpha = depth, alpha
        self.mlp = nn.Conv2d((depth + 1) * c_in, c_out, kernel_size=1)

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        adj = adj + torch.eye(adj.size(0), device=x.device)
        a = adj / adj.sum(1).view(-1, 1)
        h, out = x, [x]
        for _ in range(self.depth):
            h = self.alpha * x + (1 - self.alpha) * torch.einsum("ncwl,vw->ncvl", h, a).contiguous()
            out.append(h)
        return self.mlp(torch.cat(out, dim=1))


class TextbookGraphConstructor(nn.Module):
    def __init__(self, num_nodes: int, k: int, dim: int, alpha: float):
        super().__init__()
        self.k, self.alpha = k, alpha
        self.emb1 = nn.Embedding(num_nodes, dim)
        self.emb2 = nn.Embedding(num_nodes, dim)
        self.lin1 = nn.Linear(dim, dim)
        self.lin2 = nn.Linear(dim, dim)
        self.register_buffer("tie_break", torch.rand(num_nodes, num_nodes) * 0.01)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        v1 = torch.tanh(self.alpha * self.lin1(self.emb1(idx)))
        v2 = torch.tanh(self.alpha * self.lin2(self.emb2(idx)))
        a = torch.mm(v1, v2.transpose(1, 0)) - torch.mm(v2, v1.transpose(1, 0))
        adj = F.relu(torch.tanh(self.alpha * a))
        if self.k >= idx.size(0):
            return adj
        mask = torch.zeros(idx.size(0), idx.size(0), device=adj.device)
        s1, t1 = (adj + self.tie_break).topk(self.k, 1)
        mask.scatter_(1, t1, s1.fill_(1))
        return adj * mask


class TextbookLayerNorm(nn.Module):
    def __init__(self, shape: tuple[int, int, int], affine: bool):
        super().__init__()
        self.shape, self.affine = shape, affine
        if affine:
            self.weight = nn.Parameter(torch.ones(shape))
            self.bias = nn.Parameter(torch.zeros(shape))

    def forward(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        if self.affine:
            weight, bias = self.weight[:, idx, :], self.bias[:, idx, :]
            return F.layer_norm(x, tuple(x.shape[1:]), weight, bias, 1e-5)
        return F.layer_norm(x, tuple(x.shape[1:]), None, None, 1e-5)


class TextbookMTGNN(nn.Module):
    """``forward(x: (B, T, N)) -> (B, H, N)``, the official ``gtnet`` computation."""

    def __init__(self, cfg: MTGNNConfig) -> None:
        super().__init__()
        unsupported = {
            "mixer": (cfg.mixer, "identity"),
            "fusion": (cfg.fusion, "skip"),
            "revin": (cfg.revin, False),
            "graph": (cfg.graph, True),
            "time_features": (cfg.time_features, 0),
        }
        for name, (got, want) in unsupported.items():
            if got != want:
                raise ValueError(f"the textbook MTGNN needs {name}={want!r}, got {got!r}.")
        self.cfg = cfg
        c_res, c_conv, c_skip = cfg.residual_channels, cfg.conv_channels, cfg.skip_channels
        self.receptive_field = cfg.receptive_field
        self.dropout = cfg.dropout
        self.start_conv = nn.Conv2d(1, c_res, kernel_size=1)
        self.gc = TextbookGraphConstructor(cfg.num_nodes, cfg.top_k, cfg.node_dim, cfg.tanh_alpha)
        self.filter_convs, self.gate_convs = nn.ModuleList(), nn.ModuleList()
        self.skip_convs, self.norm = nn.ModuleList(), nn.ModuleList()
        self.gconv1, self.gconv2 = nn.ModuleList(), nn.ModuleList()
        length = max(cfg.seq_len, self.receptive_field)
        self.skip0 = nn.Conv2d(1, c_skip, (1, length))
        dilation = 1
        for _ in range(cfg.layers):
            for convs in (self.filter_convs, self.gate_convs):
                convs.append(TextbookDilatedInception(c_res, c_conv, cfg.kernel_set, dilation))
            length -= dilation * (max(cfg.kernel_set) - 1)
            self.skip_convs.append(nn.Conv2d(c_conv, c_skip, (1, length)))
            for gconv in (self.gconv1, self.gconv2):
                gconv.append(TextbookMixProp(c_conv, c_res, cfg.gcn_depth, cfg.prop_beta))
            self.norm.append(
                TextbookLayerNorm((c_res, cfg.num_nodes, length), cfg.layer_norm_affine)
            )
            dilation *= cfg.dilation_exponential
        self.skipE = nn.Conv2d(c_res, c_skip, (1, length))
        self.end_conv_1 = nn.Conv2d(c_skip, cfg.end_channels, kernel_size=1)
        self.end_conv_2 = nn.Conv2d(cfg.end_channels, cfg.horizon, kernel_size=1)
        self.register_buffer("idx", torch.arange(cfg.num_nodes), persistent=False)

    @classmethod
    def from_model(cls, model: MTGNN) -> TextbookMTGNN:
        textbook = cls(model.config).to(next(model.parameters()).device)
        state = model.state_dict()
        textbook.load_state_dict(
            {name: state[twin] for name, twin in _twin_names(model.config).items()},
            strict=True,
        )
        return textbook

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inp = x.transpose(1, 2).unsqueeze(1)  # (B, T, N) -> (B, 1, N, T)
        if inp.size(3) < self.receptive_field:
            inp = F.pad(inp, (self.receptive_field - inp.size(3), 0, 0, 0))
        adp = self.gc(self.idx)
        x = self.start_conv(inp)
        skip = self.skip0(F.dropout(inp, self.dropout, training=self.training))
        for i in range(len(self.filter_convs)):
            residual = x
            filt = torch.tanh(self.filter_convs[i](x))
            gate = torch.sigmoid(self.gate_convs[i](x))
            x = filt * gate
            x = F.dropout(x, self.dropout, training=self.training)
            skip = self.skip_convs[i](x) + skip
            x = self.gconv1[i](x, adp) + self.gconv2[i](x, adp.transpose(1, 0))
            x = x + residual[:, :, :, -x.size(3) :]
            x = self.norm[i](x, self.idx)
        skip = self.skipE(x) + skip
        x = F.relu(skip)
        x = F.relu(self.end_conv_1(x))
        x = self.end_conv_2(x)  # (B, H, N, 1)
        return x.squeeze(3)  # (B, H, N, 1) -> (B, H, N)


def _twin_names(cfg: MTGNNConfig) -> dict[str, str]:
    """Textbook state-dict name -> tsattn state-dict name."""
    names = {"gc.tie_break": "graph_learner.tie_break"}
    for part in ("emb1.weight", "emb2.weight", "lin1.weight", "lin1.bias", "lin2.weight",
                 "lin2.bias"):  # fmt: skip
        names[f"gc.{part}"] = f"graph_learner.{part}"
    for p in ("weight", "bias"):
        names[f"start_conv.{p}"] = f"start_conv.{p}"
        names[f"skip0.{p}"] = f"fusion.convs.0.{p}"
        names[f"skipE.{p}"] = f"fusion.convs.{cfg.layers + 1}.{p}"
        names[f"end_conv_1.{p}"] = f"head.1.{p}"
        names[f"end_conv_2.{p}"] = f"head.3.{p}"
        for i in range(cfg.layers):
            for j in range(len(cfg.kernel_set)):
                names[f"filter_convs.{i}.tconv.{j}.{p}"] = f"temporal.{i}.filter.branches.{j}.{p}"
                names[f"gate_convs.{i}.tconv.{j}.{p}"] = f"temporal.{i}.gate.branches.{j}.{p}"
            names[f"skip_convs.{i}.{p}"] = f"fusion.convs.{i + 1}.{p}"
            names[f"gconv1.{i}.mlp.{p}"] = f"graph_convs.{i}.0.mlp.{p}"
            names[f"gconv2.{i}.mlp.{p}"] = f"graph_convs.{i}.1.mlp.{p}"
            if cfg.layer_norm_affine:
                names[f"norm.{i}.{p}"] = f"norms.{i}.{p}"
    return names


def parameter_pairs(
    model: MTGNN, textbook: TextbookMTGNN
) -> list[tuple[str, torch.nn.Parameter, torch.nn.Parameter]]:
    """``(tsattn name, tsattn parameter, textbook parameter)`` for every tsattn parameter."""
    ours = dict(model.named_parameters())
    theirs = dict(textbook.named_parameters())
    pairs = [(twin, ours[twin], theirs[name]) for name, twin in _twin_names(model.config).items()
             if name in theirs]  # fmt: skip
    missing = set(ours) - {name for name, _, _ in pairs}
    if missing:
        raise ValueError(f"tsattn parameters without a textbook twin: {sorted(missing)}")
    return pairs
