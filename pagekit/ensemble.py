"""Load stage checkpoints (no Hydra, no internet) and combine several of one stage into one model whose outputs
are the weighted average of the members' probabilities, returned as logits again so that every stage's
``predict`` works on it unchanged."""
from __future__ import annotations

import torch
from omegaconf import OmegaConf
from torch import nn

from pagekit.registry import load_model, override

SOFTMAX_KEYS = {"orientation", "col", "row"}     # class logits over dim 1; every other output is sigmoid logits
SAME = {0: ("input_size",), 1: ("input_size", "cache_size"), 2: ("page_k",)}   # what members must share


class EnsembleModel(nn.Module):
    def __init__(self, models: list[nn.Module], weights: list[float] | None = None):
        super().__init__()
        self.models = nn.ModuleList(models)
        w = torch.tensor(weights if weights is not None else [1.0] * len(models), dtype=torch.float32)
        self.register_buffer("weights", w / w.sum(), persistent=False)

    def forward(self, batch: dict) -> dict:
        if len(self.models) == 1:
            return self.models[0](batch)
        acc: dict[str, torch.Tensor] = {}
        for model, w in zip(self.models, self.weights):
            for key, v in model(batch).items():
                if not v.is_floating_point():
                    continue
                p = torch.softmax(v.float(), 1) if key in SOFTMAX_KEYS else torch.sigmoid(v.float())
                acc[key] = acc.get(key, 0) + w * p
        eps = 1e-6
        return {key: torch.log(p.clamp_min(eps)) if key in SOFTMAX_KEYS else torch.logit(p.clamp(eps, 1 - eps))
                for key, p in acc.items()}


def load_stages(paths: list[str], weights: list[float] | None = None, device="cpu",
                overrides: dict | None = None) -> dict[int, tuple[nn.Module, dict, list]]:
    """Checkpoints of any stages -> {stage id: (model or ensemble, config of the first member, members)}."""
    weights = list(weights) if weights is not None else [1.0] * len(paths)
    if len(weights) != len(paths):
        raise ValueError(f"{len(weights)} weights for {len(paths)} checkpoints")
    by_stage: dict[int, list] = {}
    for path, w in zip(paths, weights):
        model, cfg = load_model(path, device)
        stage = int(cfg["stage"]["id"])
        if (overrides or {}).get(stage):     # decoding settings only: the weights are built already
            cfg = OmegaConf.to_container(override(OmegaConf.create(cfg), overrides[stage],
                                                  f"stage-{stage} checkpoint {path}"), resolve=True)
        by_stage.setdefault(stage, []).append((model.to(device), cfg, w, path))
    out = {}
    for stage, members in by_stage.items():
        first = members[0][1]["model"]
        for _, cfg, _, path in members[1:]:
            for key in SAME[stage]:
                if cfg["model"].get(key) != first.get(key):
                    raise ValueError(f"stage-{stage} ensemble: {path} has model.{key}={cfg['model'].get(key)}, "
                                     f"{members[0][3]} has {first.get(key)}; members must share it")
        models = [m for m, *_ in members]
        out[stage] = (EnsembleModel(models, [w for _, _, w, _ in members]).to(device), members[0][1], models)
    return out
