"""Stage 0's face to the shared training loop (see engine/stages.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.cache import cached_splits
from engine.data import split_images
from engine.device import to_device
from engine.report import flat_metrics
from pagekit.registry import create_model
from stage0_keypoints.dataset import KeypointDataset, cache_item
from stage0_keypoints.decode import decode_heatmaps, fit_page, peak_candidates
from stage0_keypoints.metric import image_errors, summarize
from stage0_keypoints.model import KeypointNet  # noqa: F401  (registers keypoint_unet)

MONITOR_MODE = "min"


def build_model(cfg) -> torch.nn.Module:
    return create_model(cfg.model)


def build_datasets(cfg, with_train: bool = True):
    train, val = split_images(cfg, with_train)
    m = cfg.model
    cache = Path(cfg.data.get("cache_dir") or Path(cfg.data.dir) / f".cache_stage0_{m.cache_size}")
    cache.mkdir(parents=True, exist_ok=True)
    train_items, val_items = cached_splits(train, val, lambda p: cache_item(Path(p), cache, int(m.cache_size)),
                                           "stage0 cache", bool(cfg.trainer.progress))
    a = cfg.augment
    return (KeypointDataset(train_items, int(m.input_size), float(m.sigma), True, int(cfg.seed), bool(a.rot90),
                            float(a.strength)),
            KeypointDataset(val_items, int(m.input_size), float(m.sigma), False))


def loss(batch: dict, out: dict, cfg):
    m = cfg.model
    pos_weight = torch.tensor(float(m.pos_weight), device=out["heatmap"].device)
    hm = F.binary_cross_entropy_with_logits(out["heatmap"].float(), batch["heatmap"], pos_weight=pos_weight)
    orient = F.cross_entropy(out["orientation"].float(), batch["orientation"])
    return hm + float(m.orient_weight) * orient, {"heatmap": hm.detach(), "orient": orient.detach()}


@torch.no_grad()
def validate(model, loader, cfg, device) -> dict:
    rows, losses = [], []
    for batch in loader:
        b = to_device(batch, device)
        out = model(b)
        losses.append(float(loss(b, out, cfg)[0]))
        prob = torch.sigmoid(out["heatmap"].float()).cpu().numpy()
        orient = out["orientation"].argmax(1).cpu().numpy()
        for j in range(len(prob)):
            to_image = float(batch["to_image"][j])
            ks, cand, conf = peak_candidates(prob[j])
            fit = fit_page(ks, cand * to_image, conf)
            argmax_px = decode_heatmaps(prob[j])[0] * to_image
            r = image_errors(fit, argmax_px, batch["true_px"][j].numpy(), batch["jac"][j].numpy(),
                             tuple(batch["image_size"][j].tolist()))
            rows.append({"type": batch["type"][j], **r,
                         "orient_ok": int(orient[j]) == int(batch["orientation"][j])})
    return {"loss": float(np.mean(losses)), **flat_metrics(*summarize(rows))}


@torch.no_grad()
def preview(model, ds: KeypointDataset, cfg, device, n: int = 4) -> list[np.ndarray]:
    """A few validation inputs with true (green) and predicted (red) keypoints, for the run logger."""
    import cv2

    out = []
    for i in range(min(n, len(ds))):
        item = ds[i]
        prob = torch.sigmoid(model({"image": item["image"][None].to(device)})["heatmap"].float())[0].cpu().numpy()
        pts, _ = decode_heatmaps(prob)
        img = np.ascontiguousarray(item["image"].permute(1, 2, 0).numpy()[..., ::-1])
        for (x, y), colour in [(p, (0, 200, 0)) for p in item["keypoints"].numpy()] + [(p, (0, 0, 255)) for p in pts]:
            cv2.circle(img, (int(round(x)), int(round(y))), 2, colour, -1)
        out.append(img)
    return out
