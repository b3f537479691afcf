"""Stage-1 validation metric: rectification error, the distance in mm between where a labelled trace point lands
on the rectified page and where the page geometry says it belongs, the rate of the homography-only fallback, and
the rate of pages read a whole grid node off (median error over half a node, 2.5 mm); overall and per image type.

First order: the predicted map's image-px error at a trace point's canonical position is turned into canonical
mm by the label map's local inverse Jacobian (exact for small errors, indicative for gross ones)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from data import geometry as G
from engine.report import summarize_by_type
from stage1_rectify.surface import LatticeFit
from stage1_rectify.warp import canonical_to_raw

NODE_OFF_MM = 2.5   # half the 5 mm lattice spacing


def image_errors(fit: LatticeFit, H: np.ndarray, scale: float, trace_canon: np.ndarray, trace_px: np.ndarray,
                 trace_jac: np.ndarray) -> np.ndarray:
    """(N,) mm.  H maps the image the fit was made on (raw px x scale) to the stage-0 page."""
    pred_px = canonical_to_raw(fit, H, trace_canon) / scale
    return np.linalg.norm(np.einsum("nij,nj->ni", trace_jac, pred_px - trace_px), axis=1) / G.PX_PER_MM


def summarize(rows: list[dict]) -> tuple[dict, pd.DataFrame]:
    """rows: {type, errors, fallback, points} -> (overall metrics, per-type table)."""
    def stats(rs):
        e = np.concatenate([r["errors"] for r in rs])
        return {"n": len(rs), "rect_median_mm": float(np.median(e)), "rect_p95_mm": float(np.percentile(e, 95)),
                "fallback_rate": float(np.mean([r["fallback"] for r in rs])),
                "node_off_rate": float(np.mean([np.median(r["errors"]) > NODE_OFF_MM for r in rs])),
                "points": float(np.mean([r["points"] for r in rs]))}
    return summarize_by_type(rows, stats)
