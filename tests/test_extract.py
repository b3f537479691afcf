"""Extraction: probabilities on the rectified page -> leads in mV (sub-pixel, Viterbi, gaps, sample times)."""
from dataclasses import replace

import numpy as np
import pytest

from data import geometry as G
from pagekit.extract import ExtractConfig, extract_leads, row_positions, slot_columns, slot_values
from pagekit.metric import align_signals, lead_powers

FS = 500


def _signal(lead_index: int):
    """A smooth, band-limited test ECG per lead (mV as a function of time)."""
    f = np.array([1.1, 4.7, 13.0, 23.0]) * (1 + 0.03 * lead_index)
    a = np.array([0.4, 0.25, 0.15, 0.05])
    return lambda t: (a[:, None] * np.sin(2 * np.pi * f[:, None] * np.asarray(t)[None] + lead_index)).sum(0)


def _render(k: float = 1.0, sigma: float = 1.2):
    """(4, H, W) Gaussian trace probabilities of every row, as stage 2 would give them, and the true leads."""
    w, h = G.page_size(k)
    probs = np.zeros((G.N_ROWS, h, w), np.float32)
    yy = np.arange(h, dtype=np.float64)[:, None]
    x = np.arange(w, dtype=np.float64)
    t = G.ink_time(x, k)                                   # the time whose ink each column shows
    for slot in G.lead_slots():
        t0, t1 = (0.0, 10.0) if slot.is_rhythm else (2.5 * slot.col, 2.5 * slot.col + 2.5)
        cols = (t >= t0) & (t < t1)
        y = G.mv_to_y(_signal(G.LEADS.index(slot.lead))(t[cols]), slot.row, k)
        probs[slot.row][:, cols] = np.exp(-(yy - y[None]) ** 2 / (2 * sigma ** 2))
    n = G.sig_len(FS)
    truth = {}
    for lead in G.LEADS:
        a, b = (0, n) if lead == G.RHYTHM_LEAD else G.slot_sample_window(G.short_slot(lead), FS)
        truth[lead] = _signal(G.LEADS.index(lead))(np.arange(a, b) / FS)
    return probs, truth


def _snr_db(truth, pred):
    sig = noise = 0.0
    for lead in truth:
        s, nz = lead_powers(truth[lead], align_signals(truth[lead], pred[lead], int(0.2 * FS)))
        sig, noise = sig + s, noise + nz
    return 10 * np.log10(sig / noise)          # uncapped


@pytest.fixture(scope="module")
def page():
    return _render()


@pytest.mark.parametrize("method, subpixel", [("argmax", "parabola"), ("argmax", "soft"), ("viterbi", "parabola")])
def test_extraction_recovers_a_known_signal_above_30_db(page, method, subpixel):
    probs, truth = page
    pred = extract_leads(probs, {lead: len(v) for lead, v in truth.items()}, FS, 1.0, ExtractConfig(method, subpixel))
    assert {lead: len(v) for lead, v in pred.items()} == {lead: len(v) for lead, v in truth.items()}
    assert _snr_db(truth, pred) > 30


@pytest.mark.parametrize("subpixel, max_rms_px", [("parabola", 0.05), ("soft", 0.1), ("none", 0.35)])
def test_sub_pixel_positions_beat_the_integer_argmax(subpixel, max_rms_px):
    h, w = 120, 500
    true_y = 60 + 25 * np.sin(np.arange(w) / 23)                                  # every fractional offset
    prob = np.exp(-(np.arange(h)[:, None] - true_y[None]) ** 2 / (2 * 1.2 ** 2))
    rms = np.sqrt(np.mean((row_positions(prob, ExtractConfig(subpixel=subpixel)) - true_y) ** 2))
    assert rms < max_rms_px and (subpixel == "none") == (rms > 0.2)


