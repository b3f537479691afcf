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

import cv2
import numpy as np
import pandas as pd
import torch

from data import geometry as G
from engine.device import Timer, autocast_dtype, resolve_device
from pagekit.ensemble import load_stages
from data.layout import Layout, get_layout
from pagekit import layout_match
from pagekit.extract import ExtractConfig, extract_with_confidence, read_rows
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
    layout: str = G.DEFAULT_LAYOUT                        # a name (data/layouts/) or auto: read from the page
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
                         self.stage0_tta, self.extract, overrides, self.batch_size, self.precision, self.layout)


@dataclass
class Reading:
    """What a digitizer read from one image: lead -> mV (the lengths asked for, from the start of the lead's
    printed window), the rectified page it read them from (None when no image was read), per lead {"trace_prob",
    "gap_share"} (``pagekit.extract``), flags of what went wrong on the way (``no_page``, ``lattice_fallback``:
    ``stage1_rectify.rectifier``), the layout it was read as, and, when nothing was read, why (``failure``)."""
    leads: dict[str, np.ndarray]
    page: np.ndarray | None = None
    confidence: dict[str, dict] = field(default_factory=dict)
    flags: dict[str, bool] = field(default_factory=dict)
    layout: Layout | None = field(default_factory=lambda: G.PAGE_LAYOUT)
    failure: str = ""
    notes: list[str] = field(default_factory=list)          # doubts found while reading (a strip left unnamed)

    # A rule, not a calibrated error estimate: on the real pages of ../shared/real_pages every reading with no page
    # outline was read on the wrong rows or wrong outright, and both readings wrong with a page found had an
    # unusable lattice.  Half a lead filled across gaps means there was little trace to follow.
    MAX_GAP_SHARE = 0.5

    def doubts(self) -> list[str]:
        """Why this reading should be checked by eye before use (empty: none known)."""
        out = list(self.notes)
        if self.flags.get("no_page"):
            out.append("no page outline found, the whole image was read as the page: its time and mV scales hold "
                       "only where the image is the whole page")
        if self.flags.get("whole_image"):
            out.append("the page outline and grid found put the rows where no layout prints them: the whole image "
                       "was read as the page")
        if self.flags.get("lattice_fallback"):
            out.append("the 5 mm grid could not be followed, the page outline alone placed it")
        gappy = [lead for lead, c in self.confidence.items() if c.get("gap_share", 0.0) > self.MAX_GAP_SHARE]
        if gappy:
            out.append(f"little trace found for {', '.join(gappy)} (over half of it filled across gaps)")
        return out

    @property
    def status(self) -> str:
        """``failed`` (nothing read, ``failure`` says why), ``check`` when there is a doubt (:meth:`doubts`), or
        ``ok``."""
        return "failed" if self.failure else "check" if self.doubts() else "ok"


class BaseDigitizer:
    """What every digitizer offers on top of its ``run(paths, fs, lengths) -> [Reading per image]``: one image
    as a 12-lead DataFrame (and a picture), and the time per step.  Subclasses set ``k`` (page scale of their
    pages) and ``timer``."""

    k: tuple[float, float]
    timer: Timer

    @property
    def timings(self) -> dict[str, float]:
        return self.timer.seconds

    def run(self, paths: list[Path], fs: list[int], lengths: list[dict[str, int] | None]) -> list[Reading]:
        """``lengths`` per image: samples per lead (test.csv), or None: every lead over its whole printed window
        in the layout read."""
        raise NotImplementedError

    def read(self, image_path: str | Path, fs: int = 500) -> Reading:
        """One image, every lead over its whole printed window at fs."""
        return self.run([Path(image_path)], [fs], [None])[0]

    def digitize(self, image_path: str | Path, fs: int = 500, plot: bool = False):
        """One image -> DataFrame of the 12 leads over 10 s at fs (NaN where the page does not print a lead: for
        the competition's page the layout of its train CSVs); with ``plot`` also a figure of the leads over the
        page.  A page that could not be read raises ValueError with the reason."""
        reading = self.read(image_path, fs)
        if reading.failure:
            raise ValueError(f"{image_path}: {reading.failure}")
        df = leads_frame(reading.leads, fs, reading.layout)
        if not plot:
            return df
        from inference.plot import plot_leads
        return df, plot_leads(reading.page, reading.leads, fs, self.k, title=Path(image_path).name,
                              layout=reading.layout)

    def timing_report(self, n_images: int) -> str:
        return self.timer.report(n_images)


