"""Optimizer and per-step learning-rate schedule factories (warm-up, then cosine or one-cycle or constant)."""
from __future__ import annotations

import math

import torch

OPTIMIZERS = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "sgd": torch.optim.SGD}
SCHEDULES = ("cosine", "onecycle", "constant")


def build_optimizer(cfg, model: torch.nn.Module) -> torch.optim.Optimizer:
    name = cfg.name.lower()
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer.name must be one of {sorted(OPTIMIZERS)}, got {cfg.name!r}")
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 or n.endswith(".bias") else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    kw = {"lr": cfg.lr}
    if name == "sgd":
        kw["momentum"] = cfg.get("momentum", 0.9)
    return OPTIMIZERS[name](groups, **kw)


def _shape(name: str, warmup: int, total: int, final: float):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        p = min(1.0, (step - warmup) / max(1, total - warmup))
        if name == "constant":
            return 1.0
        if name == "cosine":
            return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * p))
        if name == "onecycle":  # linear anneal after the warm-up peak, as in the one-cycle policy
            return final + (1 - final) * (1 - p)
        raise ValueError(f"scheduler.name must be one of {', '.join(SCHEDULES)}, got {name!r}")
    return f


def build_scheduler(cfg, optimizer, total_steps: int):
    """A LambdaLR stepped once per optimizer step; its state_dict makes resume continue the schedule."""
    warmup = int(cfg.warmup_steps if cfg.get("warmup_steps") is not None else cfg.warmup_frac * total_steps)
    _shape(cfg.name, 1, 2, 0.0)(1)  # validate the name now, not at the first step after warm-up
    return torch.optim.lr_scheduler.LambdaLR(optimizer, _shape(cfg.name, max(warmup, 1), total_steps, cfg.final_frac))
