"""Where a reading's noise lies: the metric's noise power of each lead split by zone of its samples, what each zone
would be worth if it were read perfectly, how far the tips reach and how far each lead sits in time.

Zones, one per sample, first match wins:
- ``edge``: the first and last ``EDGE_S`` of the lead's printed window (under its name, beside a column separator);
- ``tip``: within ``TIP_S`` of a wave's peak (``scipy.signal.find_peaks`` on the distance from the lead's median,
  at least ``TIP_MV`` high), the QRS tips where a blunt reading falls short;
- ``flank``: the steepest ``FLANK_SHARE`` of the remaining samples, where a time error costs most;
- ``rest``.
The metric's own alignment (``pagekit.metric.align_signals``) is applied first, so the split is of the noise it
counts.  ``shift``: the sub-sample lag of the cross-correlation peak (parabola through the best integer lag and its
neighbours), positive when the reading is early.
"""
from __future__ import annotations

import numpy as np
import scipy.signal

from pagekit.metric import MAX_TIME_SHIFT_S, align_signals, lag_correlation, snr_ratio, squared_errors, to_db

ZONES = ("edge", "tip", "flank", "rest")
EDGE_S = 0.12
TIP_S = 0.01
TIP_MV = 0.5
FLANK_SHARE = 0.08


def sample_zones(label: np.ndarray, fs: float) -> np.ndarray:
    """Zone index (into ``ZONES``) of every sample of one lead's true values."""
    label = np.asarray(label, dtype=np.float64)
    n = label.size
    zone = np.full(n, ZONES.index("rest"))
    dev = np.abs(label - np.median(label))
    peaks, _ = scipy.signal.find_peaks(dev, height=TIP_MV, distance=max(1, int(0.2 * fs)))
    w = max(1, int(round(TIP_S * fs)))
    tip = np.zeros(n, bool)
    for p in peaks:
        tip[max(p - w, 0):p + w + 1] = True
    slope = np.abs(np.gradient(label)) if n > 1 else np.zeros(n)
    free = ~tip
    flank = np.zeros(n, bool)
    if free.any():
        flank = free & (slope >= np.quantile(slope[free], 1 - FLANK_SHARE)) & (slope > 0)
    zone[flank] = ZONES.index("flank")
    zone[tip] = ZONES.index("tip")
    e = int(round(EDGE_S * fs))
    zone[:e] = zone[max(n - e, 0):] = ZONES.index("edge")
    return zone


def best_shift(label: np.ndarray, pred: np.ndarray, max_shift: int) -> float:
    """Sub-sample lag (samples) at which ``pred`` best matches ``label``; positive: ``pred`` is early."""
    corr, lags = lag_correlation(np.asarray(label, np.float64), np.nan_to_num(np.asarray(pred, np.float64)))
    i = int(np.argmax(np.where(np.abs(lags) <= max_shift, corr, -np.inf)))
    if 0 < i < corr.size - 1:
        a, b, c = corr[i - 1], corr[i], corr[i + 1]
        den = a - 2 * b + c
        return float(lags[i] + (0.5 * (a - c) / den if den < 0 else 0.0))
    return float(lags[i])


def lead_anatomy(label: np.ndarray, pred: np.ndarray, fs: float) -> dict:
    """One lead: signal power, noise power per zone, tip gains (reading over truth, from the median, at tips of
    at least ``TIP_MV``) and the time shift."""
    label = np.asarray(label, dtype=np.float64)
    aligned = align_signals(label, pred, int(fs * MAX_TIME_SHIFT_S))
    err2 = squared_errors(label, aligned)
    zone = sample_zones(label, fs)
    med = np.median(label)
    tips = np.flatnonzero((zone == ZONES.index("tip")) & (np.abs(label - med) >= TIP_MV) & np.isfinite(aligned))
    peak = [t for t in tips if np.abs(label[t] - med) == np.abs(label[max(t - 1, 0):t + 2] - med).max()]
    return {"signal": float(np.sum(label ** 2)),
            "noise": np.bincount(zone, weights=err2, minlength=len(ZONES)),
            "tip_gain": [(aligned[t] - np.nanmedian(aligned)) / (label[t] - med) for t in peak],
            "shift": best_shift(label, pred, int(fs * MAX_TIME_SHIFT_S))}


def page_anatomy(leads_true: dict[str, np.ndarray], leads_pred: dict[str, np.ndarray], fs: float) -> dict:
    """One page: signal, noise per zone (summed over its leads), every tip gain and each lead's shift."""
    parts = [lead_anatomy(v, leads_pred[lead], fs) for lead, v in leads_true.items()]
    return {"signal": sum(p["signal"] for p in parts), "noise": np.sum([p["noise"] for p in parts], 0),
            "tip_gain": np.array(sum((p["tip_gain"] for p in parts), [])),
            "shift": np.array([p["shift"] for p in parts])}


def _db(pages: list[dict], drop: int | None = None) -> float:
    """The competition's score of the pages, with zone ``drop``'s noise taken away (read perfectly)."""
    return float(to_db(np.mean([snr_ratio(p["signal"], p["noise"].sum() - (0.0 if drop is None else p["noise"][drop]))
                                for p in pages])))


def summarize(pages: list[dict]) -> dict:
    """Pages -> each zone's share of the noise (summed over pages), the dB gained were that zone read perfectly
    (the competition's mean of capped ratios), the median tip gain and the median time shift (samples)."""
    base = _db(pages)
    total = np.sum([p["noise"] for p in pages], 0)
    out = {"db": base}
    for i, z in enumerate(ZONES):
        out[f"{z}_share"] = float(total[i] / max(total.sum(), 1e-12))
        out[f"{z}_gain_db"] = _db(pages, i) - base
    out["tip_gain"] = float(np.median(np.concatenate([p["tip_gain"] for p in pages])))
    out["shift"] = float(np.median(np.concatenate([p["shift"] for p in pages])))
    return out
