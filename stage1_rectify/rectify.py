"""Network outputs -> lattice fit (or the flagged homography-only fallback) -> one warp of the raw image."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stage1_rectify.decode import lattice_points
from stage1_rectify.lattice import N_HLINES, N_VLINES
from stage1_rectify.surface import LatticeFit, consistent_indices, fit_surface, identity_fit, in_lattice
from stage1_rectify.warp import dense_map, remap, stage0_to_raw


@dataclass
class FitParams:
    method: str = "tps"            # surface: tps | poly
    smoothing: float = 10.0        # tps smoothing (0 = interpolate every point, no outlier can show)
    degree: int = 4                # poly degree
    reject_px: float = 8.0         # outlier residual floor, canonical px (7.9 px = 1 mm)
    min_points: int = 100          # fewer inlier lattice points -> fallback
    min_coverage: float = 0.5      # fraction of lattice columns and of rows that must hold a point
    max_rms_px: float = 8.0        # a fit that explains its inliers worse than this -> fallback
    min_prob: float = 0.3          # heatmap peak threshold
    radius: int = 2                # weighted-average window radius, input px
    power: float = 4.0             # weights = heatmap ** power (see stage1_rectify.decode)
    index_from: str = "vote"       # vote | classes | position (see stage1_rectify.decode)
    unwrap: bool = True            # repair indices shifted in part of the page (surface.consistent_indices)

    @classmethod
    def from_cfg(cls, m) -> "FitParams":
        return cls(**{k: m[k] for k in cls.__dataclass_fields__ if k in m})


def fit_lattice(ij: np.ndarray, xy: np.ndarray, p: FitParams) -> tuple[LatticeFit, bool]:
    """(fit, fallback): the identity lattice (= stage-0 homography alone) when the points are too few, cover too
    little of the page, or do not agree on a smooth surface."""
    covered = min(len(np.unique(ij[:, 0])) / N_VLINES, len(np.unique(ij[:, 1])) / N_HLINES) if len(ij) else 0.0
    if len(ij) < p.min_points or covered < p.min_coverage:
        return identity_fit(), True
    fit = fit_surface(ij, xy, p.method, p.smoothing, p.degree, reject_px=p.reject_px)
    if fit.n_points < p.min_points or fit.rms_px > p.max_rms_px:
        return identity_fit(), True
    return fit, False


def fit_from_outputs(heat: np.ndarray, col: np.ndarray, row: np.ndarray, px_per_canon: float,
                     p: FitParams) -> tuple[LatticeFit, bool, np.ndarray]:
    """One image's heatmap probabilities and line-index logits -> (fit, fallback, detected lattice points as
    (N, 2) stage-0 page px, in the order of ``fit.inliers``)."""
    ij, xy, conf = lattice_points(heat, col, row, px_per_canon, p.min_prob, p.radius, p.power, p.index_from)
    ij, xy, conf = consistent_indices(ij, xy, conf) if p.unwrap else in_lattice(ij, xy, conf)
    fit, fallback = fit_lattice(ij, xy, p)
    return fit, fallback, xy


@dataclass
class Rectification:
    page: np.ndarray          # the rectified page at scale k (raw image sampled once)
    map_x: np.ndarray         # (h, w) float32 raw px of every rectified pixel, for masks and labels
    map_y: np.ndarray
    fit: LatticeFit
    fallback: bool            # True: the lattice was not usable and the stage-0 homography alone was used
    k: float | tuple[float, float]
    H: np.ndarray             # the stage-0 homography the map composes (the whole-image one where stage 0 failed)
    points: np.ndarray | None = None   # detected lattice points, raw px (inliers: fit.inliers, unless fallback)


def rectify_image(raw: np.ndarray, H: np.ndarray, fit: LatticeFit, fallback: bool, k: float | tuple = 1.0,
                  points: np.ndarray | None = None) -> Rectification:
    """points: detected lattice points on the stage-0 page, carried to raw px for plots."""
    map_x, map_y = dense_map(fit, H, k)
    if points is not None and len(points):
        points = stage0_to_raw(points, H)
    return Rectification(remap(raw, map_x, map_y), map_x, map_y, fit, fallback, k, H, points)
