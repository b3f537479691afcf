"""Which layout a rectified page prints, from the page itself.

1. Rows: stage 2 run over a dense stack of rows (``DENSE``, every 1.54 mV down the page) lights every printed
   trace; traces sit on their baseline most of the time, so the mean probability per page row peaks at each printed
   row (``find_rows``).
2. Layout: the rows found against each layout's rows (``match_rows``): each of its rows found within a quarter
   pitch of its place, and nothing else found that looks like a row of trace (strong, and lit across the columns,
   where text is lit in patches).  A page whose rows fit no layout is not read.
3. Strips: a rhythm strip prints a lead that the rows also print, over the same seconds, so each strip is named by
   the lead it repeats (``name_strips``): the one whose columns it matches to within the noise, by a margin over
   every other lead, over every window where the rows say what that lead is (its own slot; a limb lead also where
   two others of its column give it by Einthoven and Goldberger).  A strip that repeats no lead clearly is not
   named.
4. Check: rows read as 6x2 (six limb leads over the same 5 s) must obey Einthoven and Goldberger
   (``limb_agreement_db``, to ``page_fit.LIMB_DB``), else they print other leads: a 3x4 page with three strips has
   six even rows too.
Hand-written: a few lines of peak finding and matching over numbers no library models.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import find_peaks

from data import geometry as G
from data.layout import Layout, get_layout
from pagekit import limb_leads
from pagekit.extract import slot_columns

DENSE = "12x1"                      # rows every 121 px: each printed row within 61 px of a strip's centre
PROFILE_S = (0.86, 3.46)            # seconds of the time axis read for the rows (2.6 s: 512 px, a multiple of 32)
ROW_FLOOR = 0.2                     # peaks weaker than this share of a typical row's are not looked at
ROW_HEIGHT = 0.35                   # ... and those above this one are named when no layout fits
EXTRA = 0.5                         # a peak no row of the layout explains must be weaker than this share of its rows'
COVER = 0.5                         # ... or lit across less than this share of the columns (text, not a trace)
TOLERANCE = 0.25                    # of the layout's pitch: how far a row found may sit from its template
STRIP_DB = 6.0                      # a strip repeats a short lead: their columns agree to this SNR at least,
STRIP_MARGIN_DB = 3.0               # and by this much better than any other lead's,
STRIP_LAG_S = 0.04                  # allowing this shift in time (a page rectified a little askew)
# The leads machines print as rhythm strips (GE: V1, II, V5; most others II).  A strip that best matches another
# lead is left unnamed: on real page ecg00024 a II strip matched aVF by the margin (II and aVF look alike there).
STRIP_LEADS = ("II", "V1", "V5")
# Row structures, strips named later.  A layout's position on real paper varies; these are ECG-Image-Kit's.
STRUCTURES = ("3x4", "3x4+II", "3x4+II,II", "3x4+II,II,II", "6x2", "6x2+II", "12x1")


def profile_columns(kx: float) -> tuple[int, int]:
    """(x0, x1) page columns at scale kx of the rows' profile: a multiple of the network's stride."""
    x0 = int(G.time_to_x(PROFILE_S[0], kx)) // 32 * 32
    return x0, x0 + int(round((G.time_to_x(PROFILE_S[1], kx) - G.time_to_x(PROFILE_S[0], kx)) / 32)) * 32


class Row(NamedTuple):
    """A profile peak: y in canonical px, strength against a typical row's, and the share of the profile's columns
    where it is lit (a trace runs across them all; text, a header or a footer, leaves gaps)."""
    y: float
    strength: float
    cover: float = 1.0


def find_rows(prob: np.ndarray, ky: float) -> list[Row]:
    """(H, w) trace probability (the dense stack's maximum over its rows) -> every profile peak that may be a
    printed row: at least ``ROW_FLOOR`` of the typical row's strength (the median of the peaks above half the
    highest).  Text lines and labels give peaks too; ``match_rows`` tells them apart."""
    profile = gaussian_filter1d(prob.astype(np.float64).mean(1), 6.0 * ky)
    peaks, _ = find_peaks(profile, distance=max(1, int(60 * ky)))
    if not len(peaks) or profile[peaks].max() <= 0:
        return []
    h = profile[peaks]
    typical = float(np.median(h[h >= 0.5 * h.max()]))
    half = max(1, int(round(8 * ky)))
    return [Row(float(y / ky), float(v / typical), float((prob[max(0, y - half):y + half + 1].max(0) > 0.5).mean()))
            for y, v in zip(peaks, h) if v >= ROW_FLOOR * typical]


def _fit(rows: list[Row], layout: Layout) -> float | None:
    """How far (in pitches, the worst row) ``rows`` sit from ``layout``'s, or None when they do not fit: each of
    its rows needs a peak within ``TOLERANCE`` of a pitch, and no peak left over may be another row of trace: as
    strong as ``EXTRA`` of the rows' median strength and lit across ``COVER`` of the columns or more (a line of
    text above, among or below the rows, a header or a footer, is lit in patches)."""
    rows = [Row(*r) for r in rows]
    ys = np.array([r.y for r in rows])
    used, errs = set(), []
    for b in layout.baselines:
        i = int(np.argmin(np.abs(ys - b)))
        if abs(ys[i] - b) > TOLERANCE * layout.pitch or i in used:
            return None
        used.add(i)
        errs.append(abs(ys[i] - b) / layout.pitch)
    typical = np.median([rows[i].strength for i in used])
    if any(r.strength >= EXTRA * typical and r.cover >= COVER for j, r in enumerate(rows) if j not in used):
        return None
    return max(errs)


def match_rows(rows: list[Row]) -> tuple[Layout | None, str]:
    """Rows found (``find_rows``) -> (the layout structure they fit, why not when none).  Several fit only when
    one's rows are a subset of another's with the rest weak: the one with more rows wins."""
    fits = [(-len(lay.baselines), err, lay) for lay in map(get_layout, STRUCTURES)
            if rows and (err := _fit(rows, lay)) is not None]
    if fits:
        return min(fits, key=lambda f: f[:2])[2], ""
    strong = [r[0] for r in rows if r[1] >= ROW_HEIGHT]
    found = ", ".join(f"{y:.0f}" for y in strong) or "none"
    return None, (f"{len(strong)} trace rows found (y = {found} px on the rectified page), not the rows of a layout "
                  f"we read ({', '.join(STRUCTURES)}; force one with layout=NAME)")


def _powers(x: np.ndarray, y: np.ndarray, lag: int = 0) -> tuple[float, float]:
    """(signal, noise) of y read as x, at the shift within ``lag`` columns that gives the least noise, each about its
    median."""
    best = (0.0, np.inf)
    for d in range(-lag, lag + 1):
        a, b = (x[d:], y[:len(y) - d]) if d >= 0 else (x[:d], y[-d:])
        a, b = a - np.median(a), b - np.median(b)
        sig, noise = float((a ** 2).sum()), float(((a - b) ** 2).sum())
        if noise / max(sig, 1e-12) < best[1] / max(best[0], 1e-12):
            best = (sig, noise)
    return best


def _limb_columns(rows_mv: list[np.ndarray], layout: Layout, kx: float, least: int
                  ) -> list[tuple[slice, dict[str, np.ndarray]]]:
    """(page columns, lead -> read) of every column of the rows that prints at least ``least`` limb leads over the
    same seconds (3x4: I, II, III over 0-2.5 s and aVR, aVL, aVF over 2.5-5 s; 6x2: all six over 0-5 s)."""
    width = len(rows_mv[0])
    by_col: dict[int, dict[str, tuple[slice, np.ndarray]]] = {}
    for s in layout.slots():
        c = slot_columns(s, width, kx)
        if not s.rhythm and c.stop - c.start > 10 and s.lead in limb_leads.LIMB:
            by_col.setdefault(s.col, {})[s.lead] = (c, rows_mv[s.row][c])
    return [(next(iter(reads.values()))[0], {lead: v for lead, (_, v) in reads.items()})
            for reads in by_col.values()
            if len(reads) >= least and len({(c.start, c.stop) for c, _ in reads.values()}) == 1]


def _references(rows_mv: list[np.ndarray], layout: Layout, kx: float) -> dict[str, list[tuple[slice, np.ndarray]]]:
    """lead -> [(page columns, what the rows say the lead is there)]: each short slot's own read, and where a column
    of the rows prints two or more limb leads over the same seconds, every other limb lead as Einthoven and
    Goldberger give it from them (II and aVF look alike; the leads around them tell them apart)."""
    width = len(rows_mv[0])
    refs: dict[str, list] = {}
    for s in layout.slots():
        c = slot_columns(s, width, kx)
        if not s.rhythm and c.stop - c.start > 10:
            refs.setdefault(s.lead, []).append((c, rows_mv[s.row][c]))
    for c, reads in _limb_columns(rows_mv, layout, kx, 2):
        for lead, v in limb_leads.predict_limb(reads).items():
            if lead not in reads:
                refs.setdefault(lead, []).append((c, v))
    return refs


def limb_agreement_db(rows_mv: list[np.ndarray], layout: Layout, kx: float) -> float | None:
    """How well the limb leads the rows read obey Einthoven and Goldberger where one column prints three or more of
    them (3x4: I, II, III over 0-2.5 s; aVR, aVL, aVF over 2.5-5 s): their power over the power of what each leaves
    unexplained by the others of its column, in dB, over all such columns; None where no column prints three.
    Rows read on the wrong rows break it: a 6x2 page read as 3x4 puts I, II, III where aVR, aVL, aVF belong."""
    lag = int(round(STRIP_LAG_S * G.PX_PER_S * kx))
    sig = noise = 0.0
    for _, reads in _limb_columns(rows_mv, layout, kx, 3):
        v = {lead: x - np.median(x) for lead, x in reads.items()}
        for lead in v:                                   # each lead from the others of its column
            pred = limb_leads.predict_limb({n: x for n, x in v.items() if n != lead})[lead]
            s_, n_ = _powers(pred, v[lead], lag)
            sig, noise = sig + s_, noise + n_
    if sig == 0.0:
        return None
    return float(10 * np.log10(sig / max(noise, 1e-12)))


def name_strips(rows_mv: list[np.ndarray], layout: Layout, kx: float) -> list[tuple[str | None, float]]:
    """Per strip of ``layout`` (its leads are placeholders): (the lead it repeats, or None; the SNR of the match in
    dB).  ``rows_mv``: per row the mV of every page column (``pagekit.extract.read_rows``).  Each lead's match is
    taken over every window where the rows say what it is (``_references``)."""
    lag = int(round(STRIP_LAG_S * G.PX_PER_S * kx))
    refs = _references(rows_mv, layout, kx)
    out = []
    for strip in (s for s in layout.slots() if s.rhythm):
        scores = sorted(((_match_db(rows_mv[strip.row], windows, lag), lead) for lead, windows in refs.items()),
                        reverse=True)
        best, lead = scores[0]
        clear = best >= STRIP_DB and best - scores[1][0] >= STRIP_MARGIN_DB and lead in STRIP_LEADS
        out.append((lead if clear else None, best))
    return out


def _match_db(strip: np.ndarray, windows: list[tuple[slice, np.ndarray]], lag: int) -> float:
    """The strip against a lead's references: the SNR in dB of the best window (each at its best shift within
    ``lag`` columns, about its median).  The best, not the pool: a reference given by Einthoven and Goldberger adds
    the errors of two or three readings, and on real page ecg00001 one such window sank a II strip that matched
    its own slot at 18 dB."""
    best = -np.inf
    for c, ref in windows:
        s, n = _powers(ref, strip[c], lag)
        best = max(best, float(10 * np.log10(max(s, 1e-12) / max(n, 1e-12))))
    return best
