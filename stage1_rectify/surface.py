"""Smooth surfaces x(i, j), y(i, j) over the lattice indices, fitted robustly to detected lattice points.

The detected points live on the stage-0 normalised page, so the surfaces model only what the homography left:
curl, wrinkles, lens distortion.  They are fitted to the residual from the ideal lattice, outliers (a wrong line
index, a peak on a trace) are rejected by their residual to the fit and the fit is repeated; the surfaces are then
evaluated on every node, a margin beyond the page included, so missing points are filled from the fit.

Methods (``scripts/bench_surface.py`` measures them on known warps):
- ``tps``: thin-plate smoothing spline (scipy ``RBFInterpolator``); follows local creases, extrapolates linearly.
- ``poly``: a global polynomial of total degree ``degree`` in (i, j); stiff, fine for smooth curl only.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import RBFInterpolator
from scipy.spatial import cKDTree

from stage1_rectify.lattice import N_HLINES, N_VLINES, SPACING, node_grid, to_canonical

MARGIN = 2   # nodes evaluated beyond the page on every side, so cubic interpolation reaches the page edges
REACH = 2    # whole-node index shifts considered when repairing indices


@dataclass
class LatticeFit:
    nodes: np.ndarray       # (N_HLINES + 2*MARGIN, N_VLINES + 2*MARGIN, 2) stage-0 canonical px of every node
    inliers: np.ndarray     # (N,) bool over the input points
    rms_px: float           # RMS residual of the inliers, canonical px
    n_points: int           # inliers used by the final fit


def _poly_basis(ij: np.ndarray, degree: int) -> np.ndarray:
    u = ij[:, 0] / (N_VLINES - 1) * 2 - 1        # scaled to [-1, 1] for conditioning
    v = ij[:, 1] / (N_HLINES - 1) * 2 - 1
    return np.stack([u ** a * v ** b for a in range(degree + 1) for b in range(degree + 1 - a)], -1)


def _fit_predict(ij, res, query, method: str, smoothing: float, degree: int, neighbors: int | None):
    if method == "tps":
        f = RBFInterpolator(ij, res, kernel="thin_plate_spline", smoothing=smoothing,
                            neighbors=None if neighbors is None or neighbors >= len(ij) else neighbors)
        return f(query)
    if method == "poly":
        coef, *_ = np.linalg.lstsq(_poly_basis(ij, degree), res, rcond=None)
        return _poly_basis(query, degree) @ coef
    raise ValueError(f"unknown surface method {method!r}: use 'tps' or 'poly'")


def fit_surface(ij: np.ndarray, xy: np.ndarray, method: str = "tps", smoothing: float = 1.0, degree: int = 4,
                neighbors: int | None = None, reject_px: float = 4.0, iterations: int = 3) -> LatticeFit:
    """ij (N, 2) lattice indices, xy (N, 2) their stage-0 canonical px (scale 1).  Points whose residual exceeds
    ``max(reject_px, 4 x robust sigma)`` are dropped and the fit repeated, at most ``iterations`` times."""
    ij = np.asarray(ij, dtype=np.float64)
    res = np.asarray(xy, dtype=np.float64) - to_canonical(ij)
    keep = np.ones(len(ij), bool)
    for _ in range(iterations):
        fit = _fit_predict(ij[keep], res[keep], ij, method, smoothing, degree, neighbors)
        err = np.linalg.norm(fit - res, axis=1)
        sigma = 1.4826 * np.median(err[keep])
        new = err <= max(reject_px, 4 * sigma)
        if new.sum() < 3 or np.array_equal(new, keep):
            break
        keep = new
    nodes = node_grid(MARGIN)
    flat = nodes.reshape(-1, 2)
    # one solve for both the nodes and the inliers' residual
    pred = _fit_predict(ij[keep], res[keep], np.concatenate([flat, ij[keep]]), method, smoothing, degree, neighbors)
    out, final = to_canonical(flat) + pred[:len(flat)], pred[len(flat):]
    rms = float(np.sqrt(np.mean(np.sum((final - res[keep]) ** 2, 1))))
    return LatticeFit(out.reshape(nodes.shape), keep, rms, int(keep.sum()))


def consistent_indices(ij: np.ndarray, xy: np.ndarray, conf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Repair line indices that are off by whole nodes in part of the page.

    Indices read from a stage-0 page (the nearest node) are wrong wherever stage 0 is off by more than half a node
    there, and such a region is consistently shifted, so a flexible fit would fold the page to follow it.  Relative
    indices, though, are reliable: neighbouring points differ by round(offset / spacing).  So indices are unwrapped
    over the neighbour graph (quality-guided, as in phase unwrapping: the link closest to a whole number of nodes
    and between the most confident points first), and each connected piece takes the absolute offset on which most
    of its points agree with their given index.  Returns (ij, xy, conf) inside the lattice, one point per node
    (the most confident).  A page read one node off as a whole stays so: that is the class head's to fix (vote).
    """
    ij = np.asarray(ij, dtype=np.int64)
    n = len(ij)
    if n < 2:
        return ij, xy, conf
    tree = cKDTree(xy)
    rel = np.zeros((n, 2), np.int64)
    done = np.zeros(n, bool)
    out = ij.copy()
    for seed in np.argsort(-conf):
        if done[seed]:
            continue
        piece, heap = [], [(0.0, int(seed), 0, 0)]
        while heap:
            _, i, ri, rj = heapq.heappop(heap)
            if done[i]:
                continue
            done[i], rel[i] = True, (ri, rj)
            piece.append(i)
            for j in tree.query_ball_point(xy[i], 2.6 * SPACING):     # bridges one missing node
                if not done[j]:
                    step = (xy[j] - xy[i]) / SPACING
                    r = np.round(step)
                    cost = float(np.abs(step - r).sum() + (2 - conf[i] - conf[j]))
                    heapq.heappush(heap, (cost, int(j), ri + int(r[0]), rj + int(r[1])))
        piece = np.array(piece)
        for a in range(2):   # the offset most points of the piece agree on
            vals, counts = np.unique(ij[piece, a] - rel[piece, a], return_counts=True)
            out[piece, a] = rel[piece, a] + vals[np.argmax(counts)]
    return in_lattice(out, xy, conf)


def in_lattice(ij: np.ndarray, xy: np.ndarray, conf: np.ndarray):
    """The points whose indices are lattice nodes, one per node (the most confident)."""
    ok = (ij[:, 0] >= 0) & (ij[:, 0] < N_VLINES) & (ij[:, 1] >= 0) & (ij[:, 1] < N_HLINES)
    return one_per_node(ij[ok], xy[ok], conf[ok])


def one_per_node(ij: np.ndarray, xy: np.ndarray, conf: np.ndarray):
    """Where several points claim one node, keep the most confident."""
    order = np.argsort(-conf)
    key = (ij[order, 1] + 2 * REACH) * (N_VLINES + 4 * REACH) + ij[order, 0] + 2 * REACH
    _, first = np.unique(key, return_index=True)
    keep = np.sort(order[first])
    return ij[keep], xy[keep], conf[keep]


def identity_fit() -> LatticeFit:
    """The ideal lattice: with it the rectification is the stage-0 homography alone (the fallback)."""
    nodes = node_grid(MARGIN)
    return LatticeFit(to_canonical(nodes.reshape(-1, 2)).reshape(nodes.shape), np.zeros(0, bool), 0.0, 0)
