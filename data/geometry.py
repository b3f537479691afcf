"""Page geometry of the canonical ECG page: millimetres, pixels, time and millivolts on the page, and where the
layout (``data.layout``: the competition's 3x4+II by default, others by name) puts each lead.

All coordinates are pixels of the canonical 0001 page (2200x1700, Letter landscape at 200 DPI) multiplied by a
scale ``k`` (k=2 gives a 4400x3400 page).  x grows to the right, y downwards, pixel centres at integers.
"""
from __future__ import annotations

import numpy as np

from data.layout import DEFAULT as DEFAULT_LAYOUT
from data.layout import DURATION_S, LEADS, Layout, LeadSlot, get_layout  # noqa: F401 - their home is data.layout

DPI = 200
PX_PER_MM = DPI / 25.4                  # 7.874
PAGE_W_MM, PAGE_H_MM = 279.4, 215.9     # Letter, landscape
PAGE_W, PAGE_H = 2200, 1700
MM_PER_S, MM_PER_MV = 25.0, 10.0
PX_PER_S = MM_PER_S * PX_PER_MM         # 196.85
PX_PER_MV = MM_PER_MV * PX_PER_MM       # 78.74
MINOR_MM, MAJOR_MM = 1.0, 5.0
MAJOR_PX = MAJOR_MM * PX_PER_MM         # 39.37

X_T0 = 15.0 * PX_PER_MM                 # x of t = 0 s: 118.11
CAL_X = (10.0 * PX_PER_MM, X_T0)        # the 1 mV calibration pulse spans x = 78.74 .. 118.11
# Where a trace's ink lies against the positions here, px at k = 1: ECG-Image-Kit (matplotlib) draws its traces
# half a pixel left of the points its JSON records and of its grid (whose lines matplotlib snaps to whole pixels),
# so every reading of its pages came out 1.27 samples early at 500 Hz, exactly placed pages included
# (docs/results.md).  The renderer draws the ink there, stage 2 learns it there, the extraction reads it there.
INK_DX = -0.5
# ECG-Image-Kit anchors its grid on the bottom page edge: major lines at y = PAGE_H - n*MAJOR_PX.
GRID_ORIGIN = (0.0, PAGE_H - np.floor(PAGE_H / MAJOR_PX) * MAJOR_PX)

# The layout: data/layouts/3x4+II.yaml through data.layout (rows, strips, baselines); other layouts by name.
PAGE_LAYOUT = get_layout(DEFAULT_LAYOUT)
LAYOUT = PAGE_LAYOUT.rows
BASELINES = PAGE_LAYOUT.baselines      # zero-mV y of the three 3x4 rows and the rhythm row: 703.5 ... 1531.5
RHYTHM_LEAD = PAGE_LAYOUT.strips[0]
N_ROWS = PAGE_LAYOUT.n_rows            # 3 rows of short leads + the rhythm row
SHORT_S = DURATION_S / PAGE_LAYOUT.n_cols
FS_VALUES = (250, 256, 500, 512, 1000, 1025)


def as_layout(layout: str | Layout | None) -> Layout:
    """A layout given as itself, by name, or as None (the competition's page)."""
    return layout if isinstance(layout, Layout) else get_layout(layout or DEFAULT_LAYOUT)


def lead_slots(layout: str | Layout | None = None) -> list[LeadSlot]:
    """The printed traces (default: the 12 short leads in the 3x4 block, then the 10 s rhythm strip of lead II)."""
    return as_layout(layout).slots()


def short_slot(lead: str) -> LeadSlot:
    return next(s for s in lead_slots() if s.lead == lead and not s.is_rhythm)


def sig_len(fs: int) -> int:
    return int(round(DURATION_S * fs))


def lead_sample_window(lead: str, fs: int) -> tuple[int, int]:
    """Sample range [start, stop) of ``lead`` in a 10 s record: the full record for II, else its quarter.

    Quarters are split as ``j*n//4`` so that fs with fractional 2.5 s lengths (1025 Hz) still tile the record;
    readers of real data take lengths from test.csv's number_of_rows instead of assuming this.
    """
    if lead == RHYTHM_LEAD:
        return 0, sig_len(fs)
    return slot_sample_window(short_slot(lead), fs)


