"""The paper's 5 mm grid seen in a raw image, with no page outline: its direction, pitch and phase -> a homography
that maps raw px onto the canonical page at the right millimetres (``grid_homography``).

Real paper ECGs are mostly cropped to the grid, so stage 0 finds no page, and the stage 1 network, shown a page at a
scale it never saw, draws its trained lattice over it rather than the paper's.  The grid itself says the scale:
its lines are coloured (pink, red, orange, blue) where the paper is white and the traces black, so the colour
saturation of a pixel shows the grid alone (a grey grid: its darkness); its profile across the lines, averaged along
them, repeats every 5 mm.  The direction is the shear that makes those profiles sharpest; the pitch, the period
whose multiples the profile's autocorrelation agrees with; the phase, where the folded profile peaks (major lines are
the strongest).  The map places the image's centre at the page's centre with its major lines on the canonical
lattice; where the traces' rows and start lie on the page is the layout's business (``pagekit.page_fit``).
Hand-written: no library estimates a ruled grid's affine frame; a few FFTs and profiles do.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from data import geometry as G

WORK_W = 900                        # px: the image is looked at this wide (minor lines stay 3 px apart)
PRIOR_MM = 265.0                    # a cropped page is about this wide (10 s at 25 mm/s and a margin) ...
PRIOR_RANGE = (0.65, 1.5)           # ... within these factors: a full page, a page cut at one column
MAX_ANGLE_DEG = 6.0                 # photos of paper held roughly square
HARMONICS = 4                       # multiples of the pitch the autocorrelation must agree at
MIN_SCORE = 0.25                    # their mean normalised autocorrelation below this: no grid seen


@dataclass
class Grid:
    """The grid in raw px: major-line pitch along the horizontal (x) and vertical (y) page axes, the lines'
    angles (radians; horizontal lines' from the x axis, vertical lines' from the y axis), the raw px of a major
    line crossing, and how periodic the profiles were (mean autocorrelation at the pitch's multiples, 0..1)."""
    pitch: tuple[float, float]
    angle: tuple[float, float]
    origin: tuple[float, float]
    score: float

    def axes(self) -> np.ndarray:
        """(2, 2) raw px per mm along the page's x (column 0) and y (column 1) axes."""
        (px, py), (ah, av) = self.pitch, self.angle
        return np.array([[np.cos(ah), np.sin(av)], [np.sin(ah), np.cos(av)]]) * np.array([px, py]) / G.MAJOR_MM


def _grid_signals(img: np.ndarray) -> list[np.ndarray]:
    """What shows the grid, high-passed (so the paper's shading drops out): the colour saturation (coloured lines on
    white paper, without the grey traces), then the darkness (a grey grid: black-and-white prints and scans)."""
    f = img.astype(np.float32)
    out = [] if img.ndim == 2 else [f.max(2) - f.min(2)]
    out.append(255.0 - (f if img.ndim == 2 else f.mean(2)))
    return [s - cv2.GaussianBlur(s, (0, 0), 6) for s in out]


def _profile(s: np.ndarray, shear: float, bands: int = 1) -> np.ndarray:
    """(bands, W) mean of ``s`` along lines x = x0 + shear * (y - centre) for each x0 (a vertical line tilted by
    atan(shear) falls in one column), over ``bands`` horizontal bands: one sheared resampling (cv2), then means."""
    h, w = s.shape
    shear_map = np.float32([[1.0, shear, -shear * h / 2], [0.0, 1.0, 0.0]])
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    sheared = cv2.warpAffine(s, shear_map, (w, h), flags=flags, borderValue=0.0)
    inside = cv2.warpAffine(np.ones_like(s), shear_map, (w, h), flags=flags, borderValue=0.0)
    edges = np.linspace(0, h, bands + 1).astype(int)
    return np.stack([sheared[a:b].sum(0) / np.maximum(inside[a:b].sum(0), 1e-6) for a, b in zip(edges, edges[1:])])


def _autocorrelation(profiles: np.ndarray) -> np.ndarray:
    """Mean normalised autocorrelation of the rows of ``profiles``, Hann-windowed (so no edge dominates) and divided
    by the window's own (whose slope would pull every peak to a shorter lag)."""
    n = profiles.shape[1]
    win = np.hanning(n)
    p = (profiles - profiles.mean(1, keepdims=True)) * win
    ac = np.fft.irfft(np.abs(np.fft.rfft(p, 2 * n)) ** 2)[:, :n]
    wac = np.fft.irfft(np.abs(np.fft.rfft(win, 2 * n)) ** 2)[:n]
    ac = ac / np.maximum(wac, 1e-3 * wac[0])
    return (ac / np.maximum(ac[:, :1], 1e-9)).mean(0)


def _pitch(ac: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """(period, score): the period in [lo, hi) px whose first ``HARMONICS`` multiples the autocorrelation agrees at
    best, to 0.02 px."""
    periods = np.arange(lo, hi, 0.02)
    lags = periods[:, None] * np.arange(1, HARMONICS + 1)
    score = np.interp(lags, np.arange(len(ac)), ac, right=0.0).mean(1)
    i = int(np.argmax(score))
    return _refine(ac, float(periods[i])), float(score[i])


def _refine(ac: np.ndarray, p: float) -> float:
    """The period to a fraction of a pixel: each multiple's peak located by a parabola through its three highest
    lags, and the period that fits them all (a line through the origin)."""
    n_max = int(len(ac) / 2 / p)
    lags, orders = [], []
    for n in range(1, n_max + 1):
        a, b = int(n * p - p / 4), int(np.ceil(n * p + p / 4))
        i = a + int(np.argmax(ac[a:b + 1]))
        if 0 < i < len(ac) - 1:
            den = ac[i - 1] - 2 * ac[i] + ac[i + 1]
            lags.append(i + (0.5 * (ac[i - 1] - ac[i + 1]) / den if den < 0 else 0.0))
            orders.append(n)
    if not orders:
        return p
    n, lag = np.array(orders, float), np.array(lags)
    return float((n * lag).sum() / (n * n).sum())


def _axis(s: np.ndarray, lo: float, hi: float) -> tuple[float, float, float, float]:
    """Vertical lines of ``s`` (work px) -> (pitch, angle, x of a major line at the centre row, score)."""
    # the sharpest profile: the shear along which the lines run (every 0.5 degree at half size, then to 0.1)
    deg, half = 0.0, s[::2, ::2]
    for img, step, reach in ((half, 0.5, MAX_ANGLE_DEG), (s, 0.1, 0.4)):
        cands = deg + np.arange(-reach, reach + 1e-9, step)
        deg = float(cands[int(np.argmax([np.var(_profile(img, np.tan(np.radians(d)))[0]) for d in cands]))])
    shear = float(np.tan(np.radians(deg)))
    pitch, score = _pitch(_autocorrelation(_profile(s, shear, bands=8)), lo, hi)
    prof = _profile(s, shear)[0]
    x = np.arange(len(prof))
    # the phase: the profile folded on the pitch, as a complex mean (the major lines pull it most)
    phase = np.angle(np.sum((prof - prof.mean()) * np.exp(2j * np.pi * x / pitch)))
    return pitch, float(np.arctan(shear)), float(phase / (2 * np.pi) * pitch % pitch), score


def find_grid(img: np.ndarray) -> Grid | None:
    """The 5 mm grid of a raw image (BGR or grey), or None where no periodic grid is seen."""
    h, w = img.shape[:2]
    scale = min(1.0, WORK_W / w)
    small = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else img
    prior = small.shape[1] / PRIOR_MM * G.MAJOR_MM
    lo, hi = prior * PRIOR_RANGE[0], prior * PRIOR_RANGE[1]
    for s in _grid_signals(small):
        vx = _axis(s, lo, hi)           # vertical lines: the x pitch
        vy = _axis(s.T, lo, hi)         # horizontal lines, looked at transposed: the y pitch
        if min(vx[3], vy[3]) >= MIN_SCORE or max(vx[3], vy[3]) >= 2 * MIN_SCORE:
            break
    else:
        return None
    px, py = vx[0], vy[0]
    if abs(px - py) > 0.1 * min(px, py):       # paper squares are square: trust the clearer axis for both
        px = py = vx[0] if vx[3] >= vy[3] else vy[0]
    hs, ws = s.shape
    # a vertical major line x = x0 + tan(av) (y - hs/2) and a horizontal one y = y0 + tan(ah) (x - ws/2), both
    # near the centre; their crossing in raw px
    av, ah = vx[1], vy[1]
    x0 = vx[2] + px * np.round((ws / 2 - vx[2]) / px)
    y0 = vy[2] + py * np.round((hs / 2 - vy[2]) / py)
    a, b = np.tan(av), np.tan(ah)
    cx, cy = np.linalg.solve([[1.0, -a], [-b, 1.0]], [x0 - a * hs / 2, y0 - b * ws / 2])
    return Grid((px / scale, py / scale), (ah, av), (cx / scale, cy / scale), min(vx[3], vy[3]))


def grid_homography(img: np.ndarray, grid: Grid) -> np.ndarray:
    """Raw px -> canonical page px (scale 1), at the grid's millimetres: the image's centre near the page's centre,
    a major line crossing on a node of the canonical lattice."""
    from_mm = grid.axes()                                        # mm -> raw px (linear part)
    to_page = np.linalg.inv(from_mm) * G.PX_PER_MM               # raw px -> page px
    h, w = img.shape[:2]
    centre = to_page @ (np.array([w / 2, h / 2]) - np.array(grid.origin))   # page px from the crossing
    want = np.array([G.PAGE_W / 2, G.PAGE_H / 2]) - centre                  # where the crossing goes ...
    node = np.array(G.GRID_ORIGIN) + np.round((want - np.array(G.GRID_ORIGIN)) / G.MAJOR_PX) * G.MAJOR_PX
    t = node - to_page @ np.array(grid.origin)                                # ... snapped to a lattice node
    return np.vstack([np.hstack([to_page, t[:, None]]), [0.0, 0.0, 1.0]])