def test_viterbi_stays_on_the_trace_where_a_neighbours_wave_intrudes():
    h, w = 300, 400
    yy = np.arange(h)[:, None]
    true_y = 150 + 20 * np.sin(np.arange(w) / 40)
    prob = 0.8 * np.exp(-(yy - true_y[None]) ** 2 / 2.0)
    prob[20:40, 200:240] = np.maximum(prob[20:40, 200:240], np.exp(-(yy[20:40] - 30) ** 2 / 2.0))   # taller, far
    greedy = row_positions(prob, ExtractConfig(method="argmax"))
    smooth = row_positions(prob, ExtractConfig(method="viterbi"))
    assert np.abs(greedy - true_y).max() > 80
    assert np.abs(smooth - true_y).max() < 0.5


def test_gaps_are_interpolated_not_zeroed():
    h, w = 200, 300
    yy = np.arange(h)[:, None]
    true_y = 100 + 15 * np.sin(np.arange(w) / 30)
    prob = np.exp(-(yy - true_y[None]) ** 2 / 2.0)
    prob[:, 120:150] = 0.0                                                          # the trace breaks
    y = row_positions(prob, ExtractConfig())
    assert np.all(np.isfinite(y)) and np.abs(y[120:150] - true_y[120:150]).max() < 1.5


@pytest.mark.parametrize("fs, kx", [(500, 1.0), (1025, 1.0), (250, 2.0)])
def test_slot_columns_are_read_at_the_sample_times_without_ringing_at_the_window_ends(fs, kx):
    """A window whose last value is far from its first (a ramp) read at every sample time: exactly, where resampling
    that takes the window as periodic rings at both ends."""
    slot = G.short_slot("V1")
    w, _ = G.page_size(kx)
    x = np.arange(w, dtype=np.float64)
    t = G.ink_time(x, kx)
    a, b = G.slot_sample_window(slot, fs)
    got = slot_values(2.0 * t, slot, fs, b - a, kx)                # 2 mV/s: 5 mV from the window's start to end
    ts = np.arange(a, b) / fs
    assert len(got) == b - a
    cols = t[(x >= G.time_to_x(a / fs, kx)) & (x < G.time_to_x(b / fs, kx) + G.INK_DX * kx)]
    inside = (ts >= cols[0]) & (ts <= cols[-1])                     # past the outermost columns: held flat
    assert inside.mean() > 0.99
    np.testing.assert_allclose(got[inside], 2.0 * ts[inside], atol=1e-9)


def test_a_vertical_stroke_at_a_slot_start_is_not_read_when_paths_restart_per_slot(page):
    """Where a lead begins, the page prints a vertical stroke (the calibration pulse's falling edge, a separator
    tick between leads); a path held continuous from what precedes it stays on the stroke's top for a column."""
    clean, truth = page
    probs = clean.copy()
    row = G.N_ROWS - 1                                                    # the rhythm row, after its 1 mV pulse
    x0 = int(np.ceil(G.X_T0))
    start = int(G.mv_to_y(truth["II"][0], row))
    top = int(G.mv_to_y(truth["II"][0] + 1.0, row))                       # 1 mV above where the trace starts
    probs[row][top - 1:top + 2, int(G.CAL_X[0]):x0] = 0.95                # the pulse's top
    probs[row][top:start, x0] = 0.95                                      # its falling edge, in the first column
    lengths = {lead: len(v) for lead, v in truth.items()}
    cfg = ExtractConfig(method="viterbi", band_mv=4.0)
    joined = extract_leads(probs, lengths, FS, 1.0, replace(cfg, slot_paths=False))
    restarted = extract_leads(probs, lengths, FS, 1.0, cfg)                    # slot_paths: the default
    reference = extract_leads(clean, lengths, FS, 1.0, cfg)
    assert joined["II"][0] - reference["II"][0] > 0.3                          # read on the pulse
    assert np.abs(restarted["II"] - reference["II"]).max() < 0.03              # the stroke's own pixels, read soft


