"""Registry of stage tasks.  Each task module offers the same small face to the training loop:

- ``build_model(cfg) -> nn.Module``        (forward(batch dict) -> output dict)
- ``build_datasets(cfg, with_train=True) -> (train, val)``  (items are dicts of tensors/values; ``val`` may carry
  metadata; ``with_train=False`` leaves the training split empty, for evaluation)
- ``loss(batch, out, cfg) -> (loss, parts)``
- ``validate(model, loader, cfg, device) -> dict``  (holds ``cfg.stage.monitor``)
- ``MONITOR_MODE``: "min" or "max" for that metric
"""
from __future__ import annotations

import importlib

STAGES = {0: "stage0_keypoints.task", 1: "stage1_rectify.task", 2: "stage2_segment.task"}


def get_task(stage_id: int):
    if stage_id not in STAGES:
        raise ValueError(f"stage must be one of {sorted(STAGES)}, got {stage_id}")
    return importlib.import_module(STAGES[stage_id])
