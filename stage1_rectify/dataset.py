"""Stage-1 dataset.  Each labelled image is downscaled once into an on-disk cache together with what the targets
and the metric need: the homography of a perfect stage 0 (raw px -> canonical page, least squares over the
lattice), the canonical position of every cached pixel, and labelled trace points with their true image positions.

Each item then plays stage 0: the homography is perturbed by a random page-corner displacement of about the size
of stage 0's errors, and the cached image is warped onto that normalised page (one warp, at ``input_size`` page
width), where the targets are read off the warped canonical-position map.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
from scipy.interpolate import griddata
from torch.utils.data import Dataset

from data import geometry as G
from data.labels import MAP_STRIDE, PageLabel, label_path, map_grid_shape
from engine.cache import CachedDataset, item_path, save_item
from pagekit.augment import photometric
from pagekit.image import downscale, page_coords, read_image, warp_to_page
from stage1_rectify.model import page_input_size
from stage1_rectify.targets import lattice_targets

CANON_STRIDE = 2        # the canonical-position map is stored at every 2nd cached pixel
N_TRACE = 1024          # labelled trace points kept per image for the metric


def _inverse_jacobians(label: PageLabel, canon: np.ndarray, eps: float = 2.0) -> np.ndarray:
    """(N, 2, 2) d(canonical px)/d(image px) at each canonical point, from the label's dense map."""
    p0, px, py = (label.canon_to_image(canon + d) for d in ((0, 0), (eps, 0), (0, eps)))
    J = np.stack([(px - p0) / eps, (py - p0) / eps], -1)
    return np.linalg.inv(J)


def _trace_sample(signals: pd.DataFrame, fs: int, rng: np.random.Generator) -> np.ndarray:
    pts = np.concatenate(list(G.trace_points(signals, fs).values()))
    pts = pts[(pts[:, 1] >= 0) & (pts[:, 1] < G.PAGE_H)]
    return pts[rng.choice(len(pts), N_TRACE, replace=len(pts) < N_TRACE)]


def cache_item(image_path: Path, signals_csv: Path, fs: int, cache_dir: Path, size: int) -> Path:
    out = item_path(cache_dir, image_path, size, "stage1")
    if out.is_file():
        return out
    label = PageLabel.load(label_path(image_path))
    img, s = downscale(read_image(image_path), size)
    H = label.homography("lattice")
    # canonical position of every CANON_STRIDE-th cached pixel: the label map inverted by linear interpolation
    gh, gw = map_grid_shape()
    gy, gx = np.mgrid[0:gh, 0:gw] * float(MAP_STRIDE)
    qy, qx = np.mgrid[0:img.shape[0]:CANON_STRIDE, 0:img.shape[1]:CANON_STRIDE].astype(np.float64)
    src = label.map_xy.reshape(-1, 2) * s
    canon_xy = np.stack([griddata(src, g.ravel(), (qx, qy), "linear") for g in (gx, gy)], -1).astype(np.float32)
    rng = np.random.default_rng(int(out.stem.rsplit("-", 1)[1], 16) % 2 ** 32)   # fixed per image
    trace = _trace_sample(pd.read_csv(signals_csv), fs, rng)
    return save_item(out, image=img, scale=s, H=H, canon_xy=canon_xy, trace_canon=trace,
                     trace_px=label.canon_to_image(trace), trace_jac=_inverse_jacobians(label, trace),
                     type=label.image_type)


def source_image(root: Path, item: Path) -> Path:
    """The raw image a cache item was made from ({stem}-{key}.npz, stem = {record}-{type})."""
    stem = item.name.rsplit("-", 1)[0]
    return Path(root) / "train" / stem.rsplit("-", 1)[0] / f"{stem}.png"


def cache_job(cache_dir: Path, size: int):
    """job (image, signals csv, fs) -> its cached file."""
    def make(job) -> Path:
        image, csv, fs = job
        return cache_item(Path(image), Path(csv), int(fs), cache_dir, size)
    cache_dir.mkdir(parents=True, exist_ok=True)
    return make


def corner_jitter(rng: np.random.Generator, jitter_mm: float) -> np.ndarray:
    """3x3 canonical -> canonical homography moving the page corners by N(0, jitter_mm): a stage-0 error."""
    src = (G.page_corners() - 0.5).astype(np.float32)
    dst = src + rng.normal(0, jitter_mm * G.PX_PER_MM, src.shape).astype(np.float32)
    return cv2.getPerspectiveTransform(src, dst)


class LatticeDataset(CachedDataset, Dataset):
    """Train items: a random ``crop`` of the jittered normalised page.  Validation items: the whole page with a
    fixed (per index) jitter, plus what the metric needs."""

    def __init__(self, items: list[Path], input_size: int, sigma: float, train: bool, crop: int | None = None,
                 jitter_mm: float = 2.0, seed: int = 0, strength: float = 1.0,
                 homographies: list[np.ndarray] | None = None):
        super().__init__(items, seed)
        self.sigma, self.train, self.jitter_mm = sigma, train, jitter_mm
        self.homographies = homographies     # real stage-0 results (raw px -> page) instead of the jittered truth
        self.k, self.size = page_input_size(input_size)
        self.crop = crop if train and crop and crop < min(self.size) else None
        self.aug = photometric(strength) if train and strength > 0 else None

    def __getitem__(self, i: int) -> dict:
        d = np.load(self.items[i])
        # Randomness from (seed, epoch, index) only; validation jitter from (seed, index), the same every epoch.
        ss = [self.seed, self.epoch, i] if self.train else [self.seed, 10 ** 6, i]
        rng = np.random.default_rng(np.random.SeedSequence(ss))
        s = float(d["scale"])
        H = self.homographies[i] if self.homographies is not None else corner_jitter(rng, self.jitter_mm) @ d["H"]
        H = H @ np.diag([1 / s, 1 / s, 1.0])                                            # cached px -> stage-0 page
        size, offset = self.size, (0, 0)
        if self.crop:
            size = (self.crop, self.crop)
            offset = tuple(int(rng.integers(0, m - self.crop + 1)) for m in self.size)
        M = np.array([[1, 0, -offset[0]], [0, 1, -offset[1]], [0, 0, 1.0]]) @ np.diag([self.k, self.k, 1.0]) @ H
        img = warp_to_page(d["image"], M, size)
        canon = cv2.warpPerspective(d["canon_xy"], M @ np.diag([CANON_STRIDE, CANON_STRIDE, 1.0]), size,
                                    flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                    borderValue=(np.nan, np.nan))
        if self.aug is not None:
            self.aug.set_random_seed(int(rng.integers(2 ** 31)))
            img = self.aug(image=img)["image"]
        t = lattice_targets(canon, self.k, self.sigma)
        item = {"image": torch.from_numpy(img).permute(2, 0, 1).contiguous(),
                "coords": torch.from_numpy(page_coords(size, self.k, offset)),
                "heatmap": torch.from_numpy(t["heatmap"]), "col": torch.from_numpy(t["col"]),
                "row": torch.from_numpy(t["row"])}
        if not self.train:   # the metric: where labelled trace points must land, in cached px via H
            item |= {"H": torch.from_numpy(H), "scale": torch.tensor(s), "type": str(d["type"]),
                     "trace_canon": torch.from_numpy(d["trace_canon"]), "trace_px": torch.from_numpy(d["trace_px"]),
                     "trace_jac": torch.from_numpy(d["trace_jac"])}
        return item
