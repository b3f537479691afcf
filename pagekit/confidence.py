"""The SNR a lead's reading is expected to have, in dB, from what the page itself shows.

A linear model over figures of each lead: how much trace stage 2 lit along its path (``trace_prob``, on its
steepest columns ``steep_prob``, ``gap_share``), how often another row's path ran beside it (``near_share``), how far
the limb-lead fit had to move it and the page's limb leads (``fit_db``, ``page_fit_db``: reads that disagree with
Einthoven and Goldberger are wrong somewhere), the shape of its own waves (:func:`shape_features`: the metric's SNR
is the lead's power over its error, so a small lead reads at a lower SNR for the same error in mV, and tall narrow
QRS complexes are where the error is), whether it is a rhythm strip, and the flags of how the page was placed.  It
is fitted on our own synthetic pages read by the shipped models (``scripts/eval_confidence.py fit=...``: least
squares on the per-lead SNR the metric gives, clipped to ``CLIP_DB``), stored as a small JSON beside the weights,
and measured on pages it was not fitted on.  Linear on purpose: twenty coefficients fitted on two thousand leads
hold on pages unlike the ones they came from, and each one can be read.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import butter, sosfiltfilt

from data.files import sha256, write_text

FLAGS = ("grid_page", "no_page", "lattice_fallback", "whole_image")
FEATURES = ("trace_prob", "steep_prob", "gap_share", "near_share", "power_db", "slope_db", "peak_db", "range_db",
            "hf_db", "fit_db", "fitted", "page_fit_db", "page_trace_prob", "strip", *FLAGS)
HF_HZ = 15.0                 # above: the QRS complex's share of a lead's power (``hf_db``)
CLIP_DB = (-10.0, 35.0)      # the target's range: below, a lead is wrong whatever its figure; above, as good as read
FIT_DB_CAP = 40.0


def _db(power: float) -> float:
    return float(10 * np.log10(max(power, 1e-4)))


def shape_features(v: np.ndarray, fs: int) -> dict:
    """What makes a lead hard to read, from its own waves (mV): its power, its mean squared slope (steep waves,
    where a small error in time is a large one in mV), its tallest wave from the median and its range (tips that
    stage 2 lights faintest, waves that reach the next row) and the share of its power above ``HF_HZ`` (narrow QRS
    complexes).  All in dB."""
    v = v[np.isfinite(v)]
    if v.size < 16:
        return {"power_db": _db(0.0), "slope_db": _db(0.0), "peak_db": _db(0.0), "range_db": _db(0.0), "hf_db": 0.0}
    d = v - np.median(v)
    power = np.var(v)
    hf = sosfiltfilt(butter(2, HF_HZ, "high", fs=fs, output="sos"), d) if fs > 2 * HF_HZ + 1 else d
    return {"power_db": _db(power), "slope_db": _db(np.mean((np.diff(v) * fs) ** 2)), "peak_db": _db(np.max(d ** 2)),
            "range_db": _db(np.ptp(v) ** 2), "hf_db": _db(np.mean(hf ** 2)) - _db(power)}


def lead_features(leads: dict[str, np.ndarray], confidence: dict[str, dict], flags: dict, fs: int,
                  strips=()) -> dict:
    """lead -> {feature: value} (``FEATURES``) for every lead with a reading and its confidence: the reading's
    confidence (``pagekit.extract``), its waves' shape (:func:`shape_features`), the page's, and its flags.
    ``fit_db`` of a lead outside the limb fit: the page's median (``page_fit_db``, 0 on a page with no fit), which
    says how well the page as a whole was read."""
    page_prob = float(np.mean([c["trace_prob"] for c in confidence.values()])) if confidence else 0.0
    fits = [min(c["fit_db"], FIT_DB_CAP) for c in confidence.values() if c.get("fit_db") is not None]
    page_fit = float(np.median(fits)) if fits else 0.0
    out = {}
    for lead, c in confidence.items():
        fit = c.get("fit_db")
        out[lead] = {"trace_prob": c["trace_prob"], "steep_prob": c.get("steep_prob", c["trace_prob"]),
                     "gap_share": c["gap_share"], "near_share": c.get("near_share", 0.0),
                     **shape_features(np.asarray(leads.get(lead, ()), dtype=np.float64), fs),
                     "fit_db": min(fit, FIT_DB_CAP) if fit is not None else page_fit, "fitted": float(fit is not None),
                     "page_fit_db": page_fit, "page_trace_prob": page_prob, "strip": float(lead in strips),
                     **{f: float(bool(flags.get(f))) for f in FLAGS}}
    return out


def design(rows: list[dict]) -> np.ndarray:
    """(N, len(FEATURES) + 1) matrix of feature rows, a column of ones last."""
    x = np.array([[r[f] for f in FEATURES] for r in rows], dtype=np.float64).reshape(-1, len(FEATURES))
    return np.column_stack([x, np.ones(len(rows))])


@dataclass
class Calibration:
    """The fitted model: a coefficient per feature (``FEATURES``) and an intercept; ``check_below_db``: the
    expected SNR under which a lead is a doubt; ``stage2``: the sha256 of the stage-2 checkpoint it was fitted for
    (another stage 2 reads differently: its expectation would not hold)."""
    coef: dict[str, float]
    intercept: float
    check_below_db: float
    stage2: str = ""
    fitted_on: str = ""

    @classmethod
    def fit(cls, rows: list[dict], snr_db: np.ndarray, check_below_db: float, **meta) -> "Calibration":
        y = np.clip(np.asarray(snr_db, dtype=np.float64), *CLIP_DB)
        w, *_ = np.linalg.lstsq(design(rows), y, rcond=None)
        return cls(dict(zip(FEATURES, map(float, w[:-1]))), float(w[-1]), check_below_db, **meta)

    def predict(self, rows: list[dict]) -> np.ndarray:
        w = np.array([self.coef.get(f, 0.0) for f in FEATURES] + [self.intercept])
        return np.clip(design(rows) @ w, *CLIP_DB)

    def expected_snr_db(self, leads: dict[str, np.ndarray], confidence: dict[str, dict], flags: dict, fs: int,
                        strips=()) -> dict[str, float]:
        feats = lead_features(leads, confidence, flags, fs, strips)
        return dict(zip(feats, map(float, self.predict(list(feats.values()))))) if feats else {}

    @classmethod
    def load(cls, path: str | Path) -> "Calibration":
        try:
            return cls(**json.loads(Path(path).read_text()))
        except (OSError, ValueError, TypeError) as e:
            raise ValueError(f"{path}: not a confidence calibration ({e}); write one with "
                             f"scripts/eval_confidence.py fit=PATH") from e

    def save(self, path: str | Path) -> None:
        write_text(Path(path), json.dumps(self.__dict__, indent=1) + "\n")


def calibration_for(checkpoints: list[str], n_stage2: int, path: str | Path) -> Calibration | None:
    """The calibration at ``path`` if it was fitted for the one stage-2 model among ``checkpoints`` (an ensemble
    or another model reads differently), else None: no expectation is better than a wrong one."""
    if n_stage2 != 1 or not Path(path).is_file():
        return None
    cal = Calibration.load(path)
    return cal if cal.stage2 in {sha256(c) for c in checkpoints} else None
