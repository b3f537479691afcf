"""Stage-1 targets, all from one per-pixel map of canonical page coordinates (NaN off the page):

- ``heatmap``: a Gaussian of width ``sigma`` (input px) around every 5 mm intersection, evaluated from each pixel's
  exact fractional distance to its nearest node, so the peak sits at the true sub-pixel position;
- ``col`` / ``row``: the index of the nearest vertical / horizontal major line (-100 = ignored, off the page).
"""
from __future__ import annotations

import numpy as np

from stage1_rectify.lattice import N_HLINES, N_VLINES, SPACING, to_lattice

IGNORE = -100


def lattice_targets(canon_xy: np.ndarray, px_per_canon: float, sigma: float) -> dict[str, np.ndarray]:
    """canon_xy (H, W, 2) canonical px per input pixel; px_per_canon = input px per canonical px (about k)."""
    uv = to_lattice(canon_xy)
    near = np.round(uv)
    off = np.isnan(uv).any(-1)
    d = (uv - near) * SPACING * px_per_canon                       # input px to the nearest node
    heat = np.exp(-(d ** 2).sum(-1) / (2 * sigma ** 2))
    beyond = (near[..., 0] < 0) | (near[..., 0] >= N_VLINES) | (near[..., 1] < 0) | (near[..., 1] >= N_HLINES)
    heat[off | beyond] = 0.0       # no peak at the page edge for a node past the last line (x = 2204.7)
    out = {"heatmap": heat.astype(np.float32)}
    for name, axis, n in (("col", 0, N_VLINES), ("row", 1, N_HLINES)):
        idx = np.where(off, IGNORE, near[..., axis]).astype(np.int64)
        idx[(idx < 0) | (idx >= n)] = IGNORE
        out[name] = idx
    return out
