"""Trace probabilities on the rectified page -> 12 leads in mV, each exactly ``number_of_rows`` long.

One channel per printed row (3 rows of 4 leads + the rhythm row), at page scale (kx, ky).  Per row:
- a position per pixel column, searched within ``band_mv`` of the row's baseline: argmax refined to sub-pixel
  (``parabola``: a parabola through the peak and its two neighbours; ``soft``: the probability-weighted mean within
  ``soft_radius`` px), or a ``viterbi`` path, the dynamic programme over the best ``n_candidates`` positions per
  column with a cost on vertical jumps and slope changes, for rows where a neighbour's tall wave intrudes or the
  trace breaks; the path starts afresh at each slot (``slot_paths``), one lead not being bound to the last;
- ``exclusive``: a second pass for a row whose path ran over pixels another row traced, with those pixels scaled
  down (``exclusive_scores``): stage 2 sometimes lights a row's channel on a neighbour's deep wave;
- columns whose peak is below ``min_prob`` are gaps, filled by PCHIP from their neighbours, never by 0 mV;
- px -> mV from the row's baseline and px/mV (``data.geometry``), time windows per lead, and a cubic spline through
  each lead's columns, read at the lead's exact sample times (``number_of_rows``);
- lead II from the rhythm row, optionally blended with the short II of row 2 in its window (``blend_short_ii``),
  and an optional fit of the six limb leads to Einthoven/Goldberger (``einthoven`` = 0 off .. 1 the fit;
  ``einthoven_robust``: a fit that reads both IIs and replaces a read that left its trace, ``limb_leads``).
Each choice is an ``ExtractConfig`` field, so ablations compare them on the same probabilities.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicSpline, PchipInterpolator

from data import geometry as G
from pagekit import limb_leads, registration


NEAR_MM = 1.5          # another row's path this close to a lead's: the columns counted in ``near_share``
STEEP_SHARE = 0.1      # the steepest columns of a lead's path, whose mean probability is ``steep_prob``


@dataclass
class ExtractConfig:
    method: str = "argmax"         # argmax | viterbi
    subpixel: str = "parabola"     # parabola | soft | none
    soft_radius: int = 2
    min_prob: float = 0.05         # columns whose peak is lower are gaps (PCHIP-filled)
    n_candidates: int = 6          # viterbi: local maxima kept per column
    jump_cost: float = 0.05        # viterbi: cost per px of vertical jump between columns (see viterbi_rows)
    slope_cost: float = 0.05       # viterbi: cost per px of change in vertical step
    cap_px: float = 50.0           # viterbi: jumps and slope changes cost at most this many px (see viterbi_rows)
    blend_short_ii: float = 0.0    # weight of the short II (row 2) in lead II's first window
    einthoven: float = 0.0         # 0 = off, 1 = the limb leads fitted to Einthoven/Goldberger (limb_leads.py)
    einthoven_robust: float = 0.2  # mV; > 0: the fit also reads both IIs, and drops a read gone astray (limb_leads)
    band_mv: float = 3.0           # search each row only within this many mV of its baseline (0 = whole page)
    band_pitch: float = 0.9        # rows closer than the competition's page's: also within this share of the pitch
    exclusive: float = 0.5         # 0 = off; w in (0, 1]: second pass, pixels other rows traced scaled by 1 - w
    slot_paths: bool = True        # viterbi: the path starts afresh at every slot's first column (row_breaks)


def _parabola(prob: np.ndarray, y: np.ndarray) -> np.ndarray:
    cols = np.arange(prob.shape[1])
    lo, hi = np.clip(y - 1, 0, prob.shape[0] - 1), np.clip(y + 1, 0, prob.shape[0] - 1)
    a, b, c = prob[lo, cols], prob[y, cols], prob[hi, cols]
    denom = a - 2 * b + c
    ok = (denom < -1e-9) & (y > 0) & (y < prob.shape[0] - 1)
    return y + np.where(ok, np.clip(0.5 * (a - c) / np.where(ok, denom, 1), -0.5, 0.5), 0.0)


def _soft(prob: np.ndarray, y: np.ndarray, radius: int) -> np.ndarray:
    cols = np.arange(prob.shape[1])
    offs = np.arange(-radius, radius + 1)
    rows = np.clip(y[None] + offs[:, None], 0, prob.shape[0] - 1)
    w = prob[rows, cols]
    return (rows * w).sum(0) / np.maximum(w.sum(0), 1e-12)


def refine(prob: np.ndarray, y: np.ndarray, cfg: ExtractConfig) -> np.ndarray:
    """Integer row per column -> sub-pixel row per column."""
    if cfg.subpixel == "parabola":
        return _parabola(prob, y)
    if cfg.subpixel == "soft":
        return _soft(prob, y, cfg.soft_radius)
    if cfg.subpixel == "none":
        return y.astype(np.float64)
    raise ValueError(f"subpixel must be parabola, soft or none, got {cfg.subpixel!r}")


def viterbi_rows(prob: np.ndarray, cfg: ExtractConfig, breaks=()) -> np.ndarray:
    """The smoothest likely path: per column the ``n_candidates`` highest local maxima; cost = -log p + jump and
    slope-change penalties, each capped at ``cap_px``: uncapped, the slope term charged after a long jump (onto a
    trace that starts after blank columns) is paid again at every column, and the path never gets on.  At the
    ``breaks`` columns nothing is charged: the path may start anew there (``row_breaks``).
    Lower costs follow a deep S wave past a lead name stage 2 lights (0.01 per px: the shipped stage 2 on 100
    generated pages of 40 records it never saw, all layouts, 19.66 -> 20.10 dB; eik_dev's exact pages 20.25 ->
    20.26, ``scripts/ablate_extract.py``), but let a row take a brighter neighbour's wave the exclusive pass only
    dims (tests/test_extract.py): not the default until measured on the layouts that have such waves.
    Written here because no maintained library offers this small DP."""
    H, W = prob.shape
    k = min(cfg.n_candidates, H)
    is_max = np.zeros_like(prob, bool)
    is_max[1:-1] = (prob[1:-1] >= prob[:-2]) & (prob[1:-1] >= prob[2:])
    score = np.where(is_max, prob, -1.0)
    cand = np.argsort(-score, axis=0)[:k]                               # (k, W) rows
    p = np.take_along_axis(prob, cand, 0)
    unary = -np.log(np.clip(p, 1e-6, 1.0))
    cost = unary[:, 0].copy()                                           # (k,)
    step = np.zeros(k)                                                  # vertical step that led to each state
    back = np.zeros((W, k), np.int64)
    breaks = set(int(b) for b in breaks)
    for x in range(1, W):
        if x in breaks:                                                 # a new slot: no continuity charged
            back[x] = int(np.argmin(cost))
            cost = cost[back[x]] + unary[:, x]
            step = np.zeros(k)
            continue
        d = cand[:, x][:, None] - cand[:, x - 1][None, :]               # (k now, k before)
        total = (cost[None, :] + cfg.jump_cost * np.minimum(np.abs(d), cfg.cap_px)
                 + cfg.slope_cost * np.minimum(np.abs(d - step[None, :]), cfg.cap_px))
        back[x] = np.argmin(total, 1)
        cost = total[np.arange(k), back[x]] + unary[:, x]
        step = d[np.arange(k), back[x]].astype(np.float64)
    path = np.zeros(W, np.int64)
    path[-1] = int(np.argmin(cost))
    for x in range(W - 1, 0, -1):
        path[x - 1] = back[x, path[x]]
    return cand[path, np.arange(W)]


def fill_gaps(y: np.ndarray) -> np.ndarray:
    """NaN columns filled by PCHIP through the known ones (flat beyond the ends); all-NaN stays at the baseline."""
    known = np.isfinite(y)
    if known.all():
        return y
    if known.sum() < 2:
        return np.full_like(y, y[known][0] if known.any() else np.nan)
    x = np.arange(len(y))
    out = y.copy()
    inside = (x > x[known][0]) & (x < x[known][-1]) & ~known
    out[inside] = PchipInterpolator(x[known], y[known])(x[inside])
    out[x < x[known][0]] = y[known][0]
    out[x > x[known][-1]] = y[known][-1]
    return out


def row_positions(prob: np.ndarray, cfg: ExtractConfig) -> np.ndarray:
    """(H, W) probabilities of one row's trace -> (W,) sub-pixel y per column, gaps filled."""
    return traced_row(prob, cfg)[0]