def full_lengths(fs: int, layout: Layout | None = None) -> dict[str, int]:
    """Every lead's whole printed window (the competition's page: 2.5 s for the short leads, 10 s for lead II)."""
    lay = G.as_layout(layout)
    return {lead: b - a for lead in G.LEADS for a, b in [lay.lead_samples(lead, G.sig_len(fs))]}


def leads_frame(leads: dict[str, np.ndarray], fs: int, layout: Layout | None = None) -> pd.DataFrame:
    """lead -> mV from the start of its printed window -> 10 s x 12 leads, NaN where the page does not print a
    lead (for the competition's page: the layout of its train CSVs)."""
    lay = G.as_layout(layout)
    df = pd.DataFrame(np.nan, index=pd.RangeIndex(G.sig_len(fs), name="sample"), columns=list(G.LEADS))
    for lead, v in leads.items():
        a = lay.lead_samples(lead, G.sig_len(fs))[0]
        df.loc[a:a + len(v) - 1, lead] = v
    return df


class Digitizer(BaseDigitizer):
    """Checkpoints of any stages (several of one stage: an ensemble) -> 12 leads per image.  Holds a
    :class:`Rectifier` for stages 0 and 1 (or the labels) and runs stage 2 and the extraction itself."""

    def __init__(self, checkpoints: list[str], weights: list[float] | None = None, device: str = "auto",
                 rectify: str = "model", tta_flip: bool = False, stage0_tta: bool = True,
                 extract: dict | None = None, overrides: dict[int, dict] | None = None, batch_size: int = 2,
                 precision: str = "auto", layout: str = G.DEFAULT_LAYOUT):
        self.layout = layout if layout == "auto" else get_layout(layout).name      # an unknown name fails here
        self.device = resolve_device(device)
        self.checkpoints = resolve_checkpoints(checkpoints)
        self.stages = load_stages(self.checkpoints, weights, self.device, overrides)
        if 2 not in self.stages:
            raise ValueError(f"checkpoints=[...] holds no stage [2] model (given: {sorted(self.stages)})")
        m2 = self.stages[2][1]["model"]
        if self.layout != G.DEFAULT_LAYOUT and m2.get("name") != "series":
            raise ValueError(f"layout={self.layout} needs a stage 2 that reads any rows (model=series, as the shipped "
                             f"weights/stage2.pt); this one is model={m2.get('name')}, which reads only "
                             f"{G.DEFAULT_LAYOUT}: pass layout={G.DEFAULT_LAYOUT}")
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

    def probabilities(self, pages: list[np.ndarray], layout: Layout | None = None,
                      columns: tuple[int, int] | None = None, timer: str = "stage2") -> np.ndarray:
        """(N, R, H, W): a channel per row of ``layout`` (default: the competition's page)."""
        _, cfg2, members = self.stages[2]
        weights = self.stages[2][0].weights.tolist()
        baselines = None if layout is None or layout.baselines == G.BASELINES else list(layout.baselines)
        with self.timer(timer), torch.autocast(self.device.type, self.dtype, enabled=self.dtype is not None):
            return stage2_predict(members, cfg2["model"], pages, weights, self.tta_flip, self.device,
                                  self.batch_size, baselines, columns)

    def detect(self, page: np.ndarray) -> tuple[Layout | None, str]:
        """The row structure of a rectified page (``pagekit.layout_match``; its strips not yet named), or None and
        why not."""
        kx, ky = self.k
        dense = get_layout(layout_match.DENSE)
        prob = self.probabilities([page], dense, layout_match.profile_columns(kx), "layout")[0].max(0)
        return layout_match.match_rows(layout_match.find_rows(prob, ky))

    def extract(self, probs: np.ndarray, fs: int, lengths: dict[str, int] | None, layout: Layout,
                rows=None) -> tuple[dict, dict]:
        """One page's probabilities -> (lead -> mV, lead -> confidence)."""
        with self.timer("extract"):
            return extract_with_confidence(probs, lengths or full_lengths(fs, layout), fs, self.k,
                                           self.extract_cfg, layout, rows)

    def _rows_read(self, page: np.ndarray):
        """(structure or None, why not, probabilities, read_rows' rows, the strips named) of one page."""
        structure, why = self.detect(page)
        if structure is None:
            return None, why, None, (None, None), []
        probs = self.probabilities([page], structure)[0]
        with self.timer("extract"):
            rows = read_rows(probs, self.k, self.extract_cfg, structure)
        named = layout_match.name_strips(rows[0], structure, self.k[0]) if structure.strips else []
        return structure, why, probs, rows, named

    def read_auto(self, image: np.ndarray, page: np.ndarray, flags: dict, fs: int, lengths: dict | None) -> Reading:
        """One rectified page in the layout it prints: its rows found, its strips named by the leads they repeat
        (a strip that repeats none clearly is left out, with a doubt, and named ``?`` in the layout's name: ``3x4+?``);
        not read when its rows fit no layout.
        Where stages 0 and 1 put the rows where no layout prints them, the whole image taken as the page is tried
        too (stage 0 learned its pages from 3x4+II ones and misplaces some of other layouts), flagged
        ``whole_image``; not where a strip repeats no lead (on eik_dev a II strip then matched aVF on the whole
        image).  Two or more strips that all repeat no lead reject the layout: such rows are not where it puts
        them."""
        found = self._rows_read(page)
        if found[0] is None:
            whole = cv2.resize(image, G.page_size(self.k), interpolation=cv2.INTER_AREA)
            retry = self._rows_read(whole)
            if retry[0] is not None:
                found, page, flags = retry, whole, {**flags, "whole_image": True}
        structure, why, probs, (rows_mv, p_rows), named = found
        if structure is None:
            return Reading({}, page, {}, flags, None, failure=why)
        if len(named) > 1 and not any(lead for lead, _ in named):
            return Reading({}, page, {}, flags, None, failure=(
                f"none of the {len(named)} rhythm strips of {structure.name.partition('+')[0]}+{len(named)} repeats "
                f"a lead of the rows: the rows are not where that layout puts them"))
        layout, notes, keep = structure, [], list(range(len(structure.rows)))
        if structure.strips:
            strips = [lead for lead, _ in named if lead]
            keep += [len(structure.rows) + i for i, (lead, _) in enumerate(named) if lead]
            notes = [f"rhythm strip {i + 1} repeats no lead of the rows clearly (best match {db:.1f} dB): not "
                     f"written" for i, (lead, db) in enumerate(named) if lead is None]
            name = f"{structure.name.partition('+')[0]}+{','.join(lead or '?' for lead, _ in named)}"
            layout = Layout(name, structure.rows, tuple(strips), tuple(structure.baselines[r] for r in keep))
        rows = ([rows_mv[r] for r in keep], [p_rows[r] for r in keep])
        leads, confidence = self.extract(probs[keep], fs, lengths, layout, rows)
        return Reading(leads, page, confidence, flags, layout, notes=notes)

    def run(self, paths: list[Path], fs: list[int], lengths: list[dict[str, int] | None]) -> list[Reading]:
        """Several images at once (one batch per stage) -> a Reading per image."""
        with self.timer("read"):
            images = [read_image(p) for p in paths]
        pages, flags = self.rectifier.rectify(images, paths)
        if self.layout == "auto":
            return [self.read_auto(image, page, flag, f, n)
                    for image, page, flag, f, n in zip(images, pages, flags, fs, lengths)]
        layout = get_layout(self.layout)
        probs = self.probabilities(pages, layout)
        out = []
        for prob, page, flag, f, n in zip(probs, pages, flags, fs, lengths):
            leads, confidence = self.extract(prob, f, n, layout)
            out.append(Reading(leads, page, confidence, flag, layout))
        return out
