"""Checks of the training config before anything runs: a value of the wrong type or out of range is named in one
line (``optimizer.lr='abc': expected a number > 0``) instead of failing deep inside the loop minutes later.
Hydra already rejects unknown keys (configs are structs); this covers the values."""
from __future__ import annotations

import numbers

import torch
from omegaconf import OmegaConf

from engine.optim import OPTIMIZERS, SCHEDULES


class ConfigError(ValueError):
    """A config value the run cannot use; the message names the key."""


def _num(v, integer: bool) -> bool:
    return isinstance(v, numbers.Integral if integer else numbers.Real) and not isinstance(v, bool)


# key: (integer?, lowest, highest, lowest allowed itself?, may be null?)
RANGES = {
    "seed": (True, 0, None, True, False),
    "optimizer.lr": (False, 0, None, False, False),
    "optimizer.weight_decay": (False, 0, None, True, False),
    "optimizer.momentum": (False, 0, 1, True, True),
    "scheduler.warmup_frac": (False, 0, 1, True, True),
    "scheduler.warmup_steps": (True, 0, None, True, True),
    "scheduler.final_frac": (False, 0, 1, True, False),
    "trainer.epochs": (True, 1, None, True, False),
    "trainer.batch_size": (True, 1, None, True, False),
    "trainer.grad_accum": (True, 1, None, True, False),
    "trainer.clip_grad": (False, 0, None, True, True),
    "trainer.ema": (False, 0, 1, False, True),
    "trainer.val_every": (True, 1, None, True, False),
    "trainer.max_steps_per_epoch": (True, 1, None, True, True),
    "trainer.stop_after_epochs": (True, 1, None, True, True),
    "data.n_folds": (True, 2, None, True, False),
    "data.val_fold": (True, 0, None, True, False),
    "data.num_workers": (True, 0, None, True, False),
    "data.max_images": (True, 1, None, True, True),
    "augment.strength": (False, 0, None, True, True),
}
CHOICES = {
    "optimizer.name": tuple(OPTIMIZERS),
    "scheduler.name": tuple(SCHEDULES),
    "trainer.precision": ("auto", "bf16", "fp16", "fp32"),
}


def check_config(cfg) -> None:
    """Raise ConfigError naming the first bad value."""
    for key, (integer, lo, hi, lo_ok, nullable) in RANGES.items():
        v = OmegaConf.select(cfg, key, default="__absent__")
        if v == "__absent__" or (v is None and nullable):
            continue
        kind = "an integer" if integer else "a number"
        bound = " and ".join(b for b in ((f">= {lo}" if lo_ok else f"> {lo}") if lo is not None else "",
                                          f"<= {hi}" if hi is not None else "") if b)
        ok = _num(v, integer) and (lo is None or v > lo or (lo_ok and v == lo)) and (hi is None or v <= hi)
        if not ok:
            raise ConfigError(f"{key}={v!r}: expected {kind}{' ' + bound if bound else ''}")
    for key, allowed in CHOICES.items():
        v = OmegaConf.select(cfg, key, default=None)
        if v is not None and str(v).lower() not in allowed:
            raise ConfigError(f"{key}={v!r}: expected one of {', '.join(allowed)}")
    if cfg.data.val_fold >= cfg.data.n_folds:
        raise ConfigError(f"data.val_fold={cfg.data.val_fold}: expected < data.n_folds ({cfg.data.n_folds})")
    device = str(cfg.trainer.device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"trainer.device={device}: no GPU is visible here (use auto or cpu)")
    encoder = OmegaConf.select(cfg, "model.encoder", default=None)
    if encoder is not None and not _known_encoder(str(encoder)):
        raise ConfigError(f"model.encoder={encoder!r}: not an encoder timm knows; the configs name timm models as "
                          f"tu-<name> (e.g. tu-resnet18, tu-efficientnet_b3; list them with timm.list_models())")


def _known_encoder(name: str) -> bool:
    import timm

    if name.startswith("tu-"):
        return bool(timm.is_model(name[3:]) or timm.list_models(name[3:]))
    from segmentation_models_pytorch.encoders import get_encoder_names
    return name in get_encoder_names()
