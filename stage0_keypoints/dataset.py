"""Stage-0 dataset: labelled images letterboxed once into an on-disk cache, then augmented per epoch.

Raw images are up to 4032x3024 PNGs; decoding them every epoch would dominate CPU training, so each image is
read once, letterboxed to ``cache_size`` (top-left aligned, so image px = cache px / scale) and stored with its
keypoints, orientation and the Jacobians that turn image-px errors into canonical mm.
"""
from __future__ import annotations

from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from data import geometry as G
from data.labels import PageLabel, label_path
from engine.cache import CachedDataset, cache_all, item_path, save_item
from pagekit.image import letterbox, read_image, rot90_points
from stage0_keypoints.targets import heatmaps, image_keypoints, px_per_mm_jacobians


def cache_item(image_path: Path, cache_dir: Path, size: int) -> Path:
    out = item_path(cache_dir, image_path, size)
    if out.is_file():
        return out
    label = PageLabel.load(label_path(image_path))
    if label.layout != G.DEFAULT_LAYOUT:     # its keypoints are where 3x4+II would print the names, not on ink
        raise ValueError(f"a {label.layout} page: stage 0 learns the lead names of the competition's 3x4+II")
    img, s = letterbox(read_image(image_path), size)
    return save_item(out, image=img, scale=s, keypoints=image_keypoints(label) * s,
                     orientation=label.orientation, jac=px_per_mm_jacobians(label), type=label.image_type,
                     image_size=np.array(label.image_size))


def build_cache(image_paths: list[Path], cache_dir: Path, size: int, progress: bool = True) -> list[Path]:
    """Cache every image; an unreadable image or label is reported and left out instead of ending the run."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    return cache_all(image_paths, lambda p: cache_item(Path(p), cache_dir, size), "stage0 cache", progress)


def train_augment(input_size: int, strength: float = 1.0) -> A.Compose:
    return A.Compose([
        A.Affine(scale=(1 - 0.15 * strength, 1 + 0.1 * strength), translate_percent=(-0.05 * strength, 0.05 * strength),
                 rotate=(-8 * strength, 8 * strength), border_mode=cv2.BORDER_CONSTANT, fill=0, p=0.8),
        A.RandomBrightnessContrast(0.25, 0.25, p=0.7),
        A.HueSaturationValue(15, 25, 15, p=0.5),
        A.OneOf([A.GaussianBlur(blur_limit=(3, 5)), A.MotionBlur(blur_limit=(3, 7))], p=0.3),
        A.GaussNoise(std_range=(0.01, 0.05), p=0.3),
        A.ImageCompression(quality_range=(50, 95), p=0.3),
        A.Resize(input_size, input_size),
    ], keypoint_params=A.KeypointParams(format="xy", remove_invisible=False))


class KeypointDataset(CachedDataset, Dataset):
    def __init__(self, items: list[Path], input_size: int, sigma: float, train: bool, seed: int = 0,
                 rot90: bool = True, strength: float = 1.0):
        super().__init__(items, seed)
        self.input_size, self.sigma, self.train, self.rot90 = input_size, sigma, train, rot90 and train
        self.aug = train_augment(input_size, strength) if train else A.Compose(
            [A.Resize(input_size, input_size)], keypoint_params=A.KeypointParams(format="xy", remove_invisible=False))

    def __getitem__(self, i: int) -> dict:
        d = np.load(self.items[i])
        img, pts, orient = d["image"], d["keypoints"].astype(np.float64), int(d["orientation"])
        size = img.shape[0]
        # Randomness from (seed, epoch, index) only: identical with any worker count, and across a resume.
        item_seed = int(np.random.SeedSequence([self.seed, self.epoch, i]).generate_state(1)[0])
        if self.rot90:
            turns = int(np.random.default_rng(item_seed).integers(4))
            img, pts = np.ascontiguousarray(np.rot90(img, -turns)), rot90_points(pts, size, turns)
            orient = (orient + turns) % 4
        self.aug.set_random_seed(item_seed)
        res = self.aug(image=img, keypoints=pts)
        kp = np.asarray(res["keypoints"], dtype=np.float32).reshape(-1, 2)
        item = {"image": torch.from_numpy(res["image"]).permute(2, 0, 1).contiguous(),
                "heatmap": torch.from_numpy(heatmaps(kp, self.input_size, self.sigma)),
                "keypoints": torch.from_numpy(kp), "orientation": torch.tensor(orient)}
        if not self.train:  # what the metric needs to score in original-image px and canonical mm
            scale = float(d["scale"])
            item |= {"to_image": torch.tensor(size / self.input_size / scale),   # input px -> image px
                     "true_px": torch.from_numpy(d["keypoints"] / scale), "jac": torch.from_numpy(d["jac"]),
                     "image_size": torch.from_numpy(d["image_size"]), "type": str(d["type"])}
        return item
