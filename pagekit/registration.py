"""What rectification left: where the printed 1 mm grid of a rectified page lies against the canonical one, tile by
tile, and each row's offsets from it (``pagekit.extract.slot_values`` reads every lead back where it belongs).

Stages 0 and 1 place a page to within a pixel or two, but that error wanders along a row, and a time error the
metric's one shift per lead cannot take back costs most on steep QRS flanks (issue 27: 1.6-3 dB between exactly
placed pages and end to end on eik_dev).  The grid is printed with the traces, so where its lines lie on the
rectified page is where the traces lie: in each tile (``WIN_MM`` square, half overlapping) the phase of the ink
profile at the 1 mm pitch gives the grid's offset in x (columns) and y (rows), modulo 1 mm.  The tiles' complex
amplitudes are smoothed before the phase is taken (a tile with little grid weighs little, and phases average
across the wrap), and each tile's offset is taken within half a millimetre of the page's own (a page whose grid
as a whole is off by nearly half a pitch keeps its tiles together).  On eik_dev pages placed by stages 0 and 1 the
offset in x moves with the reading's best time shift (Spearman -0.87 over 48 leads), and on exactly placed pages it
is 0 to within 0.1 px.

Not used where the page is not placed at the canonical scale by stages 0 and 1 (``no_page``, ``whole_image``: the
grid's pitch is not the canonical one, its phase turns across the page, which ``MIN_COHERENCE`` also refuses) nor
on pages placed from their grid (``grid_page``): those are moved by whole pixels to put t = 0 where the traces
start, which moves their grid off the canonical phase on purpose.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter, map_coordinates

from data import geometry as G

WIN_MM = 25.0           # tile side: 25 minor lines, a beat's width
SMOOTH_TILES = 1.0      # Gaussian sigma over tiles, applied to the complex amplitudes
MIN_CONTRAST = 0.02     # a page whose grid amplitude is below this share of its ink profile has no grid to read
MIN_COHERENCE = 0.5     # |sum of the tiles' amplitudes| / sum of their sizes: below, the grid's phase turns across
                        # the page (its pitch is not the canonical one: a page not placed at its scale)


@dataclass
class GridShift:
    """Offsets (page px at the page's scale) of the printed grid against the canonical one at tile centres
    ``xc`` x ``yc``: the page shows what the canonical page has at (x, y) at (x + dx, y + dy)."""
    xc: np.ndarray
    yc: np.ndarray
    dx: np.ndarray          # (len(yc), len(xc))
    dy: np.ndarray

    def at(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(dx, dy) at page points, bilinear between tile centres, held at the outermost ones."""
        ij = [np.interp(np.asarray(y, np.float64), self.yc, np.arange(len(self.yc))),
              np.interp(np.asarray(x, np.float64), self.xc, np.arange(len(self.xc)))]
        return (map_coordinates(self.dx, ij, order=1, mode="nearest"),
                map_coordinates(self.dy, ij, order=1, mode="nearest"))


def _ink(page: np.ndarray) -> np.ndarray:
    """Darkness in any channel: grid lines of any colour and the traces (the traces are no grid: they add noise
    the smoothing averages out)."""
    return 255.0 - (page.min(2) if page.ndim == 3 else page).astype(np.float64)


def _phase_offset(c: np.ndarray, pitch: float) -> np.ndarray:
    """Complex amplitude at the grid frequency -> offset of the lines, px, in (-pitch/2, pitch/2]."""
    return -np.angle(c) / (2 * np.pi) * pitch


def measure(page: np.ndarray, k, win_mm: float = WIN_MM) -> GridShift | None:
    """The grid's offsets over a rectified page at scale k (or (kx, ky)); None where no grid shows."""
    kx, ky = G.scales(k)
    ink = _ink(page)
    px, py = G.PX_PER_MM * kx, G.PX_PER_MM * ky
    ox, oy = G.GRID_ORIGIN[0] * kx, G.GRID_ORIGIN[1] * ky
    wx, wy = int(round(win_mm * px)), int(round(win_mm * py))
    H, W = ink.shape
    if W < wx or H < wy:
        return None
    xs, ys = np.arange(0, W - wx + 1, max(wx // 2, 1)), np.arange(0, H - wy + 1, max(wy // 2, 1))
    ex = np.exp(-2j * np.pi * (np.arange(wx) - ox) / px)
    ey = np.exp(-2j * np.pi * (np.arange(wy) - oy) / py)
    cx = np.zeros((len(ys), len(xs)), complex)
    cy = np.zeros_like(cx)
    total = 0.0
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            tile = ink[y:y + wy, x:x + wx]
            col, row = tile.mean(0), tile.mean(1)
            col, row = col - col.mean(), row - row.mean()
            cx[i, j] = np.sum(col * ex) * np.exp(-2j * np.pi * x / px)
            cy[i, j] = np.sum(row * ey) * np.exp(-2j * np.pi * y / py)
            total += np.abs(col).sum() + np.abs(row).sum()
    if total <= 0 or (np.abs(cx).sum() + np.abs(cy).sum()) < MIN_CONTRAST * total:
        return None
    if min(abs(c.sum()) / np.abs(c).sum() for c in (cx, cy)) < MIN_COHERENCE:
        return None
    out = []
    for c, pitch in ((cx, px), (cy, py)):
        page_offset = _phase_offset(c.sum(), pitch)
        smooth = gaussian_filter(c.real, SMOOTH_TILES) + 1j * gaussian_filter(c.imag, SMOOTH_TILES)
        local = _phase_offset(smooth * np.exp(2j * np.pi * page_offset / pitch), pitch)   # around the page's own
        out.append(page_offset + local)
    return GridShift(xs + wx / 2, ys + wy / 2, out[0], out[1])


def row_offsets(shift: GridShift, k, layout, width: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per printed row, at every pixel column: (how far right of its canonical column the page shows it, px; how
    far the row's values read low, mV), from the grid's offsets along the row's baseline."""
    kx, ky = G.scales(k)
    cols = np.arange(width, dtype=np.float64)
    out = []
    for b in G.as_layout(layout).baselines:
        dx, dy = shift.at(cols, np.full(width, b * ky))
        out.append((dx, dy / (ky * G.PX_PER_MV)))          # y grows downwards: a row shown low reads low
    return out
