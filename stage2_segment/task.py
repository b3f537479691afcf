"""Stage 2's face to the shared training loop (see engine/stages.py).  Validation is the competition metric end to
end on the validation fold: masks -> ``pagekit.extract`` -> ``pagekit.metric``, per image type."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from data import geometry as G
from engine.cache import cached_splits
from engine.data import image_jobs, split_images
from engine.device import to_device
from engine.logger import heat_overlay
from engine.report import flat_metrics, summarize_by_type
from pagekit.extract import ExtractConfig, extract_leads
from pagekit.metric import image_ratio, to_db
from pagekit.registry import create_model, plain
from stage1_rectify.rectifier import Rectifier
from stage2_segment.dataset import SegmentDataset, cache_job
from stage2_segment.losses import segmentation_loss
from stage2_segment.model_series import SeriesNet  # noqa: F401  (registers series)
from stage2_segment.model_whole import WholeNet  # noqa: F401  (registers whole)
from stage2_segment.predict import forward_probs

MONITOR_MODE = "max"


def build_model(cfg) -> torch.nn.Module:
    m = plain(cfg.model)
    if m.get("name") == "series" and m.get("crop_h"):
        raise ValueError("the series model cuts row strips from whole page columns: set model.crop_h=null")
    return create_model(m)


def extract_config(m) -> ExtractConfig:
    return ExtractConfig(**plain(m.get("extract") or {}))


def build_datasets(cfg, with_train: bool = True):
    m, root, k = cfg.model, Path(cfg.data.dir), G.scales(cfg.model.page_k)
    rectify_with = list(m.get("rectify_with") or [])
    train, val = split_images(cfg, with_train, labelled=not rectify_with)
    if rectify_with:      # real images: pages from stages 0 and 1, targets from the signal
        rectifier = Rectifier.from_checkpoints(rectify_with, k, device=str(cfg.trainer.device))
    else:
        rectifier = Rectifier({}, k, source="gt")
    cache = Path(cfg.data.get("cache_dir") or root / f".cache_stage2_{k[0]:g}x{k[1]:g}")
    items_t, items_v = cached_splits(image_jobs(root, train), image_jobs(root, val), cache_job(cache, k, rectifier),
                                     "stage2 cache", bool(cfg.trainer.progress))
    kw = dict(k=k, sigma=float(m.target_sigma), seed=int(cfg.seed))
    return (SegmentDataset(items_t, train=True, crop_h=m.get("crop_h"), crop_w=m.get("crop_w"),
                           shift_px=float(m.shift_px), stretch=float(m.stretch), hflip=float(m.hflip),
                           strength=float(cfg.augment.strength), **kw),
            SegmentDataset(items_v, train=False, **kw))


def loss(batch: dict, out: dict, cfg):
    return segmentation_loss(out, batch, cfg.model)


def score_pages(probs: np.ndarray, truths: list, k, ecfg: ExtractConfig) -> list[dict]:
    """(N, R, H, W) page probabilities + [(fs, type, true leads, layout)] -> one row per image with its SNR ratio
    (each page's first ``layout.n_rows`` channels: the rest pad a batch of layouts with fewer rows)."""
    rows = []
    for p, (fs, image_type, leads, layout) in zip(probs, truths):
        pred = extract_leads(p[:layout.n_rows], {lead: len(v) for lead, v in leads.items()}, fs, k, ecfg, layout)
        rows.append({"type": image_type, "ratio": image_ratio(leads, pred, fs)})
    return rows


@torch.no_grad()
def validate(model, loader, cfg, device) -> dict:
    ds: SegmentDataset = loader.dataset
    w, h = G.page_size(ds.k)
    ecfg, tta = extract_config(cfg.model), bool(cfg.model.get("tta_flip"))
    rows, losses = [], []
    for batch in loader:
        b = to_device(batch, device)
        out = model(b)
        losses.append(float(loss(b, out, cfg)[0]))
        probs = forward_probs(model, b["image"], b["coords"], tta, out, b.get("baselines"))[..., :h, :w].cpu().numpy()
        rows += score_pages(probs, [ds.truth(int(i)) for i in batch["idx"]], ds.k, ecfg)
    snr = lambda rs: {"snr_db": float(to_db(np.mean([r["ratio"] for r in rs])))}     # noqa: E731
    return {"loss": float(np.mean(losses)), **flat_metrics(*summarize_by_type(rows, snr))}


@torch.no_grad()
def preview(model, ds: SegmentDataset, cfg, device, n: int = 2) -> list[np.ndarray]:
    """Validation pages with the predicted traces in red, for the run logger."""
    out = []
    for i in range(min(n, len(ds))):
        item = ds[i]
        prob = forward_probs(model, item["image"][None].to(device), item["coords"][None].to(device),
                             baselines=item["baselines"][None].to(device))
        out.append(heat_overlay(item["image"], prob[0].max(0).values.cpu().numpy()))
    return out
