"""Stage-0 validation metric: keypoint error in mm of the canonical page (median, p95), orientation accuracy and
the rate of failed page normalisations, overall and per image type."""
from __future__ import annotations

import cv2
import numpy as np
import pandas as pd

from data import geometry as G
from engine.report import summarize_by_type
from stage0_keypoints.decode import PageFit
from stage0_keypoints.targets import canonical_keypoints

FAIL_MM = 5.0  # a normalisation that puts the true keypoints more than this far off (median) has failed


def image_errors(fit: PageFit, argmax_px, true_px, jac, image_size) -> dict:
    """Per-image figures; all positions in image px.  Keypoints are the page-consistent ones of ``fit`` (each
    channel's argmax where no page could be fitted)."""
    w, h = image_size
    inside = (true_px[:, 0] >= 0) & (true_px[:, 1] >= 0) & (true_px[:, 0] < w) & (true_px[:, 1] < h)
    pred_px = fit.keypoints if fit.keypoints is not None else argmax_px
    err_mm = np.linalg.norm(np.einsum("kij,kj->ki", jac, pred_px - true_px), axis=1)
    failed = not fit.ok
    if fit.H is not None:
        mapped = cv2.perspectiveTransform(true_px[inside].reshape(-1, 1, 2).astype(np.float64), fit.H).reshape(-1, 2)
        norm_err = np.linalg.norm(mapped - canonical_keypoints()[inside], axis=1) / G.PX_PER_MM
        failed = failed or float(np.median(norm_err)) > FAIL_MM
    return {"errors": err_mm[inside], "failed": failed, "inliers": fit.inliers}


def summarize(rows: list[dict]) -> tuple[dict, pd.DataFrame]:
    """rows: {type, errors, failed, orient_ok} -> (overall metrics, per-type table)."""
    def stats(rs):
        e = np.concatenate([r["errors"] for r in rs]) if rs else np.zeros(0)
        return {"n": len(rs), "kp_median_mm": float(np.median(e)) if e.size else float("nan"),
                "kp_p95_mm": float(np.percentile(e, 95)) if e.size else float("nan"),
                "orient_acc": float(np.mean([r["orient_ok"] for r in rs])) if rs else float("nan"),
                "fail_rate": float(np.mean([r["failed"] for r in rs])) if rs else float("nan")}
    return summarize_by_type(rows, stats)
