"""Stage-2 dataset.  Each image is rectified once at page scale ``page_k`` (one remap of the raw image through the
generator's ground-truth map, or through stages 0 and 1 with ``model.rectify_with``) and cached as a PNG with the
true trace y of every row at every column.  Items are then cheap: a random crop with a small sub-pixel shift and
vertical stretch (stage 1 leaves ~0.1 mm of error), photometric noise and a horizontal flip for training; the whole
page for validation, with what the end-to-end metric needs.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from data import geometry as G
from data.competition import lead_window
from engine.cache import CachedDataset, item_path, save_item
from pagekit.augment import photometric
from pagekit.image import pad_page, padded_page_size, page_coords, read_image
from stage2_segment.targets import row_columns, trace_masks


def cache_item(image_path: Path, signals_csv: Path, fs: int, cache_dir: Path, k, rectifier) -> Path:
    """``rectifier`` (``stage1_rectify.rectifier.Rectifier``): by the labels, or by stages 0 and 1 as real
    competition images need; the targets come from the signal either way, since the rectified geometry is fixed."""
    out = item_path(cache_dir, image_path, G.scales(k), "stage2", *rectifier.key)
    if out.is_file():
        return out
    page = rectifier.pages([read_image(image_path)], [Path(image_path)])[0]
    ok, png = cv2.imencode(".png", page)
    if not ok:
        raise ValueError(f"{image_path}: could not encode the rectified page")
    return save_item(out, page=png, ycols=row_columns(pd.read_csv(signals_csv), fs, k),
                     type=Path(image_path).stem.rsplit("-", 1)[1],
                     fs=fs, csv=str(signals_csv))


def cache_job(cache_dir: Path, k, rectifier):
    """job (image, signals csv, fs) -> its cached file."""
    def make(job) -> Path:
        image, csv, fs = job
        return cache_item(Path(image), Path(csv), int(fs), cache_dir, k, rectifier)
    cache_dir.mkdir(parents=True, exist_ok=True)
    return make


def true_leads(signals_csv: str | Path) -> dict[str, np.ndarray]:
    """lead -> the values inside its window (what the metric compares with)."""
    df = pd.read_csv(signals_csv)
    return {lead: lead_window(df[lead])[1] for lead in G.LEADS}


def shift_columns(ycols: np.ndarray, dx: float, dy: float, sy: float, cy: float) -> np.ndarray:
    """Trace y per column after the map (x, y) -> (x + dx, cy + sy (y - cy) + dy)."""
    W = ycols.shape[1]
    out = np.full_like(ycols, np.nan)
    x = np.arange(W) - dx
    for r, y in enumerate(ycols):
        known = np.flatnonzero(np.isfinite(y))
        if len(known) < 2:
            continue
        inside = (x >= known[0]) & (x <= known[-1])
        out[r, inside] = cy + sy * (np.interp(x[inside], known, y[known]) - cy) + dy
    return out


class SegmentDataset(CachedDataset, Dataset):
    """Train items: a ``crop_h`` x ``crop_w`` crop (``crop_h`` null = whole page height, as the series model
    needs).  Validation items: the whole padded page and the item index (for :meth:`truth`)."""

    def __init__(self, items: list[Path], k, train: bool, crop_h: int | None = None, crop_w: int | None = None,
                 sigma: float = 0.0, shift_px: float = 1.0, stretch: float = 0.01, hflip: float = 0.0,
                 strength: float = 1.0, seed: int = 0):
        super().__init__(items, seed)
        self.k, self.train, self.sigma = k, train, sigma
        self.size = padded_page_size(k)
        self.crop = (min(crop_w or self.size[0], self.size[0]), min(crop_h or self.size[1], self.size[1]))
        self.shift_px, self.stretch, self.hflip = shift_px, stretch, hflip
        self.aug = photometric(strength) if train and strength > 0 else None

    def truth(self, i: int) -> tuple[int, str, dict[str, np.ndarray]]:
        d = np.load(self.items[i])
        return int(d["fs"]), str(d["type"]), true_leads(str(d["csv"]))

    def __getitem__(self, i: int) -> dict:
        d = np.load(self.items[i])
        page = pad_page(cv2.cvtColor(cv2.imdecode(d["page"], cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB), self.k)
        ycols = np.full((G.N_ROWS, self.size[0]), np.nan, np.float32)
        ycols[:, :d["ycols"].shape[1]] = d["ycols"]
        coords = page_coords(self.size, self.k)
        if not self.train:
            return {"image": torch.from_numpy(page).permute(2, 0, 1).contiguous(), "coords": torch.from_numpy(coords),
                    "mask": torch.from_numpy(trace_masks(ycols, self.size[1], self.sigma)), "idx": i}
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, i]))
        dx, dy = rng.uniform(-self.shift_px, self.shift_px, 2)
        sy, cy = 1 + rng.uniform(-self.stretch, self.stretch), self.size[1] / 2
        M = np.float32([[1, 0, dx], [0, sy, cy * (1 - sy) + dy]])
        page = cv2.warpAffine(page, M, self.size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=(255, 255, 255))
        ycols = shift_columns(ycols, dx, dy, sy, cy)
        (cw, ch), (W, H) = self.crop, self.size
        x0, y0 = int(rng.integers(0, W - cw + 1)), int(rng.integers(0, H - ch + 1))
        page, coords = page[y0:y0 + ch, x0:x0 + cw], coords[:, y0:y0 + ch, x0:x0 + cw]
        mask = trace_masks(ycols[:, x0:x0 + cw] - y0, ch, self.sigma)
        if self.aug is not None:
            self.aug.set_random_seed(int(rng.integers(2 ** 31)))
            page = self.aug(image=np.ascontiguousarray(page))["image"]
        if rng.random() < self.hflip:     # coordinates flip with the pixels: they stay each pixel's page position
            page, coords, mask = page[:, ::-1], coords[:, :, ::-1], mask[:, :, ::-1]
        return {"image": torch.from_numpy(np.ascontiguousarray(page)).permute(2, 0, 1).contiguous(),
                "coords": torch.from_numpy(np.ascontiguousarray(coords)),
                "mask": torch.from_numpy(np.ascontiguousarray(mask))}