def traced_row(prob: np.ndarray, cfg: ExtractConfig, choose: np.ndarray | None = None, breaks=()
               ) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) probabilities of one row's trace -> ((W,) sub-pixel y per column, gaps filled; (W,) probability at
    the chosen pixel, the column's confidence: below ``min_prob`` the column was a gap).  ``choose``, when given,
    is the score the path is chosen on (``exclusive_scores``); refinement and gaps still read ``prob``."""
    if cfg.method not in ("argmax", "viterbi"):
        raise ValueError(f"method must be argmax or viterbi, got {cfg.method!r}")
    prob = np.asarray(prob, dtype=np.float64)
    score = prob if choose is None else np.asarray(choose, dtype=np.float64)
    y = viterbi_rows(score, cfg, breaks) if cfg.method == "viterbi" else np.argmax(score, 0)
    out = refine(prob, y, cfg)
    p_at = prob[y, np.arange(prob.shape[1])]
    out[p_at < cfg.min_prob] = np.nan
    return fill_gaps(out), p_at


def slot_values(y_mv: np.ndarray, slot: G.LeadSlot, fs: int, n: int, kx: float, layout=None,
                offset: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """The columns of one printed slot (its time window) -> n samples at the lead's exact sample times, by a cubic
    spline through the column centres (held flat past the outermost ones).  ``offset`` (its row's, from
    ``pagekit.registration.row_offsets``): per page column, where the page shows that time (px to the right) and
    how low it shows the row (mV); each sample is read there, still from the slot's own columns.

    Read at the exact times: resampling the columns straight to n points would stretch the window by up to a column
    at each end (5 ms at 200 DPI; on the clean test page of tests/test_extract.py 25.6 dB instead of 36).  A spline,
    not the FFT resampling used before: the FFT takes the window as periodic, and the jump between its first and
    last value rang into both ends (cached probabilities of the shipped stage 2: our fold +0.2 dB, eik_dev +0.1)."""
    if n <= 0:                                        # test.csv may ask for no rows of a lead
        return np.zeros(0)
    a, _ = G.slot_sample_window(slot, fs, layout)
    t_samples = (a + np.arange(n)) / fs
    x0, x1 = G.time_to_x(t_samples[0], kx), G.time_to_x((a + n) / fs, kx) + G.INK_DX * kx
    cols = np.arange(int(np.ceil(x0)), int(np.ceil(x1)))                 # pixel centres inside the window
    cols = cols[(cols >= 0) & (cols < len(y_mv))]
    if len(cols) < 2:
        return np.zeros(n)
    # each column shows the ink of a slightly later time (data.geometry.INK_DX); the window starts right of the
    # slot's boundary stroke (a pulse's edge or a separator, drawn at x0), which the first ink column would share
    # (starting there put the pulse's top into lead II's first samples), and ends where the slot's ink ends
    t_cols = G.ink_time(cols, kx)
    t_read, low = t_samples, 0.0
    if offset is not None:
        x = G.time_to_x(t_samples, kx)
        page_cols = np.arange(len(offset[0]))
        t_read = t_samples + np.interp(x, page_cols, offset[0]) / (G.PX_PER_S * kx)
        low = np.interp(x, page_cols, offset[1])
    return CubicSpline(t_cols, y_mv[cols])(np.clip(t_read, t_cols[0], t_cols[-1])) + low


def exclusive_scores(probs: np.ndarray, paths: list[np.ndarray], w: float, radius: int = 2
                     ) -> list[np.ndarray | None]:
    """Per row of (R, H, W) probabilities: the row's map scaled by (1 - w) within ``radius`` px of another row's
    path, or None where its own path met no such pixel (it keeps its first path).  ``paths``: each row's y per
    column from a first, independent pass.  Where a neighbour's deep wave crosses into a row, that row's channel
    often lights up on the neighbour's trace too: on an ECG-Image-Kit page (eik_dev 6478664205-0001) lead III's path
    took lead II's S wave for 50 samples, although lead II's own row had traced it.  Pixels two paths share are
    scaled down for both: the row that owns them has nothing else near to go to, the intruder has its own stroke;
    at a true crossing each path pays for a few columns only."""
    R, H, W = probs.shape
    cols = np.arange(W)
    rows = [np.clip(np.rint(y).astype(np.int64), 0, H - 1) for y in paths]
    taken = np.zeros((R, H, W), bool)
    for r, yi in enumerate(rows):
        for d in range(-radius, radius + 1):
            taken[r, np.clip(yi + d, 0, H - 1), cols] = True
    claims = taken.sum(0)
    out: list[np.ndarray | None] = []
    for r, yi in enumerate(rows):
        others = claims > taken[r]                                  # another row's path within radius
        p = np.asarray(probs[r], dtype=np.float64)
        out.append(np.where(others, p * (1 - w), p) if others[yi, cols].any() else None)
    return out


def row_breaks(row: int, width: int, kx: float, layout=None) -> list[int]:
    """The first column of every slot of a row, where the Viterbi path may start afresh: the slots hold separate
    leads, and where one lead ends and the next begins the page has a vertical stroke (the calibration pulse's
    falling edge, a separator tick) that a path held continuous across the boundary climbs and reads as signal for
    a column or two.  Cached probabilities of the shipped stage 2: our fold 16.25 -> 17.25 dB, eik_dev end to end
    17.84 -> 18.00, exact pages 19.38 -> 19.64."""
    return sorted({slot_columns(s, width, kx).start for s in G.lead_slots(layout) if s.row == row})


TIGHT = 0.9   # a layout's rows are tight below this share of the competition's pitch (6x2: 0.75, 12x1: 0.43)


def _row_in_band(prob: np.ndarray, row: int, kx: float, ky: float, cfg: ExtractConfig,
                 choose: np.ndarray | None = None, layout: G.Layout | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``traced_row`` searched only within ``band_mv`` of the row's baseline: an unsure network's stray maxima
    elsewhere on the page (another row's trace, text) then cannot be picked (measured on a half-trained CPU model:
    -9.9 dB over the whole page height, 6.7 dB within 3 mV with Viterbi).  On layouts with tighter rows the band
    is also kept within ``band_pitch`` of the pitch, or a path runs onto the next row's trace (../shared/eik_layouts,
    pages read whole, shipped stage 2: 12x1 -2.5 dB with 4 mV, 14.7 with 0.9 pitch; 6x2+II 12.7 -> 17.2; 6x2 19.7
    -> 20.7)."""
    layout = G.as_layout(layout)
    breaks = row_breaks(row, prob.shape[1], kx, layout) if cfg.slot_paths else ()
    if cfg.band_mv <= 0:
        return traced_row(prob, cfg, choose, breaks)
    mv = cfg.band_mv
    if cfg.band_pitch > 0 and layout.pitch < TIGHT * G.PAGE_LAYOUT.pitch:
        mv = min(mv, cfg.band_pitch * layout.pitch / G.PX_PER_MV)
    b, half = layout.baselines[row] * ky, mv * G.PX_PER_MV * ky
    y0, y1 = max(0, int(np.floor(b - half))), min(prob.shape[0], int(np.ceil(b + half)) + 1)
    y, p_at = traced_row(prob[y0:y1], cfg, None if choose is None else choose[y0:y1], breaks)
    return y0 + y, p_at


