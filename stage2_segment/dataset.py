"""Stage-2 dataset.  Each image is rectified once at page scale ``page_k`` (one remap of the raw image through the
generator's ground-truth map, or through stages 0 and 1 with ``model.rectify_with``) and cached as a PNG with the
true trace y of every printed row at every column and the page's layout (its label's; the competition's page
without one).  Items are then cheap: a random crop with a small sub-pixel shift and vertical stretch (stage 1 leaves
~0.1 mm of error), photometric noise and a horizontal flip for training, on ``TRAIN_ROWS`` consecutive rows of the
layout (its baselines in the item); the whole page with every row for validation, with what the end-to-end metric
needs.
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
from data.labels import PageLabel, label_path
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
    label = label_path(image_path)
    layout = PageLabel.load(label).layout if label.is_file() else G.DEFAULT_LAYOUT
    return save_item(out, page=png, ycols=row_columns(pd.read_csv(signals_csv), fs, k, layout),
                     type=Path(image_path).stem.rsplit("-", 1)[1],
                     fs=fs, csv=str(signals_csv), layout=layout)


def cache_job(cache_dir: Path, k, rectifier):
    """job (image, signals csv, fs) -> its cached file."""
    def make(job) -> Path:
        image, csv, fs = job
        return cache_item(Path(image), Path(csv), int(fs), cache_dir, k, rectifier)
    cache_dir.mkdir(parents=True, exist_ok=True)
    return make


def true_leads(signals_csv: str | Path, layout=None) -> dict[str, np.ndarray]:
    """lead -> the values inside its window (what the metric compares with): the competition page's windows from
    the CSV itself (NaN outside them), another layout's from a CSV of whole leads."""
    df = pd.read_csv(signals_csv)
    lay = G.as_layout(layout)
    if lay.name == G.DEFAULT_LAYOUT:
        return {lead: lead_window(df[lead])[1] for lead in G.LEADS}
    return {lead: df[lead].to_numpy()[slice(*lay.lead_samples(lead, len(df)))] for lead in G.LEADS}


def item_layout(d) -> G.Layout:
    """The layout of a cached item (items cached before layouts: the competition's page)."""
    return G.as_layout(str(d["layout"]) if "layout" in d else None)


def row_window(n_rows: int, rng: np.random.Generator, n: int) -> np.ndarray:
    """Indices of ``n`` consecutive rows of ``n_rows`` (-1 past the last row when there are fewer): where a train
    item of a taller layout looks."""
    if n_rows <= n:
        return np.concatenate([np.arange(n_rows), np.full(n - n_rows, -1)])
    return np.arange(n) + int(rng.integers(0, n_rows - n + 1))


def collate(items: list[dict]) -> dict:
    """Stack items whose layouts print different numbers of rows: the rows padded with NaN baselines (no strip)
    and empty masks."""
    n = max(len(it["baselines"]) for it in items)
    out = {}
    for key in items[0]:
        vals = [it[key] for it in items]
        if key in ("baselines", "mask"):
            fill = float("nan") if key == "baselines" else 0.0
            vals = [torch.cat([v, v.new_full((n - len(v), *v.shape[1:]), fill)]) for v in vals]
        out[key] = torch.stack(vals) if torch.is_tensor(vals[0]) else torch.as_tensor(vals)
    return out


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
    needs) on ``TRAIN_ROWS`` rows.  Validation items: the whole padded page, every row, and the item index (for
    :meth:`truth`).  Every item carries its rows' ``baselines`` (canonical px; NaN = a padding row)."""
    TRAIN_ROWS = G.N_ROWS        # the competition page's four: its items are as they were before layouts
    collate = staticmethod(collate)

    def __init__(self, items: list[Path], k, train: bool, crop_h: int | None = None, crop_w: int | None = None,
                 sigma: float = 0.0, shift_px: float = 1.0, stretch: float = 0.01, hflip: float = 0.0,
                 strength: float = 1.0, seed: int = 0):
        super().__init__(items, seed)
        self.k, self.train, self.sigma = k, train, sigma
        self.size = padded_page_size(k)
        self.crop = (min(crop_w or self.size[0], self.size[0]), min(crop_h or self.size[1], self.size[1]))
        self.shift_px, self.stretch, self.hflip = shift_px, stretch, hflip
        self.aug = photometric(strength) if train and strength > 0 else None

    def truth(self, i: int) -> tuple[int, str, dict[str, np.ndarray], G.Layout]:
        d = np.load(self.items[i])
        layout = item_layout(d)
        return int(d["fs"]), str(d["type"]), true_leads(str(d["csv"]), layout), layout

    def __getitem__(self, i: int) -> dict:
        d = np.load(self.items[i])
        page = pad_page(cv2.cvtColor(cv2.imdecode(d["page"], cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB), self.k)
        layout = item_layout(d)
        ycols = np.full((layout.n_rows, self.size[0]), np.nan, np.float32)
        ycols[:, :d["ycols"].shape[1]] = d["ycols"]
        baselines = np.asarray(layout.baselines, np.float32)
        coords = page_coords(self.size, self.k)
        if not self.train:
            return {"image": torch.from_numpy(page).permute(2, 0, 1).contiguous(), "coords": torch.from_numpy(coords),
                    "mask": torch.from_numpy(trace_masks(ycols, self.size[1], self.sigma)), "idx": i,
                    "baselines": torch.from_numpy(baselines)}
        rows = row_window(layout.n_rows, np.random.default_rng([self.seed, self.epoch, i, 1]), self.TRAIN_ROWS)
        ycols = np.where(rows[:, None] >= 0, ycols[rows], np.nan)
        baselines = np.where(rows >= 0, baselines[rows], np.nan).astype(np.float32)
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
                "mask": torch.from_numpy(np.ascontiguousarray(mask)), "baselines": torch.from_numpy(baselines)}
