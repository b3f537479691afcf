"""Where a page's rows and its time origin lie when nothing placed the page: a page placed from its grid
(``pagekit.grid``) has the right millimetres, but its rows and its t = 0 are wherever the printer put them.

1. Rows (``ink_rows``, ``match_free``): ink (darker than the paper around it in every colour channel, where the
   grid is dark in one or two) lies along each printed row, as the trace keeps to its baseline; the rows of ink
   that run across the page (a label or a line of text covers a patch of it), counted and checked for spacing, give
   the layout's structure, and the layout's baselines are the rows found: 3 evenly spaced rows are ``3x4``, with
   1-3 strips under them ``3x4+...`` (strips named by ``layout_match.name_strips`` later), 7 rows ``6x2+II``, 12
   rows ``12x1``.  Six rows are 3x4 with three strips or 6x2: read as the former, whose strips must then each
   repeat a lead of the rows; where none does, as 6x2 if its six limb leads (printed over the same 5 s) obey
   Einthoven and Goldberger to ``LIMB_DB`` (``inference.pipeline``), else refused.
2. Time origin (``time_origin``): the rows' traces span the 10 s (250 mm); a calibration pulse (1 mV for a few
   mm) before or after them is left out, and where the traces span more than 10 s with no pulse recognised, the
   10 s are those before their end; a page cut at one side keeps the time of the other.
Hand-written: rules over a few numbers that no library holds.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import find_peaks

from data import geometry as G
from data.layout import Layout, get_layout
from pagekit.layout_match import Row

INK = 0.35                    # ink: darker than the paper around it by this share in every channel
ROW_STRENGTH = 0.4            # a row of trace: its ink profile this high against the strongest row's ...
ROW_COVER = 0.4               # ... and ink within 2 mm of it in this share of the page's inked columns
LIMB_DB = 6.0                 # six rows read as 6x2 only where its limb leads obey Einthoven and Goldberger to this
BY_COUNT = {3: "3x4", 4: "3x4+II", 5: "3x4+II,II", 6: "3x4+II,II,II", 7: "6x2+II", 12: "12x1"}
EVEN = 0.15                   # rows of a block are evenly spaced to this share of their pitch
STRIP_GAP = (0.6, 1.5)        # a strip sits this many block pitches under the row above it
PITCH_MM = (12.0, 60.0)       # rows of trace are this far apart on any paper we know
SPAN_MM = G.DURATION_S * G.MM_PER_S      # 250 mm of trace per row
SPAN_TOL_MM = 2.5             # a row spanning 250 mm to this: the whole 10 s, no pulse (a pulse is 5 mm)
PULSE_MV = (0.6, 1.4)         # a calibration pulse stands this high ...
PULSE_MM = (1.5, 10.0)        # ... for this long, at one end of the rows
EDGE_MM = 3.0                 # traces ending this close to the image's edge were cut by it
LIT = 0.5                     # a column holds trace where the traced pixel's probability is above this
GAP_MM = 10.0                 # gaps in a row's trace up to this long (labels, separators) do not end it


def ink_rows(page: np.ndarray) -> list[Row]:
    """Every peak of a page's ink profile (y in canonical px) with its strength against the strongest and its cover
    (the share of the inked columns with ink within 2 mm of it).  Looked at a quarter of the canonical size."""
    w, h = G.PAGE_W // 4, G.PAGE_H // 4
    small = cv2.resize(page, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    bright = small.max(2) if small.ndim == 3 else small
    paper = cv2.dilate(bright, np.ones((15, 15), np.uint8))
    ink = 1.0 - bright / np.maximum(paper, 1.0) > INK
    profile = gaussian_filter1d(ink.mean(1).astype(np.float64), 1.5)
    peaks, _ = find_peaks(profile, distance=int(G.MAJOR_PX / 4 * 2))
    if not len(peaks) or profile[peaks].max() <= 0:
        return []
    cols, band = ink.any(0), int(round(2 * G.PX_PER_MM / 4))
    top = profile[peaks].max()
    return [Row(4.0 * y, float(profile[y] / top), float(ink[max(0, y - band):y + band + 1].any(0)[cols].mean()))
            for y in peaks]


def trace_rows(rows: list[Row]) -> list[float]:
    """The y of the rows of ink (``ink_rows``) that are rows of trace: ``ROW_STRENGTH`` and ``ROW_COVER``."""
    return [r.y for r in map(Row._make, rows) if r.strength >= ROW_STRENGTH and r.cover >= ROW_COVER]


def match_free(rows: list[Row]) -> tuple[Layout | None, str]:
    """Rows found anywhere on the page (``ink_rows``) -> (the layout structure with its baselines at the rows, or
    None and why not)."""
    ys = trace_rows(rows)
    n = len(ys)
    found = ", ".join(f"{y:.0f}" for y in ys) or "none"
    why = f"{n} trace rows found (y = {found} px on the page placed from its grid)"
    if n not in BY_COUNT:
        return None, f"{why}: no layout we read prints {n} rows (force one with layout=NAME)"
    gaps = np.diff(ys) / G.PX_PER_MM                          # mm
    if len(gaps) and not (PITCH_MM[0] <= gaps.min() and gaps.max() <= PITCH_MM[1]):
        return None, f"{why}: rows {gaps.min():.0f}-{gaps.max():.0f} mm apart, not rows of a paper ECG"
    structure = get_layout(BY_COUNT[n])
    block = len(structure.rows)
    pitch = float(np.median(gaps[:block - 1]))
    if np.abs(gaps[:block - 1] - pitch).max() > EVEN * pitch:
        return None, f"{why}: the {block} rows of {structure.name} are not evenly spaced ({_mm(gaps[:block - 1])})"
    strips = gaps[block - 1:] / pitch
    if len(strips) and not (STRIP_GAP[0] <= strips.min() and strips.max() <= STRIP_GAP[1]):
        return None, f"{why}: the strips of {structure.name} are not spaced like its rows ({_mm(gaps)})"
    return Layout(structure.name, structure.rows, structure.strips, tuple(ys)).check(), ""


def _mm(gaps: np.ndarray) -> str:
    return ", ".join(f"{g:.0f}" for g in gaps) + " mm apart"


def _span(p_row: np.ndarray, kx: float) -> tuple[int, int] | None:
    """First and last column of the longest run of lit columns, gaps up to ``GAP_MM`` bridged."""
    lit = np.flatnonzero(p_row > LIT)
    if not len(lit):
        return None
    breaks = np.flatnonzero(np.diff(lit) > GAP_MM * G.PX_PER_MM * kx)
    starts, ends = np.r_[lit[0], lit[breaks + 1]], np.r_[lit[breaks], lit[-1]]
    i = int(np.argmax(ends - starts))
    return int(starts[i]), int(ends[i])


def _pulse(mv: np.ndarray, a: int, b: int, kx: float, at_start: bool) -> int | None:
    """The column where a calibration pulse at the start (or end) of the trace a..b ends (or begins), if there is
    one: a run at ``PULSE_MV`` that begins at the trace's first column (or ends at its last)."""
    mm = G.PX_PER_MM * kx
    seg = mv[a:b + 1] if at_start else mv[a:b + 1][::-1]
    up = (seg >= PULSE_MV[0]) & (seg <= PULSE_MV[1])
    reach = int(PULSE_MM[1] * mm)
    head = up[:reach]
    start = int(np.argmax(head)) if head.any() else reach
    if start > 2 * mm:                         # the pulse rises within 2 mm of the trace's first column
        return None
    run = start + int(np.argmin(head[start:])) if not head[start:].all() else reach
    if not PULSE_MM[0] * mm <= run - start <= PULSE_MM[1] * mm:
        return None
    return a + run if at_start else b - run