def slot_columns(slot: G.LeadSlot, width: int, kx: float) -> slice:
    """The pixel columns of a printed slot's time window on a page ``width`` px wide."""
    a = int(np.ceil(G.time_to_x(slot.t0, kx)))                           # right of the boundary stroke
    b = int(np.ceil(G.time_to_x(slot.t1, kx) + G.INK_DX * kx))           # where the slot's ink ends
    return slice(max(0, a), min(width, b))


def read_rows(probs: np.ndarray, k, cfg: ExtractConfig, layout: G.Layout) -> tuple[list, list]:
    """(R, H, W) probabilities -> (per row the mV of every pixel column, per row the probability at the traced
    pixel of every column): the rows' paths, before they are cut into leads."""
    if len(probs) != layout.n_rows:
        raise ValueError(f"layout {layout.name} prints {layout.n_rows} rows, the probabilities have {len(probs)}")
    kx, ky = G.scales(k)
    traced = [_row_in_band(probs[r], r, kx, ky, cfg, layout=layout) for r in range(layout.n_rows)]
    if cfg.exclusive > 0:                             # second pass, off the pixels the other rows traced
        choose = exclusive_scores(probs, [y for y, _ in traced], cfg.exclusive)
        traced = [t if c is None else _row_in_band(probs[r], r, kx, ky, cfg, c, layout)
                  for r, (t, c) in enumerate(zip(traced, choose))]
    return [G.y_to_mv(y, r, ky, layout) for r, (y, _) in enumerate(traced)], [p for _, p in traced]


