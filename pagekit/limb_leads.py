"""The six limb leads are two signals: every one is a fixed combination of leads I and II (Einthoven: III = II - I;
Goldberger: aVR = -(I + II)/2, aVL = I - II/2, aVF = II - I/2).  A page prints them in two time windows, each read
from several rows at once, so the read leads can be fitted to that model:

- window 0 (first 2.5 s): I, III, the rhythm strip's II and row 2's short II: four reads of two signals;
- window 1 (2.5-5 s): aVR, aVL, aVF and the rhythm strip's II: four reads again.

``project`` with ``robust_scale`` 0: the plain least-squares fit over the three reads of each window that are
printed in it (I, II, III; aVR, aVL, aVF), pulled towards by ``w`` (0 = off, 1 = the fit): it averages the reads'
noise away, but one read that left its trace (a path on a neighbour's wave for 50 samples) pulls the fit, and its
error spreads to the leads beside it.  ``robust_scale`` > 0: all four reads, and per sample the fit leaves out the
one read whose absence lowers the residual by more than ``robust_scale``^2 (``fit``); that read takes the value the
others give it.  In window 1 any single wrong read is identified; in window 0 a wrong II is, but I and III each
measure lead I once (III = II - I), so a disagreement between them stays split between both (``identifiable``).
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter1d

from data import geometry as G

# Each limb lead as (coefficient of I, coefficient of II), and the reads of each window in those terms.
LIMB = {"I": (1.0, 0.0), "II": (0.0, 1.0), "III": (-1.0, 1.0), "aVR": (-0.5, -0.5), "aVL": (1.0, -0.5),
        "aVF": (-0.5, 1.0)}
WINDOW0 = {"I": LIMB["I"], "III": LIMB["III"], "II": LIMB["II"], "II_short": LIMB["II"]}
WINDOW1 = {"aVR": LIMB["aVR"], "aVL": LIMB["aVL"], "aVF": LIMB["aVF"], "II": LIMB["II"]}


def predict_limb(reads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Two or more limb leads read over the same samples -> all six, by the least-squares fit of I and II."""
    names = list(reads)
    design = np.array([LIMB[n] for n in names])
    x = np.stack([reads[n] for n in names], 1) @ np.linalg.pinv(design).T           # (T, 2): I and II
    return {lead: x @ np.asarray(c) for lead, c in LIMB.items()}
SMOOTH_S = 0.04


def _least_squares(reads: np.ndarray, design: np.ndarray, use: np.ndarray) -> np.ndarray:
    """(T, M) reads -> (T, M) all reads as fitted from the reads in ``use`` alone."""
    return reads[:, use] @ np.linalg.pinv(design[use]).T @ design.T


def identifiable(design: np.ndarray) -> list[int]:
    """The reads whose error, alone, leaves a residual no other read's error leaves: only those can be told wrong.
    (In window 0 a wrong I and a wrong III leave the same residual: each is lead I's only other read.)"""
    m = len(design)
    sig = (np.eye(m) - design @ np.linalg.pinv(design)).T              # residual of a unit error in each read
    sig /= np.maximum(np.linalg.norm(sig, axis=1, keepdims=True), 1e-12)
    same = np.abs(sig @ sig.T) > 0.999
    return [k for k in range(m) if same[k].sum() == 1]


def fit(reads: np.ndarray, design: np.ndarray, scale: float, smooth: int) -> np.ndarray:
    """(T, M) reads of (M, 2) ``design`` -> (T, M) fitted reads.  ``scale`` 0: least squares over all reads.
    ``scale`` > 0 (mV): per sample, the fit over all reads, or over all but one identifiable read where leaving it
    out lowers the squared residual (averaged over ``smooth`` samples) by more than scale^2; the read left out then
    takes the value the others give it.  Reads are compared about their medians: a row's constant offset (which the
    metric ignores) is not an error.  Hand-written: a leave-one-out test over thousands of tiny problems at once,
    which no robust-regression library offers."""
    if scale <= 0:
        return _least_squares(reads, design, np.ones(len(design), bool))
    centre = np.median(reads, 0)
    x = reads - centre
    fits, costs = [], []
    for drop in [None, *identifiable(design)]:
        use = np.ones(len(design), bool)
        if drop is not None:
            use[drop] = False
        f = _least_squares(x, design, use)
        fits.append(f)
        rss = ((x - f)[:, use] ** 2).sum(1)
        costs.append(uniform_filter1d(rss, max(1, smooth), mode="nearest") + (0.0 if drop is None else scale ** 2))
    best = np.argmin(np.stack(costs), 0)
    return np.stack(fits)[best, np.arange(len(x))] + centre


def _reads(leads: dict[str, np.ndarray], short_ii: np.ndarray | None, names, start: int) -> dict:
    """The reads a window has among ``names``: its own leads, the rhythm strip's II from ``start``, row 2's
    short II; empty ones left out."""
    out = {}
    for name in names:
        if name == "II_short":
            v = short_ii
        elif name == "II":
            v = None if leads.get("II") is None else leads["II"][start:]
        else:
            v = leads.get(name)
        if v is not None and len(v):
            out[name] = v
    return out


def project(leads: dict[str, np.ndarray], fs: int, w: float, robust_scale: float = 0.0,
            short_ii: np.ndarray | None = None) -> None:
    """Fit the limb leads of ``leads`` (lead -> mV, in place) in both windows, over the samples every read there
    has (all of them, unless test.csv asks for fewer rows of one).  ``short_ii``: row 2's II over window 0 (None:
    window 0 has three reads, and the plain fit is the projection onto I - II + III = 0)."""
    if w <= 0:
        return
    smooth = int(round(SMOOTH_S * fs))
    window1_start = G.slot_sample_window(G.short_slot("aVR"), fs)[0]
    for window, start, own in ((WINDOW0, 0, ("I", "II", "III")), (WINDOW1, window1_start, ("aVR", "aVL", "aVF"))):
        if not all(lead in leads for lead in own):
            continue
        # the plain fit keeps to the three reads it was measured with (docs/training.md: extraction)
        reads = _reads(leads, short_ii, [n for n in window if n in own or robust_scale > 0], start)
        if len(reads) < 3:                            # test.csv may ask for no rows of a lead
            continue
        n = min(len(v) for v in reads.values())
        names = list(reads)
        fitted = fit(np.stack([np.asarray(reads[name][:n], dtype=np.float64) for name in names], 1),
                     np.array([window[name] for name in names]), robust_scale, smooth)
        for j, name in enumerate(names):
            if name == "II_short":
                continue
            seg = slice(start, start + n) if name == "II" else slice(0, n)
            leads[name] = leads[name].copy()
            leads[name][seg] = (1 - w) * leads[name][seg] + w * fitted[:, j]
