"""Run a stage's own validation on a model, per image type (the checkpoint CLI is ``python evaluate.py``)."""
from __future__ import annotations

import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from engine.device import resolve_device
from engine.report import overall, per_type_table
from engine.stages import get_task


def evaluate(model, config: dict, device: str = "auto", prepare_val=None) -> dict:
    """``config``: the model's resolved config (as its checkpoint stores it, overrides applied).
    ``prepare_val(val_dataset, cfg)`` may adjust the validation set first (stage 1: real stage-0 results)."""
    cfg = OmegaConf.create(config)
    dev = resolve_device(device)
    task = get_task(cfg.stage)
    _, val = task.build_datasets(cfg, with_train=False)
    if prepare_val is not None:
        prepare_val(val, cfg)
    loader = DataLoader(val, batch_size=int(cfg.trainer.batch_size), num_workers=int(cfg.data.num_workers))
    with torch.no_grad():
        return {f"val/{k}": v for k, v in task.validate(model.to(dev), loader, cfg, dev).items()}


def report(metrics: dict) -> str:
    return (", ".join(f"{k}={v:.4g}" for k, v in overall(metrics).items()) + "\n" +
            per_type_table(metrics).to_string(float_format=lambda v: f"{v:.3f}"))