def extract_leads(probs: np.ndarray, lengths: dict[str, int], fs: int, k=1.0,
                  cfg: ExtractConfig | None = None, layout=None) -> dict[str, np.ndarray]:
    """probs (R, H, W): per-row trace probabilities of the rectified page at scale k or (kx, ky), a row per printed
    row of ``layout`` (default: the competition's 3x4+II, four rows).  lengths: number_of_rows per lead (test.csv).
    Returns lead -> mV array of exactly that length from the start of the lead's printed window
    (``Layout.lead_samples``), for the leads in ``lengths`` (0 rows: an empty array)."""
    return extract_with_confidence(probs, lengths, fs, k, cfg, layout)[0]


def extract_with_confidence(probs: np.ndarray, lengths: dict[str, int], fs: int, k=1.0,
                            cfg: ExtractConfig | None = None, layout=None, rows=None, shift=None
                            ) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """``extract_leads`` and, per lead, how sure it was: ``trace_prob`` (the mean probability at the traced pixel
    over the lead's columns), ``gap_share`` (the share of its columns below ``min_prob``, filled by PCHIP),
    ``near_share`` (the share of its columns where another row's path runs within ``NEAR_MM``: a wave reaching
    into a neighbour's row, where a path may take the other trace), ``steep_prob`` (the mean probability over the
    steepest ``STEEP_SHARE`` of its columns: QRS flanks, which stage 2 lights faintest) and, for a limb lead the
    Einthoven/Goldberger fit moved, ``fit_db`` (its power over the power of the fit's change, dB: low where the
    reads disagreed).
    A lead printed twice (in a row and as a rhythm strip) is read from its strip.  ``rows``: what
    :func:`read_rows` gave on these probabilities with a layout of the same rows (read once, named twice).
    ``shift`` (``pagekit.registration.GridShift``): where the page's grid lies against the canonical one; each
    lead is read back where it belongs by it (:func:`slot_values`)."""
    cfg = cfg or ExtractConfig()
    lay = G.as_layout(layout)
    kx, ky = G.scales(k)
    rows_mv, p_rows = rows if rows is not None else read_rows(probs, k, cfg, lay)
    offsets = (registration.row_offsets(shift, k, lay, probs.shape[2]) if shift is not None
               else [None] * lay.n_rows)
    ys = np.stack([G.mv_to_y(v, r, ky, lay) for r, v in enumerate(rows_mv)]) if rows_mv else np.zeros((0, 0))
    out: dict[str, np.ndarray] = {}
    confidence: dict[str, dict] = {}
    for slot in lay.slots():
        if slot != lay.lead_slot(slot.lead) or slot.lead not in lengths:
            continue                                  # a lead with a strip is read from it; its short slot may blend
        out[slot.lead] = slot_values(rows_mv[slot.row], slot, fs, lengths[slot.lead], kx, lay, offsets[slot.row])
        cols = slot_columns(slot, probs.shape[2], kx)
        p_at = p_rows[slot.row][cols]
        apart = np.abs(np.delete(ys[:, cols], slot.row, 0) - ys[slot.row, cols]).min(0, initial=np.inf)
        slope = np.abs(np.gradient(ys[slot.row, cols])) if p_at.size > 1 else np.zeros(p_at.size)
        steep = p_at[slope >= np.quantile(slope, 1 - STEEP_SHARE)] if p_at.size else p_at
        confidence[slot.lead] = {"trace_prob": float(p_at.mean()) if p_at.size else 0.0,
                                 "gap_share": float((p_at < cfg.min_prob).mean()) if p_at.size else 1.0,
                                 "near_share": float((apart < NEAR_MM * G.PX_PER_MM * ky).mean()) if p_at.size else 0.0,
                                 "steep_prob": float(steep.mean()) if steep.size else 0.0}
    if lay.rows != G.LAYOUT:                          # the limb-lead fit knows the 3x4 rows' time windows only
        return out, confidence
    short = None
    if G.RHYTHM_LEAD in lay.strips:
        short_ii = next(s for s in lay.slots() if s.lead == G.RHYTHM_LEAD and not s.rhythm)
        a, b = G.slot_sample_window(short_ii, fs, lay)
        robust_fit = cfg.einthoven > 0 and cfg.einthoven_robust > 0      # the only other reader of the short II
        short = (slot_values(rows_mv[short_ii.row], short_ii, fs, b - a, kx, lay, offsets[short_ii.row])
                 if cfg.blend_short_ii > 0 or robust_fit else None)
        if cfg.blend_short_ii > 0 and len(out.get(G.RHYTHM_LEAD, ())) >= b:
            ii = out[G.RHYTHM_LEAD]
            ii[a:b] = (1 - cfg.blend_short_ii) * ii[a:b] + cfg.blend_short_ii * short
    before = {lead: out[lead] for lead in limb_leads.LIMB if lead in out}
    limb_leads.project(out, fs, cfg.einthoven, cfg.einthoven_robust, short)
    for lead, v in before.items():
        if out[lead] is not v and len(v):
            power, change = np.var(v), np.mean((out[lead] - v) ** 2)
            confidence[lead]["fit_db"] = float(10 * np.log10(max(power, 1e-6) / max(change, 1e-6)))
    return out, confidence