def test_einthoven_projection_and_short_ii_blend(page):
    probs, truth = page
    lengths = {lead: len(v) for lead, v in truth.items()}
    plain = extract_leads(probs, lengths, FS, 1.0)
    full = extract_leads(probs, lengths, FS, 1.0, ExtractConfig(einthoven=1.0, einthoven_robust=0.0))
    n0 = lengths["I"]
    np.testing.assert_allclose(full["I"] - full["II"][:n0] + full["III"], 0, atol=1e-9)
    np.testing.assert_allclose(full["aVR"] + full["aVL"] + full["aVF"], 0, atol=1e-9)
    assert np.abs(plain["I"] - plain["II"][:n0] + plain["III"]).max() > 0.1    # the test leads are not consistent
    blended = extract_leads(probs, lengths, FS, 1.0, ExtractConfig(blend_short_ii=1.0))
    a, b = G.slot_sample_window(G.short_slot("II"), FS)
    np.testing.assert_allclose(blended["II"][b:], plain["II"][b:])              # only the short window changes
    assert np.abs(blended["II"][a:b] - plain["II"][a:b]).max() > 0


def test_rows_are_searched_only_near_their_baseline(page):
    """Stray maxima far from a row (another row's trace, header text) are out of reach of that row's search."""
    probs, truth = page
    stray = probs.copy()
    y = int(G.mv_to_y(-5.0, 0))                                  # 5 mV below row 0's baseline
    stray[0, y - 2:y + 3, 300:900] = 1.0
    lengths = {lead: len(v) for lead, v in truth.items()}
    whole = extract_leads(stray, lengths, FS, 1.0, ExtractConfig(band_mv=0))
    banded = extract_leads(stray, lengths, FS, 1.0, ExtractConfig(band_mv=3.0))
    assert _snr_db(truth, banded) > 30 > _snr_db(truth, whole) + 10


def test_confidence_names_the_lead_whose_trace_is_missing(page):
    from pagekit.extract import extract_with_confidence

    probs, truth = page
    probs = probs.copy()
    v2 = next(s for s in G.lead_slots() if s.lead == "V2")
    x0, x1 = G.time_to_x(v2.t0), G.time_to_x(v2.t1)
    probs[v2.row][:, int(x0 + 0.4 * (x1 - x0)):int(x1)] = 0.0                       # 60 % of V2 not printed
    lengths = {lead: len(v) for lead, v in truth.items()}
    leads, conf = extract_with_confidence(probs, lengths, FS, 1.0)
    assert set(conf) == set(G.LEADS) and leads.keys() == conf.keys()
    assert conf["V2"]["gap_share"] == pytest.approx(0.6, abs=0.01) and conf["V2"]["trace_prob"] < 0.45
    others = [c for lead, c in conf.items() if lead != "V2"]
    assert all(c["gap_share"] == 0 and c["trace_prob"] > 0.8 for c in others)


def test_a_row_whose_channel_lights_up_on_its_neighbours_wave_keeps_its_own_when_rows_are_exclusive(page):
    """Where the upper row's deep S wave comes down towards a row whose own S wave goes down steep and faint, stage
    2 sometimes lights that row's channel on the neighbour's wave too, brighter than on its own (an ECG-Image-Kit
    page did this to lead III): a second pass off the pixels the neighbour's row has traced keeps it on its own."""
    probs, truth = page
    h = probs.shape[1]
    iii = next(s for s in G.lead_slots() if s.lead == "III")
    cols = np.arange(int(G.time_to_x(iii.t0)) + 200, int(G.time_to_x(iii.t0)) + 230)
    yy = np.arange(h, dtype=np.float64)[:, None]

    def s_wave(row: int, mv: float) -> np.ndarray:                      # a 30-column V, mv deep, below the trace
        y = np.argmax(probs[row][:, cols], 0) + mv * G.PX_PER_MV * (1 - np.abs(np.linspace(-1, 1, len(cols))))
        return np.exp(-(yy - y[None]) ** 2 / (2 * 1.2 ** 2))

    wave_ii, wave_iii = s_wave(iii.row - 1, 3.0), s_wave(iii.row, 2.0)
    clean = probs.copy()
    clean[iii.row - 1][:, cols] = wave_ii
    clean[iii.row][:, cols] = 0.12 * wave_iii                           # steep, so faint
    confused = clean.copy()
    confused[iii.row][:, cols] = np.maximum(0.12 * wave_iii, 0.9 * wave_ii)
    lengths = {lead: len(v) for lead, v in truth.items()}
    one_pass = ExtractConfig(method="viterbi", band_mv=4.0, exclusive=0.0)
    reference = extract_leads(clean, lengths, FS, 1.0, one_pass)
    plain = extract_leads(confused, lengths, FS, 1.0, one_pass)
    exclusive = extract_leads(confused, lengths, FS, 1.0, ExtractConfig(method="viterbi", band_mv=4.0))  # default 0.5
    assert np.abs(plain["III"] - reference["III"]).max() > 1.0                  # lead III took lead II's wave
    assert max(np.abs(exclusive[lead] - reference[lead]).max() for lead in G.LEADS) < 0.05