def slot_sample_window(slot: LeadSlot, fs: int, layout: str | Layout | None = None) -> tuple[int, int]:
    """Sample range [start, stop) a printed slot shows (a rhythm strip shows the whole record)."""
    return as_layout(layout).slot_samples(slot, sig_len(fs))


def mm_to_px(mm, k: float = 1.0):
    return np.asarray(mm) * PX_PER_MM * k


def px_to_mm(px, k: float = 1.0):
    return np.asarray(px) / (PX_PER_MM * k)


def page_size(k: float | tuple[float, float] = 1.0) -> tuple[int, int]:
    """(width, height) in pixels of the canonical page at scale k, or at (kx, ky) for pages stretched in time
    (k = (2, 1) gives the 4400 x 1700 pages some top solutions segment)."""
    kx, ky = scales(k)
    return int(round(PAGE_W * kx)), int(round(PAGE_H * ky))


def scales(k: float | tuple[float, float]) -> tuple[float, float]:
    """(kx, ky) of a scale given as one number or a pair."""
    return (float(k), float(k)) if np.isscalar(k) else (float(k[0]), float(k[1]))


def time_to_x(t, k: float = 1.0):
    return (X_T0 + PX_PER_S * np.asarray(t)) * k


def x_to_time(x, k: float = 1.0):
    return (np.asarray(x) / k - X_T0) / PX_PER_S


def ink_time(x, k: float = 1.0):
    """The time whose ink page column ``x`` shows: a trace's ink lies ``INK_DX`` left of its time's x."""
    return x_to_time(np.asarray(x) - INK_DX * k, k)


def mv_to_y(mv, row: int, k: float = 1.0, layout: str | Layout | None = None):
    return (as_layout(layout).baselines[row] - PX_PER_MV * np.asarray(mv)) * k


def y_to_mv(y, row: int, k: float = 1.0, layout: str | Layout | None = None):
    return (as_layout(layout).baselines[row] - np.asarray(y) / k) / PX_PER_MV


LABEL_OFFSET = (20.0, 44.0)  # lead-name centre relative to (x of the slot start, row baseline), canonical px


def lead_label_centre(slot: LeadSlot, k: float = 1.0, layout: str | Layout | None = None) -> np.ndarray:
    """Centre of the printed lead name, just below-right of the start of its trace."""
    return np.array([time_to_x(slot.t0) + LABEL_OFFSET[0], as_layout(layout).baselines[slot.row] + LABEL_OFFSET[1]]) * k


def page_corners(k: float = 1.0) -> np.ndarray:
    w, h = PAGE_W * k, PAGE_H * k
    return np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)


def grid_lattice(k: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """5 mm grid intersections inside the page: (points (N,2) in px, lattice indices (N,2) as (i_col, j_row))."""
    xs = np.arange(GRID_ORIGIN[0], PAGE_W + 1e-6, MAJOR_PX)
    ys = np.arange(GRID_ORIGIN[1], PAGE_H + 1e-6, MAJOR_PX)
    jj, ii = np.meshgrid(np.arange(len(ys)), np.arange(len(xs)), indexing="ij")
    pts = np.stack([xs[ii], ys[jj]], -1).reshape(-1, 2) * k
    return pts, np.stack([ii, jj], -1).reshape(-1, 2)


def trace_points(signals, fs: int, layout: str | Layout | None = None) -> dict[int, np.ndarray]:
    """slot index (order of :func:`lead_slots`) -> (N, 2) canonical page px of every plotted sample.  ``signals``
    is a frame of the 12 leads over the record (the train-CSV layout); pure geometry, shared by the renderer and
    every stage's targets."""
    layout = as_layout(layout)
    out = {}
    for i, slot in enumerate(layout.slots()):
        a, b = layout.slot_samples(slot, sig_len(fs))
        v = signals[slot.lead].to_numpy()[a:b]
        t = np.arange(a, b) / fs
        ok = np.isfinite(v)
        out[i] = np.stack([time_to_x(t[ok]), mv_to_y(v[ok], slot.row, layout=layout)], -1)
    return out


def ink_points(signals, fs: int, layout: str | Layout | None = None) -> dict[int, np.ndarray]:
    """:func:`trace_points` moved to where a printed trace's ink lies (``INK_DX``): what the renderer draws and
    stage 2's targets mark."""
    return {i: p + (INK_DX, 0.0) for i, p in trace_points(signals, fs, layout).items()}
