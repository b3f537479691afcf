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
from pagekit import layout_match, page_fit, registration
from pagekit.confidence import calibration_for
from pagekit.grid import find_grid, grid_homography
from pagekit.extract import ExtractConfig, extract_with_confidence, read_rows
from pagekit.image import read_image
from pagekit.weights import CALIBRATION, resolve_checkpoints
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
    register: bool = True                                 # read each lead where the page's printed grid shows it
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
                         self.stage0_tta, self.extract, overrides, self.batch_size, self.precision, self.layout,
                         self.register)


@dataclass
class Reading:
    """What a digitizer read from one image: lead -> mV (the lengths asked for, from the start of the lead's
    printed window), the rectified page it read them from (None when no image was read), per lead {"trace_prob",
    "gap_share", "near_share", "steep_prob", "fit_db"} (``pagekit.extract``) and "expected_snr_db"
    (``pagekit.confidence``: with the shipped stage 2), flags of what went wrong on the way (``no_page``,
    ``lattice_fallback``: ``stage1_rectify.rectifier``), the layout it was read as, and, when nothing was read, why
    (``failure``)."""
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
    # Rows read where the page prints no trace: stage 2 lights some grid, shade or text there, weakly.  Readings with
    # every lead on its own row have a median trace probability of 0.82-0.97 on ../shared/real_pages and about 0.9 on
    # ECG-Image-Kit's renders; two readings with their rows between the printed ones or on empty paper 0.26-0.37.
    MIN_TRACE_PROB = 0.5

    def faint(self) -> float | None:
        """The median trace probability over the leads read, when it is below ``MIN_TRACE_PROB`` (else None)."""
        p = [c["trace_prob"] for c in self.confidence.values() if "trace_prob" in c]
        median = float(np.median(p)) if p else None
        return median if median is not None and median < self.MIN_TRACE_PROB else None

    def gappy(self) -> list[str]:
        """The leads more than ``MAX_GAP_SHARE`` filled across gaps."""
        return [lead for lead, c in self.confidence.items() if c.get("gap_share", 0.0) > self.MAX_GAP_SHARE]

    def doubts(self) -> list[str]:
        """Why this reading should be checked by eye before use (empty: none known)."""
        out = list(self.notes)
        if self.flags.get("no_page") and not self.flags.get("grid_page"):
            out.append("no page outline found, the whole image was read as the page: its time and mV scales hold "
                       "only where the image is the whole page")
        if self.flags.get("whole_image"):
            out.append("the page outline and grid found put the rows where no layout prints them: the whole image "
                       "was read as the page")
        if self.flags.get("lattice_fallback") and not self.flags.get("grid_page"):
            out.append("the 5 mm grid could not be followed, the page outline alone placed it")
        gappy = self.gappy()
        if gappy:
            out.append(f"little trace found for {', '.join(gappy)} (over half of it filled across gaps)")
        return out

    @property
    def status(self) -> str:
        """``failed`` (nothing read, ``failure`` says why), ``check`` when there is a doubt (:meth:`doubts`), or
        ``ok``."""
        return "failed" if self.failure else "check" if self.doubts() else "ok"


@dataclass
class RowsRead:
    """A page's rows as read before they are cut into leads: the layout structure they fit (None: none, ``why``),
    the page, its flags, its probabilities, ``read_rows``' paths, the strips named, doubts."""
    structure: Layout | None
    why: str
    page: np.ndarray
    flags: dict
    probs: np.ndarray | None = None
    rows_mv: list | None = None
    p_rows: list | None = None
    named: list = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    image_cols: tuple[int, int] | None = None     # page columns the image covers (a page placed from its grid)


def _shift_x(a: np.ndarray, dx: int, fill=None, axis: int = -1) -> np.ndarray:
    """``a`` moved ``dx`` columns along ``axis`` (to higher indices), the columns moved in filled with ``fill``
    (None: the edge column repeated)."""
    if dx == 0:
        return a
    out = np.roll(a, dx, axis)
    idx = [slice(None)] * a.ndim
    idx[axis] = slice(0, dx) if dx > 0 else slice(dx, None)
    if fill is None:
        edge = [slice(None)] * a.ndim
        edge[axis] = slice(dx, dx + 1) if dx > 0 else slice(dx - 1, dx)
        out[tuple(idx)] = out[tuple(edge)]
    else:
        out[tuple(idx)] = fill
    return out


def _grid_flags(flags: dict) -> dict:
    """The flags of a page placed from its grid: no lattice followed (``Rectifier.place``)."""
    return {**flags, "grid_page": True, "lattice_fallback": True}


