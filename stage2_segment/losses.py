"""Stage-2 losses on (B, 4, H, W) trace logits and masks, each weighted in the model config for ablations:
BCE with ``pos_weight`` (the trace is ~0.1 % of the page), soft Dice, and a column-wise distribution loss
(``column_loss``: ``ce`` = cross-entropy of the softmax over y against the normalised target column;
``softargmax`` = L1 between the softmax's expected y and the true y).  ``out["weight"]`` (series model) marks the
page rows the model predicts; the rest is left out."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _dice(prob: torch.Tensor, target: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    p, t = prob * w, target * w
    inter = (p * t).sum((2, 3))
    return (1 - (2 * inter + 1) / (p.sum((2, 3)) + t.sum((2, 3)) + 1)).mean()


def _column(logits: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    mass = target.sum(2)                                  # (B, R, W): 1 where the column holds the trace
    valid = mass > 0.5
    if not valid.any():
        return logits.sum() * 0
    logp = F.log_softmax(logits, 2)
    if kind == "ce":
        return -((target / mass.clamp_min(1e-6)[:, :, None]) * logp).sum(2)[valid].mean()
    if kind == "softargmax":
        y = torch.arange(logits.shape[2], device=logits.device, dtype=logits.dtype)[None, None, :, None]
        pred = (logp.exp() * y).sum(2)
        true = (target * y).sum(2) / mass.clamp_min(1e-6)
        return (pred - true).abs()[valid].mean()
    raise ValueError(f"model.column_loss must be ce or softargmax, got {kind!r}")


def segmentation_loss(out: dict, batch: dict, m) -> tuple[torch.Tensor, dict]:
    logits, target = out["logits"].float(), batch["mask"].float()
    w = out["weight"].float() if "weight" in out else torch.ones_like(target)
    pos_weight = torch.tensor(float(m["pos_weight"]), device=logits.device)
    bce = F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight, reduction="none")
    parts = {"bce": (bce * w).sum() / w.sum().clamp_min(1)}
    total = parts["bce"]
    if float(m.get("dice_weight") or 0) > 0:
        parts["dice"] = _dice(torch.sigmoid(logits), target, w)
        total = total + float(m["dice_weight"]) * parts["dice"]
    if float(m.get("column_weight") or 0) > 0:
        parts["column"] = _column(logits, target * w, m.get("column_loss", "ce"))
        total = total + float(m["column_weight"]) * parts["column"]
    return total, {k: v.detach() for k, v in parts.items()}