def test_parabola_and_soft_refinement_by_hand_at_the_page_edges_too():
    from pagekit.extract import _parabola, _soft

    # columns: a peak between rows 1 and 2; a peak on the first row; on the last row; argmax handed a non-maximum
    prob = np.array([[0.0, 1.0, 0.0, 0.0],
                     [1.0, 0.2, 0.0, 1.0],
                     [0.9, 0.0, 0.3, 0.9],
                     [0.0, 0.0, 1.0, 0.0]])
    y = np.array([1, 0, 3, 2])
    # column 0: 1 + 0.5 (a - c) / (a - 2b + c) with a, b, c = 0, 1, 0.9; the edges stay put; column 3's offset
    # (a = 1, b = 0.9, c = 0: -0.625) is held to half a pixel
    np.testing.assert_allclose(_parabola(prob, y), [1 + 0.5 * -0.9 / -1.1, 0.0, 3.0, 1.5])
    # radius 1: rows y-1..y+1 clipped to the page, weighted by their probability (row 0 counts twice at the top)
    np.testing.assert_allclose(_soft(prob, np.array([1, 0, 3, 1]), 1),
                               [(0 * 0 + 1 * 1 + 2 * .9) / 1.9, (0 + 0 + 1 * .2) / 2.2, (2 * .3 + 3 + 3) / 2.3,
                                (0 + 1 + 2 * .9) / 1.9])
    assert _soft(np.zeros((4, 1)), np.array([2]), 1)[0] == 0.0                # no weight: no division by zero


def test_exclusive_scores_scale_only_the_pixels_near_another_row_s_path():
    from pagekit.extract import exclusive_scores

    probs = np.full((3, 12, 3), 0.5)
    paths = [np.array([2.0, 2.0, 2.0]), np.array([9.0, 9.0, 3.0]), np.array([11.0, 11.0, 11.0])]
    out = exclusive_scores(probs, paths, w=0.8, radius=1)               # rows 0 and 1 meet at x = 2; row 2 alone
    assert out[2] is None                                              # its path met no other row's pixels
    expect0, expect1 = np.full((12, 3), 0.5), np.full((12, 3), 0.5)
    expect0[8:11, :2] = expect0[2:5, 2] = 0.1                          # where row 1's path runs, +-1 px
    expect1[1:4, :] = 0.1                                              # where row 0's path runs
    expect0[10:, :] = expect1[10:, :] = 0.1                            # and row 2's (11 +-1, clipped to the page)
    np.testing.assert_allclose(out[0], expect0)
    np.testing.assert_allclose(out[1], expect1)
    edge = exclusive_scores(np.full((2, 4, 1), 0.5), [np.array([0.0]), np.array([-3.0])], w=0.5, radius=1)
    np.testing.assert_allclose(edge[0][:, 0], [0.25, 0.25, 0.5, 0.5])   # a path off the page: on its edge, +-1 px


def _redraw(probs, slot, mv_of_t, k=1.0, sigma=1.2):
    """``probs`` with the trace of one short slot drawn anew at ``mv_of_t`` (mV as a function of time)."""
    _, h, w = probs.shape
    t = G.x_to_time(np.arange(w, dtype=np.float64), k)
    t0, t1 = (0.0, G.DURATION_S) if slot.is_rhythm else (slot.t0, slot.t1)
    cols = (t >= t0) & (t < t1)
    yy = np.arange(h, dtype=np.float64)[:, None]
    out = probs.copy()
    out[slot.row][:, cols] = np.exp(-(yy - G.mv_to_y(mv_of_t(t[cols]), slot.row, k)[None]) ** 2 / (2 * sigma ** 2))
    return out


