"""Page labels for images whose signal is known (the competition's train set), found and verified with that signal.

The record's own trace, drawn at its canonical page positions, is the registration target: unlike the grid, which
repeats every 5 mm, it is aperiodic, so aligning it with the image's ink fixes the page map without ambiguity.
1. Coarse map: the same record's reference image (its 0001 page, once labelled) matched by SIFT on the ink maps
   + RANSAC homography (OpenCV); or, without one, the whole image taken as the page in each quarter turn.
2. ECC (``cv2.findTransformECC``, homography) of the drawn trace against the image's ink, coarse to fine.
3. Dense refinement (``dense=True``): the translation of each tile of the page by ECC, smoothed by a thin-plate
   spline, for curled and wrinkled pages.
4. Verification with the signal: where every sample lands through the map, the share of them on ink (over all
   samples and over the steep ones, which see a map off along the trace) and the distance to the nearest ink (mm).
   A map below the thresholds is rejected with its reason, never kept silently.
The result is a ``data.labels.PageLabel`` (the generator's format), so every stage trains from it unchanged.
ECG-Image-Kit prints its rows 2-5 px lower against the grid than the canonical geometry: a label found from the
trace puts the grid that much off, and the trace (what stage 2 learns and the metric scores) right.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd
from scipy.interpolate import RBFInterpolator
from scipy.ndimage import map_coordinates

from data import geometry as G
from data.labels import PageLabel, canonical_points, map_grid_shape

LEVELS = (0.125, 0.25, 0.5)          # canonical page scales of the coarse-to-fine ECC
ON_INK_MM = 0.2                      # a sample within this of ink counts as on ink (the stroke is ~0.26 mm wide)


@dataclass
class Thresholds:
    min_on_ink: float = 0.9          # share of samples on ink
    min_on_ink_steep: float = 0.8    # the same over the steep samples, which see a map off along the trace
    max_p90_mm: float = 0.5          # 90th percentile of the samples' distance to ink
    min_ecc: float = 0.3             # correlation of the drawn trace with the ink after ECC


@dataclass
class AutoLabel:
    label: PageLabel | None          # None when rejected
    H: np.ndarray | None             # canonical px (scale 1) -> image px, before the dense correction
    field: object = None             # the dense correction (canonical px -> canonical px offset), or None
    on_ink: float = 0.0
    on_ink_steep: float = 0.0
    p90_mm: float = np.inf
    ecc: float = 0.0
    method: str = ""                 # reference | initial | template (+ dense)
    reason: str | None = None        # why it was rejected

    @property
    def accepted(self) -> bool:
        return self.label is not None

    def to_image(self, pts: np.ndarray) -> np.ndarray:
        """Canonical page px (scale 1) -> image px through the found map."""
        return canon_to_image(self.H, self.field, pts)


def scaling(k: float) -> np.ndarray:
    """3x3 map of pixel positions under a resize by k (pixel centres at integers, as cv2.resize keeps them):
    x -> (x + 0.5) k - 0.5.  Scaling by x -> k x instead shifts every level's ECC by half a pixel."""
    return np.array([[k, 0, 0.5 * k - 0.5], [0, k, 0.5 * k - 0.5], [0, 0, 1.0]])


def draw_trace(signals: pd.DataFrame, fs: int, k: float, blur: float = 1.0) -> np.ndarray:
    """(H, W) float32: the record's 13 printed traces at canonical page scale k, anti-aliased and blurred."""
    w, h = G.page_size(k)
    canvas = np.zeros((h, w), np.uint8)
    for pts in G.trace_points(signals, fs).values():
        if len(pts) > 1:
            p = (pts + 0.5) * k - 0.5
            cv2.polylines(canvas, [np.round(p * 16).astype(np.int32)], False, 255, 1, cv2.LINE_AA, shift=4)
    return cv2.GaussianBlur(canvas.astype(np.float32) / 255.0, (0, 0), blur)


