"""Heatmaps -> sub-pixel keypoints -> RANSAC homography onto the normalised page."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from data import geometry as G
from stage0_keypoints.targets import canonical_keypoints


def decode_heatmaps(prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """prob (K, H, W) in [0, 1] -> (points (K, 2) as x, y; peak values (K,)).

    Sub-pixel: a parabola through the log-probabilities of the argmax and its two neighbours, per axis.  The
    targets are Gaussians, whose log is exactly quadratic, so this is unbiased where a windowed centroid is pulled
    towards the argmax pixel.
    """
    K, H, W = prob.shape
    flat = prob.reshape(K, -1).argmax(1)
    ys, xs = np.divmod(flat, W)
    logp = np.log(np.clip(prob.astype(np.float64), 1e-12, None))
    pts = np.stack([xs, ys], -1).astype(np.float64)
    for axis, (pos, n) in enumerate(((xs, W), (ys, H))):
        lo, hi = np.clip(pos - 1, 0, n - 1), np.clip(pos + 1, 0, n - 1)
        k = np.arange(K)
        if axis == 0:
            a, b, c = logp[k, ys, lo], logp[k, ys, xs], logp[k, ys, hi]
        else:
            a, b, c = logp[k, lo, xs], logp[k, ys, xs], logp[k, hi, xs]
        denom = a - 2 * b + c
        ok = (denom < -1e-9) & (pos > 0) & (pos < n - 1)
        pts[:, axis] += np.where(ok, np.clip(0.5 * (a - c) / np.where(ok, denom, 1), -0.5, 0.5), 0.0)
    return pts, prob[np.arange(K), ys, xs]


@dataclass
class PageFit:
    H: np.ndarray | None          # 3x3, image px -> canonical page px (scale 1)
    inliers: int
    reproj_mm: float              # mean reprojection error of the inliers, mm of the canonical page
    ok: bool


def fit_homography(points: np.ndarray, conf: np.ndarray, min_conf: float = 0.2, thresh_mm: float = 4.0,
                   min_inliers: int = 6) -> PageFit:
    """RANSAC homography from detected keypoints to their canonical positions."""
    use = conf >= min_conf
    if use.sum() < 4:
        return PageFit(None, int(use.sum()), float("inf"), False)
    src = points[use].astype(np.float32)
    dst = canonical_keypoints()[use].astype(np.float32)
    H, mask = cv2.findHomography(src, dst, cv2.RANSAC, thresh_mm * G.PX_PER_MM, maxIters=2000, confidence=0.999)
    if H is None:
        return PageFit(None, 0, float("inf"), False)
    inl = mask.ravel().astype(bool)
    proj = cv2.perspectiveTransform(src[inl].reshape(-1, 1, 2), H).reshape(-1, 2)
    err = float(np.linalg.norm(proj - dst[inl], axis=1).mean() / G.PX_PER_MM) if inl.any() else float("inf")
    return PageFit(H, int(inl.sum()), err, bool(inl.sum() >= min_inliers))


def normalize_page(img: np.ndarray, H: np.ndarray, k: float = 1.0) -> np.ndarray:
    """Warp the raw image onto the normalised page (canonical size at scale k)."""
    S = np.diag([k, k, 1.0])
    return cv2.warpPerspective(img, S @ H, G.page_size(k), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=(255, 255, 255))