def test_the_short_ii_is_blended_into_the_strips_first_window_by_its_weight():
    probs, truth = _render()
    short = G.short_slot("II")
    probs = _redraw(probs, short, lambda t: _signal(G.LEADS.index("II"))(t) + 0.5)   # the short II reads 0.5 mV up
    lengths = {lead: len(v) for lead, v in truth.items()}
    a, b = G.slot_sample_window(short, FS)
    for weight in (0.0, 0.5):
        ii = extract_leads(probs, lengths, FS, 1.0, ExtractConfig(blend_short_ii=weight))["II"]
        assert np.median(ii[a:b] - truth["II"][a:b]) == pytest.approx(0.5 * weight, abs=0.02)
        assert np.median(np.abs(ii[b:] - truth["II"][b:])) < 0.02                   # the rest: the strip alone


def test_the_robust_limb_fit_replaces_a_read_gone_astray_the_plain_fit_spreads_it():
    """Limb leads that obey Einthoven and Goldberger; aVL's read jumps 1.5 mV up for its last 0.6 s (onto another
    trace): aVR, aVF and the strip's II say what it is."""
    from pagekit.limb_leads import LIMB

    probs, truth = _render()
    one, two = _signal(0), _signal(1)
    limb = {lead: (lambda t, a=a, b=b: a * one(t) + b * two(t)) for lead, (a, b) in LIMB.items()}
    for slot in G.lead_slots():
        if slot.lead in limb:
            astray = slot.lead == "aVL"
            mv = (lambda t: limb["aVL"](t) + np.where(t > 4.4, 1.5, 0.0)) if astray else limb[slot.lead]
            probs = _redraw(probs, slot, mv)
    for lead in limb:
        a, b = (0, G.sig_len(FS)) if lead == G.RHYTHM_LEAD else G.slot_sample_window(G.short_slot(lead), FS)
        truth[lead] = limb[lead](np.arange(a, b) / FS)
    lengths = {lead: len(v) for lead, v in truth.items()}
    n = len(truth["aVL"])

    def step(cfg):
        """How far the read jumps for its last 0.6 s against the truth (a constant offset is no error to the
        metric)."""
        d = extract_leads(probs, lengths, FS, 1.0, cfg)["aVL"] - truth["aVL"]
        return np.median(d[int(0.8 * n):]) - np.median(d[:int(0.7 * n)])

    plain, robust = step(ExtractConfig(einthoven=1.0, einthoven_robust=0.0)), step(ExtractConfig(einthoven=1.0))
    assert abs(robust) < 0.25 and 0.5 < plain < 1.4          # off: the jump is spread over the leads, not removed
    assert step(ExtractConfig(einthoven=0.0)) == pytest.approx(1.5, abs=0.05)     # no fit: the read as it went
    # the strip's II astray over 1.9-2.4 s: in the first window only the short II can tell it (I and III give II
    # as one read would), so the robust fit reads the short II too
    strip = next(s for s in G.lead_slots() if s.is_rhythm)
    probs = _redraw(probs, strip, lambda t: limb["II"](t) + np.where((t > 1.9) & (t < 2.4), 1.5, 0.0))
    for cfg, jump in ((ExtractConfig(einthoven=1.0), (0.0, 0.25)), (ExtractConfig(einthoven=0.0), (1.45, 1.55))):
        d = extract_leads(probs, lengths, FS, 1.0, cfg)["II"] - truth["II"]
        assert jump[0] <= abs(np.median(d[int(1.95 * FS):int(2.35 * FS)]) - np.median(d[:int(1.8 * FS)])) <= jump[1]


def test_the_smoothest_path_holds_at_a_rows_first_and_last_column():
    from pagekit.extract import viterbi_rows

    prob = np.zeros((80, 50))
    prob[20, :] = 0.9                                        # the trace, along the whole row
    prob[60, [0, -1]] = 0.95                                 # something brighter at both ends only
    path = viterbi_rows(prob, ExtractConfig(method="viterbi"))
    assert path.tolist() == [20] * 50
    prob[20, [0, -1]], prob[23, [0, -1]] = 0.05, 0.9         # the trace's own ends 3 px lower, faint at 20
    assert viterbi_rows(prob, ExtractConfig(method="viterbi"))[[0, -1]].tolist() == [23, 23]


