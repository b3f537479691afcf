"""The face each stage's task module offers the training loop; the stage config names the module
(``stage.task`` in ``conf/stage/stageN.yaml``), so the engine imports no stage itself:

- ``build_model(cfg) -> nn.Module``        (forward(batch dict) -> output dict; ``pagekit.registry.create_model``)
- ``build_datasets(cfg, with_train=True) -> (train, val)``  (items are dicts of tensors/values; ``val`` may carry
  metadata; ``with_train=False`` leaves the training split empty, for evaluation)
- ``loss(batch, out, cfg) -> (loss, parts)``
- ``validate(model, loader, cfg, device) -> dict``  (holds ``cfg.stage.monitor``)
- ``MONITOR_MODE``: "min" or "max" for that metric
"""
from __future__ import annotations

import importlib

FACE = ("build_model", "build_datasets", "loss", "validate", "MONITOR_MODE")


def get_task(stage_cfg):
    """The task module that ``stage_cfg.task`` names, checked for the face above."""
    name = stage_cfg.get("task") if hasattr(stage_cfg, "get") else None
    if not name:
        raise ValueError(f"stage {stage_cfg.get('id', '?')}: its config names no task module (stage.task); "
                         "configs written before Nov 2026 lack it: compose a fresh one with stage=N")
    module = importlib.import_module(name)
    missing = [f for f in FACE if not hasattr(module, f)]
    if missing:
        raise TypeError(f"{name} is not a stage task: it lacks {missing}")
    return module
