"""Network outputs -> lattice points (sub-pixel position + lattice index + confidence).

Position: the weighted average of the pixels around each local maximum (a window of ``radius``), which keeps the
sub-pixel information the integer argmax throws away.  The weights are the heatmap raised to ``power``: a plain
average over a window no wider than the Gaussian is pulled towards the window's centre (by 70 % of the offset at
sigma 1.5, radius 1); the power narrows the Gaussian and the bias falls below 0.01 px (tests/test_stage1.py).

Index: the line-index classes averaged over the same window (``classes``); the nearest node of the stage-0 page
(``position``), right wherever stage 0 is off by less than half a node (2.5 mm); or (``vote``, the default) the
nearest node shifted by the one whole-node offset per axis in [-2, 2] on which the majority of the points' class
argmaxes agree: a class head that is right about most points fixes a global off-by-one of stage 0, and one that
is not leaves the nearest nodes alone.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter

from data import geometry as G
from stage1_rectify.lattice import N_HLINES, N_VLINES, SPACING, to_lattice
from stage1_rectify.surface import REACH, one_per_node


def _window_sum(a: np.ndarray, y: np.ndarray, x: np.ndarray, radius: int) -> np.ndarray:
    """Sum of a[..., y+dy, x+dx] over the (2r+1)^2 window (edge pixels repeated)."""
    H, W = a.shape[-2:]
    out = 0
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            out = out + a[..., np.clip(y + dy, 0, H - 1), np.clip(x + dx, 0, W - 1)]
    return out


def _vote(logits: np.ndarray, near: np.ndarray, reach: int = REACH, min_agree: float = 0.5) -> int:
    """The whole-node shift d in [-reach, reach] on which most points' own class argmax agrees (argmax = near + d),
    if at least ``min_agree`` of them do; else 0.  Counting agreeing argmaxes rather than summing log-probabilities
    keeps a poorly calibrated head from moving the page: on the CPU model the summed vote shifted good pages by a
    node (median error 5 mm instead of 0.1)."""
    d = np.argmax(logits, 0) - near
    counts = np.array([(d == s).sum() for s in range(-reach, reach + 1)])
    best = int(np.argmax(counts)) - reach
    return best if counts.max() >= min_agree * len(near) else 0


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
                   index_from: str = "vote"):
    """heat (H, W) probabilities, col/row logits (C, H, W) -> (ij (N, 2) int, xy (N, 2) stage-0 canonical px,
    confidence (N,)).  One point per node: where two peaks claim the same node the stronger is kept."""
    pts, conf = peaks(heat, min_prob, radius, power)
    xy = pts / px_per_canon
    if index_from not in ("classes", "position", "vote"):
        raise ValueError(f"index_from must be 'vote', 'classes' or 'position', got {index_from!r}")
    ij = np.round(to_lattice(xy)).astype(np.int64)
    if index_from != "position" and col_logits is not None and len(pts):
        yi, xi = np.round(pts[:, 1]).astype(int), np.round(pts[:, 0]).astype(int)
        logits = [_window_sum(a, yi, xi, radius) for a in (col_logits, row_logits)]    # (C, N) per axis
        if index_from == "classes":
            ij = np.stack([lg.argmax(0) for lg in logits], -1).astype(np.int64)
        else:
            ij = ij + [_vote(lg, ij[:, a]) for a, lg in enumerate(logits)]
    # indices up to REACH nodes beyond the lattice are kept for consistent_indices to shift back; points in the
    # input's padding (beyond the page) are not
    ok = np.all((ij >= -REACH) & (ij < np.array([N_VLINES, N_HLINES]) + REACH), 1)
    ok &= np.all((xy > -SPACING / 2) & (xy < np.array([G.PAGE_W, G.PAGE_H]) + SPACING / 2), 1)
    return one_per_node(ij[ok], xy[ok], conf[ok])
