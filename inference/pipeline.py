"""Raw ECG images -> 12 leads in mV: stage 0 (page + orientation) -> stage 1 (lattice warp, one remap of the raw
image) -> stage 2 (row trace probabilities) -> ``inference.extract``.

    from inference.pipeline import Digitizer
    dig = Digitizer(["stage0.pt", "stage1.pt", "stage2.pt"])           # any number per stage: an ensemble
    df = dig.digitize("scan.png", fs=500)                              # 12-lead DataFrame, like a train CSV
    df, fig = dig.digitize("scan.png", fs=500, plot=True)              # + the leads drawn over the rectified page

``rectify="gt"`` replaces stages 0 and 1 by the generator's label files (the upper bound of stage 2).
"""
from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from data import geometry as G
from data.labels import PageLabel, label_path
from inference.ensemble import load_stages
from inference.extract import ExtractConfig, extract_leads
from stage0_keypoints.dataset import read_image
from stage0_keypoints.predict import predict as stage0_predict
from stage1_rectify.predict import predict as stage1_predict
from stage2_segment.predict import predict as stage2_predict
from stage2_segment.task import page_k


def resolve_device(name: str = "auto") -> torch.device:
    return torch.device("cuda" if name == "auto" and torch.cuda.is_available() else "cpu" if name == "auto" else name)


def find_label(image_path: str | Path) -> Path:
    """The generator's label of a train image (beside it) or a test image (test_labels/{id}.label.json)."""
    p = Path(image_path)
    for cand in (label_path(p), p.parent.parent / "test_labels" / f"{p.stem}.label.json"):
        if cand.is_file():
            return cand
    raise FileNotFoundError(f"rectify=gt needs the label of {p} ({label_path(p).name} beside it, or in "
                            f"test_labels/); only synthetic data has one")


class Rectifier:
    """Raw images -> rectified pages at scale k: stages 0 and 1 (``rectify="model"``) or the generator's labels
    (``"gt"``).  Also what stage 2 trains on when its pages come from the models (``model.rectify_with``)."""

    def __init__(self, checkpoints: list[str], k=None, weights: list[float] | None = None, device: str = "auto",
                 rectify: str = "model", stage0_tta: bool = True, overrides: dict[int, list[str]] | None = None,
                 batch_size: int = 2, need: tuple[int, ...] = ()):
        if rectify not in ("model", "gt"):
            raise ValueError(f"rectify must be model or gt, got {rectify!r}")
        self.device = resolve_device(device)
        self.stages = load_stages(list(checkpoints), weights, self.device, overrides)
        need = tuple(sorted(set(need) | ({0, 1} if rectify == "model" else set())))
        missing = [s for s in need if s not in self.stages]
        if missing:
            raise ValueError(f"checkpoints=[...] holds no stage {missing} model (given: {sorted(self.stages)}); "
                             "rectify=gt needs no stage 0 or 1")
        self.k, self.rectify_with, self.stage0_tta, self.batch_size = k, rectify, stage0_tta, batch_size
        self.key = tuple(f"{Path(c).resolve()}@{Path(c).stat().st_mtime_ns}" for c in checkpoints)  # for caches
        self.timings: dict[str, float] = defaultdict(float)

    @contextmanager
    def _timed(self, name: str):
        t0 = time.perf_counter()
        yield
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.timings[name] += time.perf_counter() - t0

    def pages(self, images: list[np.ndarray], paths: list[Path] | None = None) -> list[np.ndarray]:
        """Raw BGR images -> rectified BGR pages at scale k."""
        if self.rectify_with == "gt":
            with self._timed("rectify (labels)"):
                return [PageLabel.load(find_label(p)).rectify(im, self.k) for im, p in zip(images, paths)]
        model0, cfg0, _ = self.stages[0]
        model1, cfg1, _ = self.stages[1]
        with self._timed("stage0"):
            res0 = stage0_predict(model0, images, int(cfg0["model"]["input_size"]), self.device,
                                  self.batch_size, self.stage0_tta)
        with self._timed("stage1"):
            rects = stage1_predict(model1, cfg1["model"], images, [r.H if r.ok else None for r in res0], self.k,
                                   self.device, self.batch_size)     # no page found: the whole image, flagged
        return [r.page for r in rects]


class Digitizer(Rectifier):
    def __init__(self, checkpoints: list[str], weights: list[float] | None = None, device: str = "auto",
                 rectify: str = "model", tta_flip: bool = False, stage0_tta: bool = True,
                 extract: dict | None = None, overrides: dict[int, list[str]] | None = None, batch_size: int = 2):
        super().__init__(checkpoints, None, weights, device, rectify, stage0_tta, overrides, batch_size, need=(2,))
        m2 = self.stages[2][1]["model"]
        self.k = page_k(m2)
        self.tta_flip = tta_flip
        self.extract_cfg = ExtractConfig(**{**(m2.get("extract") or {}), **(extract or {})})

    def probabilities(self, pages: list[np.ndarray]) -> np.ndarray:
        _, cfg2, members = self.stages[2]
        weights = self.stages[2][0].weights.tolist()
        with self._timed("stage2"):
            return stage2_predict(members, cfg2["model"], pages, weights, self.tta_flip, self.device,
                                  self.batch_size)

    def leads(self, probs: np.ndarray, fs: int, lengths: dict[str, int]) -> dict[str, np.ndarray]:
        with self._timed("extract"):
            return extract_leads(probs, lengths, fs, self.k, self.extract_cfg)

    def run(self, paths: list[Path], fs: list[int], lengths: list[dict[str, int]]):
        """Several images at once (one batch per stage) -> ([lead -> values] per image, rectified pages)."""
        with self._timed("read"):
            images = [read_image(p) for p in paths]
        pages = self.pages(images, paths)
        probs = self.probabilities(pages)
        return [self.leads(p, f, n) for p, f, n in zip(probs, fs, lengths)], pages

    def digitize(self, image_path: str | Path, fs: int = 500, plot: bool = False):
        """One image -> DataFrame of the 12 leads over 10 s at fs (NaN outside each short lead's window, the
        layout of the competition's train CSVs); with ``plot`` also a figure of the leads over the page."""
        windows = {lead: G.lead_sample_window(lead, fs) for lead in G.LEADS}
        lengths = {lead: b - a for lead, (a, b) in windows.items()}
        (leads,), (page,) = self.run([Path(image_path)], [fs], [lengths])
        df = pd.DataFrame(np.nan, index=pd.RangeIndex(G.sig_len(fs), name="sample"), columns=list(G.LEADS))
        for lead, v in leads.items():
            a = windows[lead][0]
            df.loc[a:a + len(v) - 1, lead] = v
        if not plot:
            return df
        from inference.plot import plot_leads
        return df, plot_leads(page, leads, fs, self.k, title=Path(image_path).name)

    def timing_report(self, n_images: int) -> str:
        total = sum(self.timings.values())
        lines = [f"time per image over {n_images} images ({self.device.type}):"]
        lines += [f"  {name:<18} {t / max(n_images, 1):7.3f} s  ({100 * t / max(total, 1e-9):4.1f} %)"
                  for name, t in self.timings.items()]
        return "\n".join(lines + [f"  {'total':<18} {total / max(n_images, 1):7.3f} s"])