def apply_h(H: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return cv2.perspectiveTransform(np.asarray(pts, np.float64).reshape(-1, 1, 2), H).reshape(-1, 2)


def image_scale(H: np.ndarray) -> float:
    """Image px per canonical px near the page centre."""
    c = np.array([G.PAGE_W / 2, G.PAGE_H / 2])
    pts = apply_h(H, [c, c + [1, 0], c + [0, 1]])
    (ax, ay), (bx, by) = pts[1] - pts[0], pts[2] - pts[0]
    return float(np.sqrt(abs(ax * by - ay * bx)))             # np.cross of 2-vectors is deprecated in NumPy 2


def at_scale(dark: np.ndarray, k: float, s0: float) -> tuple[np.ndarray, float]:
    """(the ink map resized so that a page of ``s0`` image px per canonical px sits at about canonical scale k,
    the resize factor d).  For the page's H (canonical px -> image px), ``scaling(d) @ H @ inv(scaling(k))`` then
    maps canonical px at scale k to the resized map's px."""
    d = min(1.0, k / s0)
    return (cv2.resize(dark, None, fx=d, fy=d, interpolation=cv2.INTER_AREA) if d < 1 else dark), d


def ecc_refine(dark: np.ndarray, signals: pd.DataFrame, fs: int, H: np.ndarray, levels=LEVELS,
               iterations: int = 60) -> tuple[np.ndarray, float]:
    """Refine H (canonical px -> image px of ``dark``) so that the drawn trace meets the ink; returns (H, ECC
    correlation at the finest level; 0 where ECC failed to converge)."""
    cc, s0 = 0.0, image_scale(H)
    for k in levels:
        small, d = at_scale(dark, k, s0)
        template = draw_trace(signals, fs, k)
        K, D = scaling(k), scaling(d)
        W = (D @ H @ np.linalg.inv(K)).astype(np.float32)
        W /= W[2, 2]
        try:
            cc, W = cv2.findTransformECC(template, small, W, cv2.MOTION_HOMOGRAPHY,
                                         (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iterations, 1e-5), None, 5)
        except cv2.error:
            return H, 0.0
        H = np.linalg.inv(D) @ W.astype(np.float64) @ K
    return H / H[2, 2], float(cc)


def page_in_image(image_shape, turns: int) -> np.ndarray:
    """H (canonical px -> image px) that takes the whole image as the page, turned ``turns`` quarter turns clockwise."""
    h, w = image_shape[:2]
    img = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    return cv2.getPerspectiveTransform(G.page_corners().astype(np.float32),
                                       np.roll(img, turns, axis=0)).astype(np.float64)


def _features(dark: np.ndarray, size: int = 1400):
    d = min(1.0, size / max(dark.shape))
    grey = (255 * (1 - cv2.resize(dark, None, fx=d, fy=d, interpolation=cv2.INTER_AREA))).astype(np.uint8)
    kp, desc = cv2.SIFT_create(nfeatures=4000).detectAndCompute(grey, None)
    return np.array([p.pt for p in kp], np.float32) / d, desc


def match_reference(dark: np.ndarray, ref_dark: np.ndarray, ratio: float = 0.75) -> np.ndarray | None:
    """Homography reference-image px -> image px from SIFT on the two ink maps, or None."""
    (p1, d1), (p2, d2) = _features(ref_dark), _features(dark)
    if d1 is None or d2 is None or len(p1) < 8 or len(p2) < 8:
        return None
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(d1, d2, k=2)
    good = [m for m, n in (p for p in pairs if len(p) == 2) if m.distance < ratio * n.distance]
    if len(good) < 12:
        return None
    src = p1[[m.queryIdx for m in good]]
    dst = p2[[m.trainIdx for m in good]]
    Hr, inl = cv2.findHomography(src, dst, cv2.USAC_MAGSAC, 4.0)
    return Hr if Hr is not None and inl.sum() >= 12 else None


def plausible(H: np.ndarray, image_shape) -> bool:
    """The page through H is a convex quadrilateral covering at least a tenth of the image."""
    h, w = image_shape[:2]
    quad = apply_h(H, G.page_corners()).astype(np.float32)
    if not np.all(np.isfinite(quad)) or not cv2.isContourConvex(quad.reshape(-1, 1, 2)):
        return False
    return cv2.contourArea(quad) >= 0.1 * w * h


def dense_correction(dark: np.ndarray, signals: pd.DataFrame, fs: int, H: np.ndarray, k: float = 0.5,
                     tiles=(14, 10), smoothing: float = 1.0):
    """A smooth field (canonical px -> image px offset) from the translation of each page tile by ECC, or None.
    Tiles without enough trace are skipped; the field is a thin-plate smoothing spline over the tile centres."""
    w, h = G.page_size(k)
    template = draw_trace(signals, fs, k)
    small, d = at_scale(dark, k, image_scale(H))
    M = scaling(d) @ H @ np.linalg.inv(scaling(k))
    page = cv2.warpPerspective(small, M, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    centres, shifts = [], []
    tw, th = w / tiles[0], h / tiles[1]
    for ty in range(tiles[1]):
        for tx in range(tiles[0]):
            x0, y0 = int(tx * tw), int(ty * th)
            x1, y1 = int(min(w, x0 + tw * 1.5)), int(min(h, y0 + th * 1.5))
            t, p = template[y0:y1, x0:x1], page[y0:y1, x0:x1]
            if t.sum() < 0.02 * t.size:
                continue
            warp = np.eye(2, 3, dtype=np.float32)
            try:
                cc, warp = cv2.findTransformECC(t, p, warp, cv2.MOTION_TRANSLATION,
                                                (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-4), None, 3)
            except cv2.error:
                continue
            if cc > 0.3 and np.abs(warp[:, 2]).max() < 6:
                centres.append((((x0 + x1) / 2 + 0.5) / k - 0.5, ((y0 + y1) / 2 + 0.5) / k - 0.5))
                shifts.append(warp[:, 2] / k)                     # canonical px, in the homography's page
    if len(centres) < 6:
        return None
    return RBFInterpolator(np.array(centres), np.array(shifts), kernel="thin_plate_spline", smoothing=smoothing)


def canon_to_image(H: np.ndarray, field, pts: np.ndarray) -> np.ndarray:
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    return apply_h(H, pts + field(pts) if field is not None else pts)


def verify(dark: np.ndarray, signals: pd.DataFrame, fs: int, H: np.ndarray, field=None,
           threshold: float = 0.2) -> tuple[float, float, float]:
    """Where the record's samples land through the map: (share on ink, the same share over the steep samples, 90th
    percentile of the distance to ink in mm).  Ink: darkness above ``threshold``; on ink: within ON_INK_MM of it, or
    within one image pixel where ON_INK_MM is less (a phone photo at 3 px/mm resolves no 0.2 mm: at the pixel, it
    rejected a third of the right maps of such photos).  The distance is exact and read between pixels, not at the
    nearest one.  A map off along a flat stretch of trace still meets ink; on the steep samples (QRS flanks) it
    does not."""
    pts, steep = [], []
    for p in G.trace_points(signals, fs).values():
        if len(p) >= 3:
            t = np.gradient(p, axis=0)
            pts.append(p)
            steep.append(np.abs(t[:, 1]) > 1.5 * np.abs(t[:, 0]))       # rising faster than 56 degrees
    if not pts:
        return 0.0, 0.0, np.inf
    pts, steep = np.concatenate(pts), np.concatenate(steep)
    xy = canon_to_image(H, field, pts)
    dist = cv2.distanceTransform((dark <= threshold).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    h, w = dark.shape
    inside = (xy[:, 0] >= 0) & (xy[:, 0] <= w - 1) & (xy[:, 1] >= 0) & (xy[:, 1] <= h - 1)
    d = np.full(len(xy), np.inf)
    d[inside] = map_coordinates(dist, xy[inside, ::-1].T, order=1)
    px_per_mm = image_scale(H) * G.PX_PER_MM
    on = d <= max(ON_INK_MM * px_per_mm, 1.0)
    p90 = float(np.percentile(d / px_per_mm, 90, method="higher"))   # no interpolation: inf (off the image) stays inf
    return float(on.mean()), float(on[steep].mean()) if steep.any() else 1.0, p90


def make_label(H: np.ndarray, field, image_shape, image_type: str, evidence: dict) -> PageLabel:
    """The generator's label format from the map: every tracked canonical point through it."""
    tracked = {name: canon_to_image(H, field, pts) for name, pts in canonical_points().items()}
    tracked["map"] = tracked["map"].reshape(*map_grid_shape(), 2)
    # quarter turns: the direction of the page's x axis in the image
    ex = apply_h(H, [[G.PAGE_W / 2, G.PAGE_H / 2], [G.PAGE_W / 2 + 100, G.PAGE_H / 2]])
    angle = np.degrees(np.arctan2(*(ex[1] - ex[0])[::-1]))
    turns = int(np.round(angle / 90)) % 4
    h, w = image_shape[:2]
    return PageLabel.from_tracked(tracked, (w, h), image_type, turns, [{"autolabel": evidence}])


def autolabel(dark: np.ndarray, signals: pd.DataFrame, fs: int, image_type: str,
              reference: tuple[np.ndarray, np.ndarray] | None = None, dense: bool = True,
              initial=(), thresholds: Thresholds | None = None) -> AutoLabel:
    """Label one image from its ink map (``pagekit.image.ink``), which callers keep as the reference of the
    record's other images.  ``reference``: (ink map, H canonical -> reference px) of an image of the same record
    already labelled (its 0001 page); ``initial``: other starting maps (H canonical -> image px, e.g. stage 0's),
    or a function returning them, called only when the reference does not give a map.
    Returns the label with its evidence, or the reason for rejecting it."""
    th = thresholds or Thresholds()
    best = (None, None, -1.0)

    def starts():                     # lazily: stage 0 runs only when the reference did not serve
        if reference is not None:
            Hr = match_reference(dark, reference[0])
            if Hr is not None:
                yield "reference", Hr @ reference[1]
        yield from (("initial", H) for H in (initial() if callable(initial) else initial))

    for method, H0 in starts():
        if best[2] >= th.min_ecc:
            break
        if plausible(H0, dark.shape):
            H, cc = ecc_refine(dark, signals, fs, H0)
            if cc > best[2]:
                best = (method, H, cc)
    if best[2] < th.min_ecc:                                 # the whole image as the page, best quarter turn
        turns = max(range(4), key=lambda t: ecc_refine(dark, signals, fs, page_in_image(dark.shape, t),
                                                       levels=LEVELS[:1], iterations=30)[1])
        H, cc = ecc_refine(dark, signals, fs, page_in_image(dark.shape, turns))
        if cc > best[2]:
            best = ("template", H, cc)
    method, H, cc = best
    field = dense_correction(dark, signals, fs, H) if dense and cc > 0 else None
    on_ink, steep, p90 = verify(dark, signals, fs, H, field)
    out = AutoLabel(None, H, field, on_ink, steep, p90, cc, method + (" + dense" if field is not None else ""))
    reasons = [r for ok, r in ((cc >= th.min_ecc, f"trace correlation {cc:.2f} < {th.min_ecc}"),
                               (on_ink >= th.min_on_ink, f"{on_ink:.0%} of samples on ink < {th.min_on_ink:.0%}"),
                               (steep >= th.min_on_ink_steep,
                                f"{steep:.0%} of steep samples on ink < {th.min_on_ink_steep:.0%}"),
                               (p90 <= th.max_p90_mm, f"p90 distance to ink {p90:.2f} mm > {th.max_p90_mm}"))
               if not ok]
    if reasons:
        out.reason = "; ".join(reasons)
        return out
    evidence = {"method": out.method, "on_ink": round(on_ink, 4), "on_ink_steep": round(steep, 4),
                "p90_mm": round(p90, 3), "ecc": round(cc, 4)}
    out.label = make_label(H, field, dark.shape, image_type, evidence)
    return out
