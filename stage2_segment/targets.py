"""Stage-2 targets: per printed row, the true trace's y at every pixel column of the rectified page, drawn as a
thin, sub-pixel-aware mask.

The positions come from the known signal and the fixed page geometry (``data.geometry``), so real competition
images get the same targets as synthetic ones once rectified.  ``sigma = 0`` gives the sparse target (at most two
pixels per column, the weight split by the fractional y); ``sigma > 0`` a Gaussian of that width (px) in y.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from data import geometry as G


def row_columns(signals: pd.DataFrame, fs: int, k=1.0, layout=None) -> np.ndarray:
    """(R, W) y (page px at scale k or (kx, ky)) of each printed row's trace at every integer column (R rows of
    ``layout``, default the competition's four); NaN off the trace."""
    kx, ky = G.scales(k)
    w, _ = G.page_size(k)
    lay = G.as_layout(layout)
    pts = G.ink_points(signals, fs, lay)
    out = np.full((lay.n_rows, w), np.nan, np.float32)
    cols = np.arange(w, dtype=np.float64)
    for r in range(lay.n_rows):
        p = np.concatenate([pts[i] for i, s in enumerate(lay.slots()) if s.row == r])
        p = p[np.argsort(p[:, 0], kind="stable")] * (kx, ky)
        inside = (cols >= p[0, 0]) & (cols <= p[-1, 0])
        out[r, inside] = np.interp(cols[inside], p[:, 0], p[:, 1])
    return out


def trace_masks(ycols: np.ndarray, height: int, sigma: float = 0.0) -> np.ndarray:
    """(R, W) trace y per column (NaN = none) -> (R, height, W) float32 masks."""
    R, W = ycols.shape
    out = np.zeros((R, height, W), np.float32)
    r, x = np.nonzero(np.isfinite(ycols))
    y = ycols[r, x].astype(np.float64)
    if sigma <= 0:
        y0 = np.floor(y).astype(np.int64)
        f = (y - y0).astype(np.float32)
        for dy, w in ((0, 1 - f), (1, f)):
            yy = y0 + dy
            ok = (yy >= 0) & (yy < height)
            out[r[ok], yy[ok], x[ok]] = w[ok]
        return out
    half = int(np.ceil(3 * sigma))
    for dy in range(-half, half + 2):
        yy = np.floor(y).astype(np.int64) + dy
        ok = (yy >= 0) & (yy < height)
        out[r[ok], yy[ok], x[ok]] = np.exp(-0.5 * ((yy[ok] - y[ok]) / sigma) ** 2)
    return out
