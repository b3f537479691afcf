"""Evaluate a checkpoint of any stage on its validation fold (or another data dir), per image type.

    python -m engine.evaluate CHECKPOINT [data.dir=DIR] [data.val_fold=K] [key=value ...]

Rebuilds the model from the checkpoint alone (no Hydra, no internet) and runs the stage's own validation; any
config key can be overridden, e.g. the stage-1 surface fit: ``model.smoothing=100 model.method=poly``.
"""
from __future__ import annotations

import sys

import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from engine.checkpoint import load_model
from engine.report import overall, per_type_table
from engine.stages import get_task


def evaluate(checkpoint: str, overrides: list[str] | None = None, device: str = "cpu", prepare_val=None) -> dict:
    """``prepare_val(val_dataset, cfg)`` may adjust the validation set first (stage 1: real stage-0 results)."""
    model, config = load_model(checkpoint, overrides=overrides)
    cfg = OmegaConf.create(config)
    task = get_task(int(cfg.stage.id))
    _, val = task.build_datasets(cfg, with_train=False)
    if prepare_val is not None:
        prepare_val(val, cfg)
    loader = DataLoader(val, batch_size=int(cfg.trainer.batch_size), num_workers=int(cfg.data.num_workers))
    with torch.no_grad():
        return {f"val/{k}": v for k, v in task.validate(model.to(device), loader, cfg, torch.device(device)).items()}


def report(metrics: dict) -> str:
    return (", ".join(f"{k}={v:.4g}" for k, v in overall(metrics).items()) + "\n" +
            per_type_table(metrics).to_string(float_format=lambda v: f"{v:.3f}"))


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        raise SystemExit(__doc__)
    print(report(evaluate(argv[0], argv[1:], "cuda" if torch.cuda.is_available() else "cpu")))


if __name__ == "__main__":
    main()
