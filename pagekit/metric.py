"""The competition metric, re-implemented to the letter (see docs/design.md, "The metric").

Per lead: the prediction is aligned to the label by the cross-correlation peak within +-int(0.2*fs) samples
(ties go to the smallest |lag|), NaN-padded where shifted out, then a scalar vertical offset is removed with
Brent's method (NaN terms skipped).  Per image: the signal and noise powers of all 12 leads are summed, with
shifted-out (NaN) predictions counted as 0 mV; ratio = signal/noise capped at 384.  Score = 10*log10(mean ratio),
floored at -384.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import scipy.optimize
import scipy.signal

from data.geometry import LEADS

MAX_TIME_SHIFT_S = 0.2
PERFECT_SCORE = 384.0


class MetricError(ValueError):
    """Input the official metric would reject (NaN/inf values, missing leads, inconsistent fs)."""


def lag_correlation(label: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cross-correlation of the mean-removed label and prediction at every lag, and those lags (positive: the
    prediction is early)."""
    corr = scipy.signal.correlate(label - label.mean(), pred - pred.mean(), mode="full")
    return corr, scipy.signal.correlation_lags(label.size, pred.size, mode="full")


def align_signals(label: np.ndarray, pred: np.ndarray, max_shift: float = float("inf")) -> np.ndarray:
    label = np.asarray(label, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if not np.all(np.isfinite(label)):
        raise MetricError("label values must all be finite")
    if not np.any(np.isfinite(pred)):
        raise MetricError("prediction has no finite value")
    corr, lags = lag_correlation(label, pred)
    valid = (lags >= -max_shift) & (lags <= max_shift)
    best = np.nanmax(corr[valid])
    candidates = np.flatnonzero(corr == best)  # exact ties, as the official code compares
    shift = int(lags[candidates[np.argmin(np.abs(lags[candidates]))]])

    aligned = np.full(label.size, np.nan)
    src = pred[max(-shift, 0):min(label.size - shift, pred.size)]
    aligned[max(shift, 0):max(shift, 0) + src.size] = src

    if np.any(np.isfinite(aligned)):
        res = scipy.optimize.minimize_scalar(lambda c: np.nansum((label - (aligned - c)) ** 2), method="brent")
        aligned -= res.x
    return aligned


def squared_errors(label: np.ndarray, aligned: np.ndarray) -> np.ndarray:
    """Per sample, the noise the metric counts: non-finite (shifted-out) predictions count as 0 mV."""
    return (label - np.where(np.isfinite(aligned), aligned, 0.0)) ** 2


def lead_powers(label: np.ndarray, aligned: np.ndarray) -> tuple[float, float]:
    """(signal power, noise power) of one lead (``squared_errors`` summed)."""
    return float(np.sum(label ** 2)), float(np.sum(squared_errors(label, aligned)))


def snr_ratio(signal: float, noise: float) -> float:
    if noise == 0:
        return PERFECT_SCORE
    if signal == 0:
        return 0.0
    return min(signal / noise, PERFECT_SCORE)


def image_ratio(leads_true: dict[str, np.ndarray], leads_pred: dict[str, np.ndarray], fs: float) -> float:
    """Capped SNR ratio (linear, not dB) of one image from its 12 leads."""
    signal = noise = 0.0
    for lead in LEADS:
        label = np.asarray(leads_true[lead], dtype=np.float64)
        aligned = align_signals(label, leads_pred[lead], int(fs * MAX_TIME_SHIFT_S))
        s, n = lead_powers(label, aligned)
        signal += s
        noise += n
    return snr_ratio(signal, noise)


def to_db(ratio) -> np.ndarray | float:
    with np.errstate(divide="ignore"):
        return np.maximum(10 * np.log10(ratio), -PERFECT_SCORE)


def split_row_ids(ids: pd.Series) -> pd.DataFrame:
    """'{image}_{row}_{lead}' -> columns image_id, row, lead."""
    parts = ids.astype(str).str.split("_", expand=True)
    if parts.shape[1] != 3:
        raise MetricError("ids must look like '{image}_{row}_{lead}'")
    return pd.DataFrame({"image_id": parts[0], "row": parts[1].astype(np.int64), "lead": parts[2]}, index=ids.index)


def per_image_ratios(solution: pd.DataFrame, submission: pd.DataFrame) -> pd.DataFrame:
    """One row per image: image_id, fs, ratio, snr_db.  Both frames have columns id, value (solution also fs)."""
    for name, df in (("solution", solution), ("submission", submission)):
        if "id" not in df or "value" not in df:
            raise MetricError(f"{name} needs columns 'id' and 'value'")
        values = pd.to_numeric(df["value"], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            raise MetricError(f"{int(bad.sum())} NaN, inf or non-numeric values in {name}, "
                              f"first at id {df['id'].iloc[int(np.flatnonzero(bad)[0])]}")
        dup = df["id"].duplicated()
        if dup.any():    # a merge would pair each copy with the label and count it twice
            raise MetricError(f"{int(dup.sum())} duplicate ids in {name}, first {df['id'][dup].iloc[0]}")
    missing = ~solution["id"].isin(submission["id"])
    if missing.any():
        raise MetricError(f"submission misses {int(missing.sum())} ids, e.g. {solution['id'][missing].iloc[0]}")
    extra = ~submission["id"].isin(solution["id"])
    if extra.any():
        warnings.warn(f"submission has {int(extra.sum())} ids the solution does not, e.g. "
                      f"{submission['id'][extra].iloc[0]}; they are not scored", stacklevel=2)
    merged = solution[["id", "fs", "value"]].merge(submission[["id", "value"]], on="id", suffixes=("_true", "_pred"))
    merged = pd.concat([merged, split_row_ids(merged["id"])], axis=1).sort_values(["image_id", "row", "lead"])
    rows = []
    for image_id, g in merged.groupby("image_id", sort=True):
        fs_values = g["fs"].unique()
        if len(fs_values) != 1:
            raise MetricError(f"image {image_id}: fs differs between rows")
        fs = fs_values[0]
        if fs != int((g["lead"] == "II").sum() / 10):
            raise MetricError(f"image {image_id}: lead II must hold fs*10 rows")
        by_lead = {lead: sub for lead, sub in g.groupby("lead")}
        absent = [lead for lead in LEADS if lead not in by_lead]
        if absent:
            raise MetricError(f"image {image_id}: no rows for leads {absent}")
        ratio = image_ratio({k: v["value_true"].to_numpy() for k, v in by_lead.items()},
                            {k: v["value_pred"].to_numpy() for k, v in by_lead.items()}, fs)
        rows.append({"image_id": image_id, "fs": fs, "ratio": ratio, "snr_db": float(to_db(ratio))})
    return pd.DataFrame(rows)


def score(solution: pd.DataFrame, submission: pd.DataFrame) -> float:
    """The competition score in dB."""
    return float(to_db(per_image_ratios(solution, submission)["ratio"].mean()))
