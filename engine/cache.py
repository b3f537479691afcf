"""On-disk caches of preprocessed training items, shared by the stages: each input becomes one file, built once by
rank 0; an unreadable input is reported and left out instead of ending the run."""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from tqdm import tqdm

from data.files import atomic_path
from engine import dist


def item_path(cache_dir: Path, image_path: Path, *settings) -> Path:
    """``{stem}-{hash}.npz``: one file per input image and the settings that shape its cached item."""
    key = "|".join([str(Path(image_path).resolve()), *map(str, settings)])
    return Path(cache_dir) / f"{Path(image_path).stem}-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz"


def save_item(out: Path, **arrays) -> Path:
    """Write a cached item atomically (a killed run leaves no half-written file behind)."""
    with atomic_path(out) as tmp:
        np.savez(tmp, **arrays)
    return out


def cache_all(jobs: Sequence, make: Callable[[object], Path], desc: str, progress: bool = True) -> list[Path]:
    """``make(job)`` -> the cached file of one job (a path, or a tuple whose first element is the image path)."""
    items, bad = [], []
    for job in tqdm(jobs, desc=desc, disable=not progress):
        try:
            items.append(make(job))
        except (OSError, ValueError, KeyError) as e:
            bad.append(f"{job[0] if isinstance(job, tuple) else job}: {e}")
    if bad:
        warnings.warn(f"{len(bad)} of {len(jobs)} images left out:\n" + "\n".join(bad[:20]), stacklevel=3)
    return items


def cached_splits(train: Sequence, val: Sequence, make: Callable[[object], Path], desc: str,
                  progress: bool = True) -> tuple[list[Path], list[Path]]:
    """Rank 0 caches both splits (the others wait), then every rank looks its files up."""
    if dist.is_main():
        cache_all(list(train) + list(val), make, desc, progress)
    dist.barrier()
    return cache_all(train, make, desc, False), cache_all(val, make, desc, False)


class CachedDataset:
    """The part of a cached-item dataset every stage shares: the items, and the epoch that seeds augmentation."""

    def __init__(self, items: list[Path], seed: int = 0):
        self.items, self.seed, self.epoch = list(items), seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)