def _outside_image(leads: dict[str, np.ndarray], layout: Layout, fs: int, cols: tuple[int, int], kx: float) -> None:
    """NaN (in place) for every sample whose time falls on page columns the image does not cover (a page cut at one
    side): the extraction would fill them flat, a value nobody printed."""
    n = G.sig_len(fs)
    for lead, v in leads.items():
        a = layout.lead_samples(lead, n)[0]
        x = G.time_to_x((a + np.arange(len(v))) / fs, kx)
        outside = (x < cols[0]) | (x > cols[1])
        if outside.any():
            leads[lead] = np.where(outside, np.nan, v)


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
                 precision: str = "auto", layout: str = G.DEFAULT_LAYOUT, register: bool = True):
        self.layout = layout if layout == "auto" else get_layout(layout).name      # an unknown name fails here
        self.register = register
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
        self.calibration = calibration_for(self.checkpoints, len(self.stages[2][2]), CALIBRATION)
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

    def detect(self, page: np.ndarray, free: bool = False) -> tuple[Layout | None, str]:
        """The row structure of a rectified page, its strips not yet named (``pagekit.layout_match``: rows where a
        layout's template puts them; with ``free``, ``pagekit.page_fit``: rows of ink anywhere, the baselines
        theirs), or None and why not."""
        if free:
            with self.timer("layout"):
                return page_fit.match_free(page_fit.ink_rows(page))
        kx, ky = self.k
        dense = get_layout(layout_match.DENSE)
        prob = self.probabilities([page], dense, layout_match.profile_columns(kx), "layout")[0].max(0)
        return layout_match.match_rows(layout_match.find_rows(prob, ky))

    def extract(self, probs: np.ndarray, fs: int, lengths: dict[str, int] | None, layout: Layout,
                rows=None, page: np.ndarray | None = None, flags: dict | None = None) -> tuple[dict, dict]:
        """One page's probabilities -> (lead -> mV, lead -> confidence); with the rectified ``page`` (and
        ``register``), the rows moved back by where its grid lies (``pagekit.registration``; only on a page stages 0
        and 1 placed: without a page outline, or placed from its grid, its grid is not on the canonical one)."""
        shift = None
        placed = not any((flags or {}).get(f) for f in ("no_page", "whole_image", "grid_page"))
        if self.register and page is not None and placed:
            with self.timer("register"):
                shift = registration.measure(page, self.k)
        with self.timer("extract"):
            return extract_with_confidence(probs, lengths or full_lengths(fs, layout), fs, self.k,
                                           self.extract_cfg, layout, rows, shift)

    def _rows_read(self, page: np.ndarray, flags: dict, image_cols: tuple[int, int] | None = None) -> RowsRead:
        """One page's rows read: where its layout's template puts them, or, given ``image_cols`` (the columns of the
        page the image covers: a page placed from its grid), wherever they are, with t = 0 found from the traces
        and the page moved so that it lies where the canonical page has it."""
        structure, why = self.detect(page, free=image_cols is not None)
        if structure is None:
            return RowsRead(None, why, page, flags)
        probs = self.probabilities([page], structure)[0]
        with self.timer("extract"):
            rows_mv, p_rows = read_rows(probs, self.k, self.extract_cfg, structure)
        notes = []
        if image_cols is not None:
            x0, how = page_fit.time_origin(rows_mv, p_rows, self.k[0], image_cols)
            if x0 is None:
                return RowsRead(None, f"{structure.name}: no trace found along its rows", page, flags)
            dx = int(round(G.time_to_x(0.0, self.k[0]) - x0))
            page, probs = _shift_x(page, dx, 255, axis=1), _shift_x(probs, dx, 0.0)
            rows_mv, p_rows = [_shift_x(r, dx) for r in rows_mv], [_shift_x(p, dx, 0.0) for p in p_rows]
            notes = [f"no page outline: placed from its 5 mm grid by one affine map (no curl or perspective "
                     f"followed), the rows where they are found and t = 0 {how}"]
            image_cols = (image_cols[0] + dx, image_cols[1] + dx)
        named = layout_match.name_strips(rows_mv, structure, self.k[0]) if structure.strips else []
        if image_cols is not None and len(named) == 3 and not any(lead for lead, _ in named):
            six = self._as_6x2(page, structure)
            if six is not None:
                return RowsRead(six[0], why, page, flags, six[1], six[2], six[3], [], notes + [six[4]], image_cols)
        return RowsRead(structure, why, page, flags, probs, rows_mv, p_rows, named, notes, image_cols)

    def _as_6x2(self, page: np.ndarray, structure: Layout):
        """Six rows whose three "strips" repeat no lead of the rows above them: ``6x2`` if its six limb leads,
        printed over the same 5 s, obey Einthoven and Goldberger to ``page_fit.LIMB_DB`` (read as 3x4 with strips,
        a 6x2 page's strips match nothing; read as 6x2, a 3x4 page's rows break the limb relations).  (layout,
        probabilities, paths, their probabilities, the note) or None."""
        six = Layout("6x2", get_layout("6x2").rows, (), structure.baselines)
        probs = self.probabilities([page], six)[0]
        with self.timer("extract"):
            rows_mv, p_rows = read_rows(probs, self.k, self.extract_cfg, six)
        agree = layout_match.limb_agreement_db(rows_mv, six, self.k[0])
        if agree is None or agree < page_fit.LIMB_DB:
            return None
        return six, probs, rows_mv, p_rows, (f"six rows, no strip repeating a lead: read as 6x2, its limb leads "
                                             f"obeying Einthoven and Goldberger to {agree:.1f} dB")

    def _grid_page(self, image: np.ndarray) -> tuple[np.ndarray, tuple[int, int]] | None:
        """The image placed on the page by its 5 mm grid (``pagekit.grid``): (page, the columns the image covers),
        or None where no grid is seen."""
        grid = find_grid(image)
        if grid is None:
            return None
        H = grid_homography(image, grid)
        page = self.rectifier.place(image, H)
        h, w = image.shape[:2]
        xs = cv2.perspectiveTransform(np.float64([[[0, h / 2], [w, h / 2]]]), H)[0, :, 0] * self.k[0]
        return page, (int(max(0, xs.min())), int(min(page.shape[1], xs.max())))

    def _recount(self, image: np.ndarray, found: RowsRead) -> RowsRead:
        """A template's rows whose strip repeats no lead, checked against the rows of trace the image holds (its
        grid page's rows of ink): two or more rows more than the template read means the template saw part of the
        page (on eik_layouts, 6x2 pages whose page outline stage 0 misplaced fitted 3x4+II), and the page is read
        from its grid instead."""
        placed = self._grid_page(image)
        if placed is None:
            return found
        with self.timer("layout"):
            n = len(page_fit.trace_rows(page_fit.ink_rows(placed[0])))
        if n < found.structure.n_rows + 2:
            return found
        grid = self._rows_read(placed[0], _grid_flags(found.flags), placed[1])
        if grid.structure is None:
            grid.why = (f"the rows fit {found.structure.name} but its strip repeats no lead, and the image holds {n} "
                        f"rows of trace; {grid.why}")
        return grid

    def read_auto(self, image: np.ndarray, page: np.ndarray, flags: dict, fs: int, lengths: dict | None) -> Reading:
        """One rectified page in the layout it prints: its rows found, its strips named by the leads they repeat
        (a strip that repeats none clearly is left out, with a doubt, and named ``?`` in the layout's name: ``3x4+?``);
        not read when its rows fit no layout.
        Where stages 0 and 1 put the rows where no layout's template puts them, the whole image taken as the page is
        tried too (stage 0 learned its pages from 3x4+II ones and misplaces some of other layouts), flagged
        ``whole_image``.  Where the rows fit no template either (real paper is mostly cropped to its grid: no page
        outline, and the whole image taken as the page puts its rows anywhere), the page is placed from its own 5 mm
        grid and read with its rows where they are (``pagekit.page_fit``), flagged ``grid_page``.  Two or more
        strips that all repeat no lead reject the layout: such rows are not where it puts them; so do the six
        limb leads of rows read as 6x2 that break Einthoven and Goldberger: such rows print other leads."""
        tries = [self._rows_read(page, flags)]
        if tries[-1].structure is None and not flags.get("no_page"):
            whole = cv2.resize(image, G.page_size(self.k), interpolation=cv2.INTER_AREA)
            tries.append(self._rows_read(whole, {**flags, "whole_image": True}))
        if tries[-1].structure is None:
            placed = self._grid_page(image)
            if placed is None:
                tries.append(RowsRead(None, "no 5 mm grid seen on the image", page, flags))
            else:
                tries.append(self._rows_read(placed[0], _grid_flags(flags), placed[1]))
        found = next((t for t in tries if t.structure is not None), None)
        unnamed = found is not None and found.named and not any(lead for lead, _ in found.named)
        if unnamed and not found.flags.get("grid_page"):
            found = self._recount(image, found)
            if found.structure is None:
                return Reading({}, found.page, {}, found.flags, None, failure=found.why)
        if found is None:
            return Reading({}, tries[0].page, {}, flags, None, failure="; ".join(dict.fromkeys(t.why for t in tries)))
        structure, page, flags, probs = found.structure, found.page, found.flags, found.probs
        rows_mv, p_rows, named = found.rows_mv, found.p_rows, found.named
        if len(named) > 1 and not any(lead for lead, _ in named):
            return Reading({}, page, {}, flags, None, failure=(
                f"none of the {len(named)} rhythm strips of {structure.name.partition('+')[0]}+{len(named)} repeats "
                f"a lead of the rows: the rows are not where that layout puts them (force a layout with layout=NAME)"))
        layout, notes, keep = structure, list(found.notes), list(range(len(structure.rows)))
        if structure.strips:
            strips = [lead for lead, _ in named if lead]
            keep += [len(structure.rows) + i for i, (lead, _) in enumerate(named) if lead]
            notes += [f"rhythm strip {i + 1} repeats no lead of the rows clearly (best match {db:.1f} dB): not "
                     f"written" for i, (lead, db) in enumerate(named) if lead is None]
            name = f"{structure.name.partition('+')[0]}+{','.join(lead or '?' for lead, _ in named)}"
            layout = Layout(name, structure.rows, tuple(strips), tuple(structure.baselines[r] for r in keep))
        rows = ([rows_mv[r] for r in keep], [p_rows[r] for r in keep])
        if structure.name.startswith("6x2"):      # six limb leads over one 5 s: a 3x4 page has six even rows too
            agree = layout_match.limb_agreement_db(rows[0], layout, self.k[0])
            if agree is not None and agree < page_fit.LIMB_DB:
                return Reading({}, page, {}, flags, None, failure=(
                    f"the rows fit {layout.name}, but the limb leads read on them do not obey Einthoven and "
                    f"Goldberger ({agree:.1f} dB, below {page_fit.LIMB_DB:.0f}): they print other leads than that "
                    f"layout puts there (force a layout with layout=NAME)"))
        leads, confidence = self.extract(probs[keep], fs, lengths, layout, rows, page, flags)
        if found.image_cols is not None:
            _outside_image(leads, layout, fs, found.image_cols, self.k[0])
        return Reading(leads, page, confidence, flags, layout, notes=notes)

    def finish(self, reading: Reading, fs: int) -> Reading:
        """A reading's verdict: none where over half of its leads were mostly filled across gaps (the leads written
        would be PCHIP's, not the page's: a synthetic page read with its rows off them came out so at -10 to 0 dB) or
        where, with ``layout=auto``, its leads' median trace probability is below ``Reading.MIN_TRACE_PROB`` (rows
        read where the page prints none), else each lead's expectation (:meth:`expect`)."""
        # faint rows only where the layout is read from the page: on the competition's page a weak reading scores
        # above the zeros a failed one gets
        gappy, faint = reading.gappy(), reading.faint() if self.layout == "auto" else None
        too_gappy = len(gappy) * 2 > len(reading.confidence)
        if reading.failure or not (too_gappy or faint is not None):
            return self.expect(reading, fs)
        why = (f"{len(gappy)} of {len(reading.confidence)} leads of {reading.layout.name} more than half filled across "
               f"gaps" if too_gappy else
               f"the leads of {reading.layout.name} were read at a median trace probability of {faint:.2f} (below "
               f"{reading.MIN_TRACE_PROB})")
        return Reading({}, reading.page, {}, reading.flags, None, failure=(
            f"little trace found: {why} (a page too faint for stage 2, or rows where no trace is)"))

    def expect(self, reading: Reading, fs: int) -> Reading:
        """Each lead's ``expected_snr_db`` added to its confidence, and the leads expected below the calibration's
        threshold noted as a doubt (nothing without a calibration for this stage 2)."""
        if self.calibration is None or reading.failure:
            return reading
        expected = self.calibration.expected_snr_db(reading.leads, reading.confidence, reading.flags, fs,
                                                    reading.layout.strips)
        for lead, db in expected.items():
            reading.confidence[lead]["expected_snr_db"] = round(db, 2)
        low = {lead: db for lead, db in expected.items() if db < self.calibration.check_below_db}
        if low:
            reading.notes.append(f"expected to read below {self.calibration.check_below_db:.0f} dB: "
                                 + ", ".join(f"{lead} ({db:.1f})" for lead, db in low.items()))
        return reading

    def run(self, paths: list[Path], fs: list[int], lengths: list[dict[str, int] | None]) -> list[Reading]:
        """Several images at once (one batch per stage) -> a Reading per image."""
        with self.timer("read"):
            images = [read_image(p) for p in paths]
        pages, flags = self.rectifier.rectify(images, paths)
        if self.layout == "auto":
            return [self.finish(self.read_auto(image, page, flag, f, n), f)
                    for image, page, flag, f, n in zip(images, pages, flags, fs, lengths)]
        layout = get_layout(self.layout)
        probs = self.probabilities(pages, layout)
        out = []
        for prob, page, flag, f, n in zip(probs, pages, flags, fs, lengths):
            leads, confidence = self.extract(prob, f, n, layout, page=page, flags=flag)
            out.append(self.finish(Reading(leads, page, confidence, flag, layout), f))
        return out
