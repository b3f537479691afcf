"""Network outputs -> lattice points (sub-pixel position + lattice index + confidence).

Position: the weighted average of the pixels around each local maximum (a window of ``radius``), which keeps the
sub-pixel information the integer argmax throws away.  The weights are the heatmap raised to ``power``: a plain
average over a window no wider than the Gaussian is pulled towards the window's centre (by 70 % of the offset
at sigma 1.5, radius 1); the power narrows the Gaussian and the bias falls below 0.01 px (tests/test_stage1.py).  Index: the line-index classes averaged over the
same window, or (``index_from="position"``) simply the nearest node of the stage-0 page, for ablation.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter

from data import geometry as G
from stage1_rectify.lattice import N_COLS, N_ROWS, SPACING, to_lattice


def _window_sum(a: np.ndarray, y: np.ndarray, x: np.ndarray, radius: int) -> np.ndarray:
    """Sum of a[..., y+dy, x+dx] over the (2r+1)^2 window (edge pixels repeated)."""
    H, W = a.shape[-2:]
    out = 0
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            out = out + a[..., np.clip(y + dy, 0, H - 1), np.clip(x + dx, 0, W - 1)]
    return out


def peaks(heat: np.ndarray, min_prob: float = 0.3, radius: int = 2, power: float = 4.0):
    """Local maxima of a (H, W) heatmap refined by the weighted average of their window: ((N, 2) x, y; (N,) peak)."""
    H, W = heat.shape
    y, x = np.nonzero((heat == maximum_filter(heat, size=2 * radius + 1)) & (heat >= min_prob))
    wt = heat.astype(np.float64) ** power
    w = _window_sum(wt, y, x, radius)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    pts = np.stack([_window_sum(wt * xx, y, x, radius), _window_sum(wt * yy, y, x, radius)], -1) / w[:, None]
    return pts, heat[y, x]


def lattice_points(heat: np.ndarray, col_logits: np.ndarray | None, row_logits: np.ndarray | None,
                   px_per_canon: float, min_prob: float = 0.3, radius: int = 2, power: float = 4.0,
                   index_from: str = "classes"):
    """heat (H, W) probabilities, col/row logits (C, H, W) -> (ij (N, 2) int, xy (N, 2) stage-0 canonical px,
    confidence (N,)).  One point per node: where two peaks claim the same node the stronger is kept."""
    pts, conf = peaks(heat, min_prob, radius, power)
    xy = pts / px_per_canon
    if index_from == "position" or col_logits is None:
        ij = np.round(to_lattice(xy)).astype(np.int64)
    elif index_from == "classes":
        yi, xi = np.round(pts[:, 1]).astype(int), np.round(pts[:, 0]).astype(int)
        ij = np.stack([_window_sum(col_logits, yi, xi, radius).argmax(0),
                       _window_sum(row_logits, yi, xi, radius).argmax(0)], -1).astype(np.int64)
    else:
        raise ValueError(f"index_from must be 'classes' or 'position', got {index_from!r}")
    ok = (ij[:, 0] >= 0) & (ij[:, 0] < N_COLS) & (ij[:, 1] >= 0) & (ij[:, 1] < N_ROWS)
    ok &= np.all((xy > -SPACING / 2) & (xy < np.array([G.PAGE_W, G.PAGE_H]) + SPACING / 2), 1)  # not in the padding
    ij, xy, conf = ij[ok], xy[ok], conf[ok]
    order = np.argsort(-conf)
    _, first = np.unique(ij[order, 1] * N_COLS + ij[order, 0], return_index=True)
    keep = order[first]
    return ij[keep], xy[keep], conf[keep]
