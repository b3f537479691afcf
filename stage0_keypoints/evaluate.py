"""Evaluate a stage-0 checkpoint on its validation fold (or another data dir), per image type.

    python -m stage0_keypoints.evaluate CHECKPOINT [data.dir=DIR] [data.val_fold=K] [key=value ...]

Rebuilds the model from the checkpoint alone and runs the stage's validation (page-consistent keypoints).
"""
from __future__ import annotations

import sys

import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from engine.checkpoint import load_model
from engine.report import overall, per_type_table
from stage0_keypoints import task


def evaluate(checkpoint: str, overrides: list[str] | None = None, device: str = "cpu") -> dict:
    model, config = load_model(checkpoint)
    cfg = OmegaConf.merge(OmegaConf.create(config), OmegaConf.from_dotlist(overrides or []))
    _, val = task.build_datasets(cfg)
    loader = DataLoader(val, batch_size=int(cfg.trainer.batch_size), num_workers=int(cfg.data.num_workers))
    with torch.no_grad():
        return {f"val/{k}": v for k, v in task.validate(model.to(device), loader, cfg, torch.device(device)).items()}


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        raise SystemExit(__doc__)
    metrics = evaluate(argv[0], argv[1:], "cuda" if torch.cuda.is_available() else "cpu")
    print(", ".join(f"{k}={v:.4g}" for k, v in overall(metrics).items()))
    print(per_type_table(metrics).to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
