"""Raw ECG images -> 12 leads in mV: stage 0 (page + orientation) -> stage 1 (lattice warp, one remap of the raw
image) -> stage 2 (row trace probabilities) -> ``pagekit.extract``.

    from inference.pipeline import Digitizer
    dig = Digitizer(["stage0.pt", "stage1.pt", "stage2.pt"])           # any number per stage: an ensemble
    df = dig.digitize("scan.png", fs=500)                              # 12-lead DataFrame, like a train CSV
    df, fig = dig.digitize("scan.png", fs=500, plot=True)              # + the leads drawn over the rectified page

``rectify="gt"`` replaces stages 0 and 1 by the generator's label files (the upper bound of stage 2).  Checkpoints
are files, folders or Hub ids (``pagekit.weights``); none given means the shipped ``weights/``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from data import geometry as G
from engine.device import Timer, autocast_dtype, resolve_device
from pagekit.ensemble import load_stages
from pagekit.extract import ExtractConfig, extract_with_confidence
from pagekit.image import read_image
from pagekit.weights import resolve_checkpoints
from stage1_rectify.rectifier import Rectifier
from stage2_segment.predict import predict as stage2_predict


@dataclass(kw_only=True)
class DigitizerOptions:
    """Options of every entry point that digitizes (``python -m inference``, ``python -m inference.digitize``)."""
    checkpoints: list[str] = field(default_factory=list)  # files, folders, hf://owner/repo; none: weights/
    weights: list[float] = field(default_factory=list)   # one per checkpoint, averaged within each stage
    device: str = "auto"
    precision: str = "auto"                               # stage 2's forward: auto | fp32 | bf16 | fp16 (GPU)
    rectify: str = "model"                                # model | gt (the generator's labels)
    tta_flip: bool = False
    stage0_tta: bool = True
    batch_size: int = 2
    extract: dict = field(default_factory=dict)           # extract.<field>=... (pagekit.extract.ExtractConfig)
    stage0: dict = field(default_factory=dict)            # stageN.model.<key>=...: decoding settings of a stage
    stage1: dict = field(default_factory=dict)
    stage2: dict = field(default_factory=dict)

    OPEN_KEYS = {"extract": [f.name for f in fields(ExtractConfig)], "stage0": None, "stage1": None, "stage2": None}

    def digitizer(self) -> "Digitizer":
        overrides = {s: getattr(self, f"stage{s}") for s in (0, 1, 2) if getattr(self, f"stage{s}")}
        return Digitizer(self.checkpoints, self.weights or None, self.device, self.rectify, self.tta_flip,
                         self.stage0_tta, self.extract, overrides, self.batch_size, self.precision)


@dataclass
class Reading:
    """What a digitizer read from one image: lead -> mV (the lengths asked for), the rectified page it read them
    from (None when no image was read), per lead {"trace_prob", "gap_share"} (``pagekit.extract``), and flags of
    what went wrong on the way (``no_page``, ``lattice_fallback``: ``stage1_rectify.rectifier``)."""
    leads: dict[str, np.ndarray]
    page: np.ndarray | None = None
    confidence: dict[str, dict] = field(default_factory=dict)
    flags: dict[str, bool] = field(default_factory=dict)

    # A rule, not a calibrated error estimate: on the real pages of ../shared/real_pages every reading with no page
    # outline was read on the wrong rows or wrong outright, and both readings wrong with a page found had an
    # unusable lattice.  Half a lead filled across gaps means there was little trace to follow.
    MAX_GAP_SHARE = 0.5

    def doubts(self) -> list[str]:
        """Why this reading should be checked by eye before use (empty: none known)."""
        out = []
        if self.flags.get("no_page"):
            out.append("no page outline found, the whole image was read as the page (a page cropped to its grid, "
                       "or not in the 3x4+II layout, reads on the wrong rows)")
        if self.flags.get("lattice_fallback"):
            out.append("the 5 mm grid could not be followed, the page outline alone placed it")
        gappy = [lead for lead, c in self.confidence.items() if c.get("gap_share", 0.0) > self.MAX_GAP_SHARE]
        if gappy:
            out.append(f"little trace found for {', '.join(gappy)} (over half of it filled across gaps)")
        return out

    @property
    def status(self) -> str:
        """``ok``, or ``check`` when there is a doubt (:meth:`doubts`)."""
        return "check" if self.doubts() else "ok"


class BaseDigitizer:
    """What every digitizer offers on top of its ``run(paths, fs, lengths) -> [Reading per image]``: one image
    as a 12-lead DataFrame (and a picture), and the time per step.  Subclasses set ``k`` (page scale of their
    pages) and ``timer``."""

    k: tuple[float, float]
    timer: Timer

    @property
    def timings(self) -> dict[str, float]:
        return self.timer.seconds

    def run(self, paths: list[Path], fs: list[int], lengths: list[dict[str, int]]) -> list[Reading]:
        raise NotImplementedError

    def read(self, image_path: str | Path, fs: int = 500) -> Reading:
        """One image, every lead over its whole printed window at fs."""
        return self.run([Path(image_path)], [fs], [full_lengths(fs)])[0]

    def digitize(self, image_path: str | Path, fs: int = 500, plot: bool = False):
        """One image -> DataFrame of the 12 leads over 10 s at fs (NaN outside each short lead's window, the
        layout of the competition's train CSVs); with ``plot`` also a figure of the leads over the page."""
        reading = self.read(image_path, fs)
        df = leads_frame(reading.leads, fs)
        if not plot:
            return df
        from inference.plot import plot_leads
        return df, plot_leads(reading.page, reading.leads, fs, self.k, title=Path(image_path).name)

    def timing_report(self, n_images: int) -> str:
        return self.timer.report(n_images)


def full_lengths(fs: int) -> dict[str, int]:
    """Every lead's whole printed window: 2.5 s for the short leads, 10 s for lead II."""
    return {lead: b - a for lead, (a, b) in zip(G.LEADS, (G.lead_sample_window(lead, fs) for lead in G.LEADS))}


def leads_frame(leads: dict[str, np.ndarray], fs: int) -> pd.DataFrame:
    """lead -> mV over its window -> 10 s x 12 leads in the layout of the competition's train CSVs (NaN outside
    each short lead's window)."""
    df = pd.DataFrame(np.nan, index=pd.RangeIndex(G.sig_len(fs), name="sample"), columns=list(G.LEADS))
    for lead, v in leads.items():
        a = G.lead_sample_window(lead, fs)[0]
        df.loc[a:a + len(v) - 1, lead] = v
    return df


class Digitizer(BaseDigitizer):
    """Checkpoints of any stages (several of one stage: an ensemble) -> 12 leads per image.  Holds a
    :class:`Rectifier` for stages 0 and 1 (or the labels) and runs stage 2 and the extraction itself."""

    def __init__(self, checkpoints: list[str], weights: list[float] | None = None, device: str = "auto",
                 rectify: str = "model", tta_flip: bool = False, stage0_tta: bool = True,
                 extract: dict | None = None, overrides: dict[int, dict] | None = None, batch_size: int = 2,
                 precision: str = "auto"):
        self.device = resolve_device(device)
        self.checkpoints = resolve_checkpoints(checkpoints)
        self.stages = load_stages(self.checkpoints, weights, self.device, overrides)
        if 2 not in self.stages:
            raise ValueError(f"checkpoints=[...] holds no stage [2] model (given: {sorted(self.stages)})")
        m2 = self.stages[2][1]["model"]
        self.k = G.scales(m2["page_k"])
        self.timer = Timer(self.device)
        self.rectifier = Rectifier(self.stages, self.k, rectify, stage0_tta, batch_size, self.device, self.timer)
        self.tta_flip, self.batch_size = tta_flip, batch_size
        self.extract_cfg = ExtractConfig(**{**(m2.get("extract") or {}), **(extract or {})})
        # stage 2 only: stages 0 and 1 are a fraction of the time and their sub-pixel points are kept in fp32.  On a
        # CPU with native bf16, bf16 + channels-last run stage 2 in half the time (eik_dev exact pages: 6.5 -> 3.2 s,
        # 19.19 -> 19.18 dB): docs/results.md, "Run time"
        self.dtype = autocast_dtype(precision, self.device)
        if self.dtype is not None and self.device.type == "cpu":
            for m in self.stages[2][2]:
                m.to(memory_format=torch.channels_last)

    def probabilities(self, pages: list[np.ndarray]) -> np.ndarray:
        _, cfg2, members = self.stages[2]
        weights = self.stages[2][0].weights.tolist()
        with self.timer("stage2"), torch.autocast(self.device.type, self.dtype, enabled=self.dtype is not None):
            return stage2_predict(members, cfg2["model"], pages, weights, self.tta_flip, self.device,
                                  self.batch_size)

    def extract(self, probs: np.ndarray, fs: int, lengths: dict[str, int]) -> tuple[dict, dict]:
        """One page's probabilities -> (lead -> mV, lead -> confidence)."""
        with self.timer("extract"):
            return extract_with_confidence(probs, lengths, fs, self.k, self.extract_cfg)

    def run(self, paths: list[Path], fs: list[int], lengths: list[dict[str, int]]) -> list[Reading]:
        """Several images at once (one batch per stage) -> a Reading per image."""
        with self.timer("read"):
            images = [read_image(p) for p in paths]
        pages, flags = self.rectifier.rectify(images, paths)
        probs = self.probabilities(pages)
        out = []
        for prob, page, flag, f, n in zip(probs, pages, flags, fs, lengths):
            leads, confidence = self.extract(prob, f, n)
            out.append(Reading(leads, page, confidence, flag))
        return out