def test_a_row_searched_at_the_page_edge_keeps_its_pixels():
    from pagekit.extract import _row_in_band
    from data.layout import Layout

    lay = Layout("edge", G.LAYOUT, ("II",), (30.0, 700.0, 1000.0, 1690.0))      # rows near the top and the bottom
    h, w = G.page_size(1.0)[1], 400
    for row, y in ((0, 1), (3, h - 2)):                     # a peak one pixel from the edge, leaning towards it
        prob = np.zeros((h, w))
        above, below = (0.6, 0.3) if row == 0 else (0.3, 0.6)
        prob[y - 1:y + 2, :] = [[above], [1.0], [below]]
        got, _ = _row_in_band(prob, row, 1.0, 1.0, ExtractConfig(), layout=lay)
        parabola = y + 0.5 * (above - below) / (above - 2.0 + below)
        assert abs(parabola - y) > 0.1 and np.allclose(got, parabola, atol=1e-6)


def test_near_share_counts_the_columns_where_another_rows_path_runs_within_1_5_mm():
    """Row 0's path dips 3.5 mV for 100 columns of V1's slot, to 8 px above row 1's baseline: exactly those columns
    of V1 and of V2 below it are near another row's path; no other lead has one (paths given by hand)."""
    from pagekit.extract import NEAR_MM, extract_with_confidence

    w, h = G.page_size(1.0)
    probs = np.full((G.N_ROWS, h, w), 0.9, np.float32)
    rows_mv = [np.zeros(w) for _ in range(G.N_ROWS)]
    v1 = next(s for s in G.lead_slots() if s.lead == "V1")
    x0 = int(G.time_to_x(v1.t0)) + 50
    gap_mv = (G.BASELINES[1] - G.BASELINES[0]) / G.PX_PER_MV
    rows_mv[0][x0:x0 + 100] = -(gap_mv - 8 / G.PX_PER_MV)                 # down to 8 px above row 1's baseline
    assert 8 < NEAR_MM * G.PX_PER_MM < 283.5 / 2
    lengths = {lead: 100 for lead in G.LEADS}
    paths = (rows_mv, [np.full(w, 0.9)] * G.N_ROWS)
    _, conf = extract_with_confidence(probs, lengths, FS, 1.0, ExtractConfig(), rows=paths)
    n_cols = len(range(w)[slot_columns(v1, w, 1.0)])
    assert conf["V1"]["near_share"] == conf["V2"]["near_share"] == pytest.approx(100 / n_cols)
    assert all(c["near_share"] == 0 for lead, c in conf.items() if lead not in ("V1", "V2"))


def test_fit_db_is_lowest_for_the_limb_lead_the_fit_had_to_move():
    """aVL read 1.5 mV off for its last 0.6 s: the limb fit moves it most, so its fit_db is the lowest of the six
    and far below its value when read right; leads outside the fit have none."""
    from pagekit.extract import extract_with_confidence
    from pagekit.limb_leads import LIMB

    base, truth = _render()
    one, two = _signal(0), _signal(1)
    limb = {lead: (lambda t, a=a, b=b: a * one(t) + b * two(t)) for lead, (a, b) in LIMB.items()}
    lengths = {lead: len(v) for lead, v in truth.items()}
    fit_db = {}
    for astray in (False, True):
        probs = base
        for slot in G.lead_slots():
            if slot.lead in limb:
                off = astray and slot.lead == "aVL"
                probs = _redraw(probs, slot, (lambda t, f=limb[slot.lead], off=off: f(t) + np.where(off & (t > 4.4),
                                                                                                     1.5, 0.0)))
        _, conf = extract_with_confidence(probs, lengths, FS, 1.0, ExtractConfig(einthoven=1.0))
        assert all("fit_db" not in conf[lead] for lead in G.LEADS if lead not in LIMB)
        fit_db[astray] = {lead: conf[lead]["fit_db"] for lead in LIMB}
    assert min(fit_db[True], key=fit_db[True].get) == "aVL"
    assert fit_db[True]["aVL"] < fit_db[False]["aVL"] - 10 and fit_db[True]["aVL"] < 10
