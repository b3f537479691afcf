"""Raw images -> rectified pages at scale k, by stages 0 and 1 (``source="model"``) or by the generator's label
files (``source="gt"``, the upper bound of stage 2 on synthetic data).  The inference pipeline rectifies with it,
and stage 2 caches its training pages with it when they must come from the models (``model.rectify_with``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from data.labels import PageLabel, label_path
from engine.device import Timer, resolve_device
from pagekit.ensemble import load_stages
from stage0_keypoints.predict import predict as stage0_predict
from stage1_rectify.predict import predict as stage1_predict
from stage1_rectify.rectify import rectify_image
from stage1_rectify.surface import identity_fit

SOURCES = ("model", "gt")


def find_label(image_path: str | Path) -> Path:
    """The generator's label of a train image (beside it) or a test image (test_labels/{id}.label.json)."""
    p = Path(image_path)
    for cand in (label_path(p), p.parent.parent / "test_labels" / f"{p.stem}.label.json"):
        if cand.is_file():
            return cand
    raise FileNotFoundError(f"rectify=gt needs the label of {p} ({label_path(p).name} beside it, or in "
                            f"test_labels/); only synthetic data has one")


class Rectifier:
    """``stages``: {0: (model, config, members), 1: ...} as ``pagekit.ensemble.load_stages`` returns (not needed for
    ``source="gt"``); ``timer`` charges the steps to "stage0", "stage1" or "rectify (labels)"."""

    def __init__(self, stages: dict, k, source: str = "model", stage0_tta: bool = True, batch_size: int = 2,
                 device="cpu", timer: Timer | None = None):
        if source not in SOURCES:
            raise ValueError(f"rectify must be one of {SOURCES}, got {source!r}")
        missing = [s for s in (0, 1) if s not in stages] if source == "model" else []
        if missing:
            raise ValueError(f"checkpoints=[...] holds no stage {missing} model (given: {sorted(stages)}); "
                             "rectify=gt needs no stage 0 or 1")
        self.stages, self.k, self.source = stages, k, source
        self.stage0_tta, self.batch_size, self.device = stage0_tta, batch_size, resolve_device(str(device))
        self.timer = timer or Timer(self.device)
        self.key: tuple[str, ...] = ()         # what the pages depend on besides the image (for caches)

    @classmethod
    def from_checkpoints(cls, checkpoints: list[str], k, device="auto", **kw) -> "Rectifier":
        dev = resolve_device(str(device))
        out = cls(load_stages(list(checkpoints), device=dev), k, device=dev, **kw)
        out.key = tuple(f"{Path(c).resolve()}@{Path(c).stat().st_mtime_ns}" for c in checkpoints)
        return out

    def pages(self, images: list[np.ndarray], paths: list[Path] | None = None) -> list[np.ndarray]:
        """Raw BGR images (and their paths, for ``source="gt"``) -> rectified BGR pages at scale k."""
        return self.rectify(images, paths)[0]

    def rectify(self, images: list[np.ndarray], paths: list[Path] | None = None):
        """``pages`` and, per image, what went wrong on the way: ``no_page`` (stage 0 found no page: the whole image
        was taken as the page) and ``lattice_fallback`` (stage 1's lattice was unusable: stage 0's homography
        alone).  Both are False with the labels."""
        if self.source == "gt":
            with self.timer("rectify (labels)"):
                pages = [PageLabel.load(find_label(p)).rectify(im, self.k) for im, p in zip(images, paths)]
            return pages, [{"no_page": False, "lattice_fallback": False} for _ in pages]
        model0, cfg0, _ = self.stages[0]
        model1, cfg1, _ = self.stages[1]
        with self.timer("stage0"):
            res0 = stage0_predict(model0, images, int(cfg0["model"]["input_size"]), self.device,
                                  self.batch_size, self.stage0_tta)
        with self.timer("stage1"):
            rects = stage1_predict(model1, cfg1["model"], images, [r.H if r.ok else None for r in res0], self.k,
                                   self.device, self.batch_size)     # no page found: the whole image, flagged
        flags = [{"no_page": not r0.ok, "lattice_fallback": bool(r1.fallback)} for r0, r1 in zip(res0, rects)]
        return [r.page for r in rects], flags

    def place(self, image: np.ndarray, H: np.ndarray) -> np.ndarray:
        """One raw image put on the page by a homography found otherwise (``pagekit.grid``: from the paper's grid)
        in place of stage 0's, with no lattice: stage 1, learned on renders, moved the rows of real paper apart in
        time (on ecg00001 a II strip then matched its own slot at 13.6 dB a 10 px shift away, 18.0 dB without)."""
        return rectify_image(image, H, identity_fit(), True, self.k).page
