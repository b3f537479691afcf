"""One warp of the raw image: rectified page px -> (lattice surfaces) -> stage-0 canonical px -> (H^-1) -> raw px.

The map is composed analytically and the raw image is sampled once (``cv2.remap``); the map is returned so that
masks, labels or a second channel can be warped identically.  Between lattice nodes the surfaces are interpolated
by an exact bicubic spline (scipy); cv2.remap would quantise positions to 1/32 of a node (1.2 canonical px).
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.interpolate import RectBivariateSpline

from data import geometry as G
from stage1_rectify.lattice import to_lattice
from stage1_rectify.surface import MARGIN, LatticeFit


def _splines(fit: LatticeFit) -> list[RectBivariateSpline]:
    r, c = fit.nodes.shape[:2]
    v, u = np.arange(r) - MARGIN, np.arange(c) - MARGIN
    return [RectBivariateSpline(v, u, fit.nodes[..., a], kx=3, ky=3, s=0) for a in range(2)]


def stage0_to_raw(stage0: np.ndarray, H: np.ndarray) -> np.ndarray:
    """Stage-0 page px, shape (..., 2) -> raw px (H: raw px -> stage-0 page)."""
    stage0 = np.asarray(stage0, dtype=np.float64)
    return cv2.perspectiveTransform(stage0.reshape(-1, 1, 2), np.linalg.inv(H)).reshape(stage0.shape)


def canonical_to_raw(fit: LatticeFit, H: np.ndarray, canon: np.ndarray) -> np.ndarray:
    """Canonical page px (scale 1), shape (..., 2) -> raw image px, through the fitted lattice and H^-1
    (H: raw px -> stage-0 canonical px)."""
    uv = to_lattice(np.asarray(canon, dtype=np.float64).reshape(-1, 2))
    stage0 = np.stack([s.ev(uv[:, 1], uv[:, 0]) for s in _splines(fit)], -1)
    return stage0_to_raw(stage0, H).reshape(np.shape(canon))


def dense_map(fit: LatticeFit, H: np.ndarray, k: float | tuple[float, float] = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(map_x, map_y) float32 of the rectified page at scale k (or (kx, ky), e.g. (2, 1) for 4400 x 1700): raw px
    of every rectified pixel."""
    w, h = G.page_size(k)
    kx, ky = G.scales(k)
    u = to_lattice(np.stack([np.arange(w) / kx, np.zeros(w)], -1))[:, 0]   # separable: one u per column,
    v = to_lattice(np.stack([np.zeros(h), np.arange(h) / ky], -1))[:, 1]   # one v per row
    stage0 = np.stack([s(v, u) for s in _splines(fit)], -1)                # (h, w, 2)
    raw = stage0_to_raw(stage0, H).astype(np.float32)
    return raw[..., 0], raw[..., 1]


def remap(img: np.ndarray, map_x: np.ndarray, map_y: np.ndarray, interpolation: int = cv2.INTER_CUBIC,
          border=(255, 255, 255)) -> np.ndarray:
    """Sample ``img`` at the map (raw px) once; off-image pixels are white paper."""
    return cv2.remap(img, map_x, map_y, interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=border)
