"""Heatmaps -> sub-pixel keypoint candidates -> RANSAC homography onto the normalised page.

Lead names look alike ("I", "II", "III"), so a heatmap channel often peaks on several labels.  Instead of trusting
each channel's argmax, up to a few peaks per channel become candidate correspondences (peak -> that keypoint's
canonical position) and RANSAC keeps the ones that agree on one page: the page layout resolves the identities.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.ndimage import maximum_filter

from data import geometry as G
from pagekit.image import warp_to_page
from stage0_keypoints.targets import canonical_keypoints


def _subpixel(logp: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Refine integer peaks (x, y) of one channel's log-probabilities by a parabola per axis.  The targets are
    Gaussians, whose log is exactly quadratic, so this is unbiased where a windowed centroid is pulled towards
    the argmax pixel."""
    H, W = logp.shape
    out = np.stack([x, y], -1).astype(np.float64)
    for axis, (pos, n) in enumerate(((x, W), (y, H))):
        lo, hi = np.clip(pos - 1, 0, n - 1), np.clip(pos + 1, 0, n - 1)
        a, b, c = (logp[y, lo], logp[y, x], logp[y, hi]) if axis == 0 else (logp[lo, x], logp[y, x], logp[hi, x])
        denom = a - 2 * b + c
        ok = (denom < -1e-9) & (pos > 0) & (pos < n - 1)
        out[:, axis] += np.where(ok, np.clip(0.5 * (a - c) / np.where(ok, denom, 1), -0.5, 0.5), 0.0)
    return out


def _log(prob: np.ndarray) -> np.ndarray:
    return np.log(np.clip(prob.astype(np.float64), 1e-12, None))


def decode_heatmaps(prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """prob (K, H, W) in [0, 1] -> (argmax of each channel, sub-pixel, as (K, 2) x, y; peak values (K,))."""
    K, H, W = prob.shape
    ys, xs = np.divmod(prob.reshape(K, -1).argmax(1), W)
    logp = _log(prob)
    pts = np.stack([_subpixel(logp[i], xs[i:i + 1], ys[i:i + 1])[0] for i in range(K)])
    return pts, prob[np.arange(K), ys, xs]


def peak_candidates(prob: np.ndarray, per_channel: int = 4, min_prob: float = 0.1, window: int = 5):
    """Local maxima of every channel: (keypoint index (N,), points (N, 2), peak values (N,)), best first."""
    peaks = (prob == maximum_filter(prob, size=(1, window, window))) & (prob >= min_prob)
    logp = _log(prob)
    ks, pts, conf = [], [], []
    for i in range(prob.shape[0]):
        y, x = np.nonzero(peaks[i])
        order = np.argsort(-prob[i, y, x])[:per_channel]
        y, x = y[order], x[order]
        ks.append(np.full(len(x), i))
        pts.append(_subpixel(logp[i], x, y))
        conf.append(prob[i, y, x])
    return np.concatenate(ks), np.concatenate(pts).reshape(-1, 2), np.concatenate(conf)


@dataclass
class PageFit:
    H: np.ndarray | None          # 3x3, image px -> canonical page px (scale 1)
    inliers: int                  # keypoints (not candidates) explained by H
    reproj_mm: float              # mean reprojection error of the inliers, mm of the canonical page
    ok: bool
    keypoints: np.ndarray | None = None   # (K, 2) chosen image positions (inlier candidate, else H^-1 of canonical)
    found: np.ndarray | None = None       # (K,) True where a detected peak supports the keypoint


def fit_page(ks: np.ndarray, pts: np.ndarray, conf: np.ndarray, thresh_mm: float = 4.0,
             min_inliers: int = 6) -> PageFit:
    """RANSAC homography from candidate correspondences (peak of channel i -> canonical keypoint i)."""
    canon = canonical_keypoints()
    K = len(canon)
    if len(np.unique(ks)) < 4:
        return PageFit(None, int(len(np.unique(ks))), float("inf"), False)
    src = pts.astype(np.float32)
    dst = canon[ks].astype(np.float32)
    H, mask = cv2.findHomography(src, dst, cv2.RANSAC, thresh_mm * G.PX_PER_MM, maxIters=5000, confidence=0.999)
    if H is None or not np.all(np.isfinite(H)) or np.linalg.cond(H) > 1e12:   # degenerate peaks: a singular H
        return PageFit(None, 0, float("inf"), False)
    proj = cv2.perspectiveTransform(src.reshape(-1, 1, 2), H).reshape(-1, 2)
    err = np.linalg.norm(proj - dst, axis=1) / G.PX_PER_MM
    inl = mask.ravel().astype(bool) & (err < thresh_mm)
    chosen = cv2.perspectiveTransform(canon.reshape(-1, 1, 2), np.linalg.inv(H)).reshape(-1, 2)
    found = np.zeros(K, bool)
    for i in range(K):  # per keypoint: its most confident inlier candidate
        idx = np.flatnonzero(inl & (ks == i))
        if idx.size:
            chosen[i] = pts[idx[np.argmax(conf[idx])]]
            found[i] = True
    reproj = float(err[inl].mean()) if inl.any() else float("inf")
    return PageFit(H, int(found.sum()), reproj, bool(found.sum() >= min_inliers) and plausible_page(H), chosen, found)


def plausible_page(H: np.ndarray) -> bool:
    """The page's corners land in the image as a convex quadrilateral in front of the camera; RANSAC on a few
    wrong peaks can give a homography that folds the page through the horizon (the page fans out from a point)."""
    c = np.c_[G.page_corners(), np.ones(4)] @ np.linalg.inv(H).T
    if not (np.all(c[:, 2] > 0) or np.all(c[:, 2] < 0)):
        return False
    q = c[:, :2] / c[:, 2:]
    e = np.roll(q, -1, 0) - q
    cross = e[:, 0] * np.roll(e, -1, 0)[:, 1] - e[:, 1] * np.roll(e, -1, 0)[:, 0]
    return bool(np.all(cross > 0) or np.all(cross < 0))


OUTSIDE_MM = 30.0    # page corners further outside the image than this: the outline was not seen, only guessed


def outside_mm(H: np.ndarray, shape: tuple[int, ...]) -> float:
    """How far, in mm of the page, the page's corners fall outside an image of ``shape`` under ``H`` (raw image px
    -> canonical page px).  An image cut to the ECG shows no outline, yet stage 0 still fits one from the lead
    names: on eik_dev cut 5 mm around the traces its corners fell 52-145 mm outside the image, on the whole pages
    (photos with perspective included) at most 15."""
    corners = cv2.perspectiveTransform((G.page_corners() - 0.5).reshape(-1, 1, 2).astype(np.float64),
                                       np.linalg.inv(H)).reshape(-1, 2)
    h, w = shape[:2]
    beyond = np.maximum.reduce([-corners[:, 0], corners[:, 0] - w, -corners[:, 1], corners[:, 1] - h, np.zeros(4)])
    page = G.page_corners()
    image_px_per_page_px = (np.linalg.norm(np.diff(np.r_[corners, corners[:1]], axis=0), axis=1).sum()
                            / np.linalg.norm(np.diff(np.r_[page, page[:1]], axis=0), axis=1).sum())
    return float(beyond.max() / (image_px_per_page_px * G.PX_PER_MM))


def normalize_page(img: np.ndarray, H: np.ndarray, k: float = 1.0) -> np.ndarray:
    """Warp the raw image onto the normalised page (canonical size at scale k)."""
    return warp_to_page(img, np.diag([k, k, 1.0]) @ H, G.page_size(k))
