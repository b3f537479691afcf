"""Stage 1's face to the shared training loop (see engine/stages.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.cache import cached_splits
from engine.data import image_jobs, split_images
from engine.device import to_device
from engine.logger import heat_overlay
from engine.report import flat_metrics
from pagekit.registry import create_model
from stage1_rectify.dataset import LatticeDataset, cache_job
from stage1_rectify.metric import image_errors, summarize
from stage1_rectify.model import LatticeNet  # noqa: F401  (registers lattice_unet)
from stage1_rectify.rectify import FitParams, fit_from_outputs
from stage1_rectify.targets import IGNORE

MONITOR_MODE = "min"


def build_model(cfg) -> torch.nn.Module:
    return create_model(cfg.model)


def build_datasets(cfg, with_train: bool = True):
    train, val = split_images(cfg, with_train)
    m, root = cfg.model, Path(cfg.data.dir)
    cache = Path(cfg.data.get("cache_dir") or root / f".cache_stage1_{m.cache_size}")
    items_t, items_v = cached_splits(image_jobs(root, train), image_jobs(root, val),
                                     cache_job(cache, int(m.cache_size)), "stage1 cache", bool(cfg.trainer.progress))
    kw = dict(input_size=int(m.input_size), sigma=float(m.sigma), jitter_mm=float(m.jitter_mm), seed=int(cfg.seed))
    return (LatticeDataset(items_t, train=True, crop=m.get("crop"), strength=float(cfg.augment.strength), **kw),
            LatticeDataset(items_v, train=False, **kw))


def loss(batch: dict, out: dict, cfg):
    m = cfg.model
    pos_weight = torch.tensor(float(m.pos_weight), device=out["heatmap"].device)
    hm = F.binary_cross_entropy_with_logits(out["heatmap"].float(), batch["heatmap"], pos_weight=pos_weight)
    col = F.cross_entropy(out["col"].float(), batch["col"], ignore_index=IGNORE)
    row = F.cross_entropy(out["row"].float(), batch["row"], ignore_index=IGNORE)
    total = hm + float(m.index_weight) * (col + row)
    return total, {"heatmap": hm.detach(), "col": col.detach(), "row": row.detach()}


@torch.no_grad()
def validate(model, loader, cfg, device) -> dict:
    params = FitParams.from_cfg(cfg.model)
    k = loader.dataset.k
    rows, losses, hits = [], [], np.zeros((2, 2))
    for batch in loader:
        b = to_device(batch, device)
        out = model(b)
        losses.append(float(loss(b, out, cfg)[0]))
        for a, name in enumerate(("col", "row")):       # per-pixel line-index accuracy on the page
            valid = b[name] != IGNORE
            hits[a] += (float((out[name].argmax(1) == b[name])[valid].sum()), float(valid.sum()))
        heat = torch.sigmoid(out["heatmap"].float()).cpu().numpy()
        col, row = out["col"].float().cpu().numpy(), out["row"].float().cpu().numpy()
        for j in range(len(heat)):
            fit, fallback, _ = fit_from_outputs(heat[j], col[j], row[j], k, params)
            err = image_errors(fit, batch["H"][j].numpy(), float(batch["scale"][j]), batch["trace_canon"][j].numpy(),
                               batch["trace_px"][j].numpy(), batch["trace_jac"][j].numpy())
            rows.append({"type": batch["type"][j], "errors": err, "fallback": fallback, "points": fit.n_points})
    return {"loss": float(np.mean(losses)), **flat_metrics(*summarize(rows)),
            "col_acc": hits[0, 0] / max(hits[0, 1], 1), "row_acc": hits[1, 0] / max(hits[1, 1], 1)}


@torch.no_grad()
def preview(model, ds: LatticeDataset, cfg, device, n: int = 2) -> list[np.ndarray]:
    """Validation pages with the predicted intersection heatmap in red, for the run logger."""
    out = []
    for i in range(min(n, len(ds))):
        item = ds[i]
        batch = {"image": item["image"][None].to(device), "coords": item["coords"][None].to(device)}
        heat = torch.sigmoid(model(batch)["heatmap"].float())[0].cpu().numpy()
        out.append(heat_overlay(item["image"], heat))
    return out