def time_origin(rows_mv: list[np.ndarray], p_rows: list[np.ndarray], kx: float,
                image_cols: tuple[int, int]) -> tuple[float | None, str]:
    """(page column of t = 0, how it was found) from the rows' paths (``extract.read_rows``); ``image_cols``: the
    columns the image covers on the page (a trace ending at one was cut there).  None where no row holds trace."""
    mm = G.PX_PER_MM * kx
    inside = np.zeros(len(p_rows[0]), bool)             # the paper's own edge, lit as a stroke, is no trace
    inside[int(image_cols[0] + EDGE_MM * mm):max(0, int(image_cols[1] - EDGE_MM * mm))] = True
    spans = [(_span(np.where(inside, p, 0.0), kx), mv) for p, mv in zip(p_rows, rows_mv)]
    spans = [(s, mv) for s, mv in spans if s is not None]
    if not spans:
        return None, "no trace"
    a = float(np.median([s[0] for s, _ in spans]))
    b = float(np.median([s[1] for s, _ in spans]))
    left = [x for s, mv in spans if (x := _pulse(mv, *s, kx, True)) is not None]
    right = [x for s, mv in spans if (x := _pulse(mv, *s, kx, False)) is not None]
    half = len(spans) / 2
    if len(left) >= half and len(left) >= len(right):
        return float(np.median(left)), "after the calibration pulses"
    if len(right) >= half:
        return float(np.median(right)) - SPAN_MM * mm, "10 s before the calibration pulses"
    if b - a > (SPAN_MM + SPAN_TOL_MM) * mm:   # more than 10 s: something before them (a pulse not recognised)
        return b - SPAN_MM * mm, "10 s before the traces end"
    if b - a < (SPAN_MM - SPAN_TOL_MM) * mm and a - image_cols[0] <= 2 * EDGE_MM * mm < image_cols[1] - b:
        return b - SPAN_MM * mm, "10 s before the traces end (cut at the left)"
    return a, "where the traces start"
