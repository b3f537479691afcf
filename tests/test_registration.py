"""Residual registration from the printed grid (pagekit.registration): the grid's offsets measured on a page moved by
a known amount, and every lead read back where it belongs."""
import cv2
import numpy as np
import pytest

from data import geometry as G
from data.synth import signals
from data.synth.render import PageStyle, render_page
from pagekit import registration
from pagekit.extract import ExtractConfig, extract_with_confidence, slot_values

K = (1.0, 0.5)
FS = 500


@pytest.fixture(scope="module")
def page():
    """A clean competition page at the pipeline's scale (2200 x 850): red grid, near-black traces.  Row i of it is
    canonical y = i / ky, as every rectified page of the pipeline; INTER_AREA averages rows 2i and 2i + 1 into
    row i (centre 2i + 0.5), hence the quarter-pixel move back."""
    frame = signals.to_competition_frame(signals.simulate(FS, np.random.default_rng(3)), FS)
    half = cv2.resize(render_page(frame, FS, PageStyle()), G.page_size(K), interpolation=cv2.INTER_AREA)
    return cv2.warpAffine(half, np.float32([[1, 0, 0], [0, 1, 0.25]]), G.page_size(K), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def _moved(page, dx, dy):
    """The page with its content moved right by dx(x) and down by dy (px): what a slightly wrong warp shows."""
    h, w = page.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(page, xs - dx(xs).astype(np.float32), ys - np.float32(dy), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=(255, 255, 255))


def test_a_page_in_place_has_its_grid_in_place(page):
    shift = registration.measure(page, K)
    assert np.abs(shift.dx).max() < 0.15 and np.abs(shift.dy).max() < 0.15


def test_the_offsets_of_a_moved_page_are_measured_where_it_moved(page):
    """Content moved right by 0.6-2.2 px, wandering along x as a warp's error does, and 0.8 px down."""
    dx = lambda x: 1.4 + 0.8 * np.sin(2 * np.pi * x / 1500.0)         # noqa: E731
    shift = registration.measure(_moved(page, dx, 0.8), K)
    inner = (shift.xc > 200) & (shift.xc < 2000)
    err = shift.dx[:, inner] - dx(shift.xc[inner])[None]
    assert np.median(np.abs(err)) < 0.15 and np.abs(err).max() < 0.5
    assert np.abs(np.median(shift.dy) - 0.8) < 0.1
    gx, gy = shift.at(np.array([1100.0]), np.array([400.0]))
    assert abs(gx[0] - dx(1100.0)) < 0.3 and abs(gy[0] - 0.8) < 0.15


def test_a_page_with_no_grid_has_no_offsets():
    assert registration.measure(np.full((850, 2200, 3), 255, np.uint8), K) is None


def test_a_lead_shown_late_and_low_is_read_back_at_its_own_time_and_level():
    """A row whose page shows each time 3 px right and 0.1 mV low: read with its offsets, the lead is the signal
    again; read without, it is the signal 7.6 ms late."""
    slot = G.short_slot("V2")
    w, _ = G.page_size(K)
    x = np.arange(w, dtype=np.float64)
    f = lambda t: np.sin(2 * np.pi * 3.0 * t)                          # noqa: E731
    shown = f(G.ink_time(x - 3.0, K[0])) - 0.1                         # the value at column x is that of x - 3 px
    a, b = G.slot_sample_window(slot, FS)
    truth = f(np.arange(a, b) / FS)
    offset = (np.full(w, 3.0), np.full(w, 0.1))
    back = slot_values(shown, slot, FS, b - a, K[0], offset=offset)
    plain = slot_values(shown, slot, FS, b - a, K[0])
    inner = slice(5, -12)                                   # 3 px = 7.6 samples past the last column: held flat
    assert np.abs(back - truth)[inner].max() < 2e-3
    assert np.abs(plain - truth)[inner].max() > 0.1


def test_registration_reads_the_pages_leads_nearer_their_truth():
    """Trace probabilities of a page shown 2 px right of where it belongs: with the grid's offsets, every lead
    nearer its truth than without."""
    w, h = G.page_size(K)
    probs = np.zeros((G.N_ROWS, h, w), np.float32)
    yy = np.arange(h, dtype=np.float64)[:, None]
    x = np.arange(w, dtype=np.float64)
    f = lambda t, i: 0.5 * np.sin(2 * np.pi * (1.3 + 0.2 * i) * t + i)  # noqa: E731
    for slot in G.lead_slots():
        t = G.ink_time(x - 2.0, K[0])
        cols = (t >= slot.t0) & (t < slot.t1)
        y = G.mv_to_y(f(t[cols], G.LEADS.index(slot.lead)), slot.row, K[1])
        probs[slot.row][:, cols] = np.exp(-(yy - y[None]) ** 2 / 2.0)
    lengths = {lead: b - a for lead in G.LEADS for a, b in [G.PAGE_LAYOUT.lead_samples(lead, G.sig_len(FS))]}
    shift = registration.GridShift(np.array([0.0, w]), np.array([0.0, h]), np.full((2, 2), 2.0), np.zeros((2, 2)))
    cfg = ExtractConfig(einthoven=0.0)
    plain, _ = extract_with_confidence(probs, lengths, FS, K, cfg)
    moved, _ = extract_with_confidence(probs, lengths, FS, K, cfg, shift=shift)
    for lead in G.LEADS:
        a, b = G.PAGE_LAYOUT.lead_samples(lead, G.sig_len(FS))
        truth = f(np.arange(a, b) / FS, G.LEADS.index(lead))
        inner = slice(10, -10)
        assert np.abs(moved[lead] - truth)[inner].mean() < 0.5 * np.abs(plain[lead] - truth)[inner].mean(), lead


def test_a_page_not_at_the_canonical_scale_is_not_registered(page):
    """The page 3 % too wide (a page placed without its outline): its grid's phase turns across it, no offsets."""
    w, h = G.page_size(K)
    wide = cv2.resize(page, (int(w * 1.03), h), interpolation=cv2.INTER_LINEAR)[:, :w]
    assert registration.measure(wide, K) is None
