"""The loss anatomy (pagekit.anatomy): zones, tip gain, time shift and the gain of a zone read perfectly."""
import numpy as np

from pagekit.anatomy import ZONES, lead_anatomy, page_anatomy, sample_zones, summarize
from pagekit.metric import PERFECT_SCORE, snr_ratio, to_db

FS = 500


def _ecg(fs=FS, seconds=2.5, shift=0.0):
    """Smooth beats: a 1.5 mV R wave every 0.8 s (Gaussian, 12 ms wide) over a slow 0.1 mV wave; ``shift`` in
    samples moves the whole record earlier."""
    t = (np.arange(int(seconds * fs)) + shift) / fs
    beats = sum(1.5 * np.exp(-0.5 * ((t - c) / 0.012) ** 2) for c in (0.4, 1.2, 2.0))
    return beats + 0.1 * np.sin(2 * np.pi * 0.7 * t)


def test_zones_put_the_peaks_in_tip_the_window_ends_in_edge_and_the_steepest_in_flank():
    v = _ecg()
    zone = sample_zones(v, FS)
    for c in (0.4, 1.2, 2.0):
        assert zone[int(c * FS)] == ZONES.index("tip")
    e = int(0.12 * FS)
    assert (zone[:e] == ZONES.index("edge")).all() and (zone[-e:] == ZONES.index("edge")).all()
    flank = np.flatnonzero(zone == ZONES.index("flank"))
    on_r = [min(abs(f / FS - c) for c in (0.4, 1.2, 2.0)) < 0.04 for f in flank]
    assert flank.size > 0.05 * v.size and np.mean(on_r) > 0.85
    assert (zone == ZONES.index("rest")).mean() > 0.6


def test_a_blunt_reading_has_its_tip_gain_and_a_late_one_its_shift():
    v = _ecg()
    blunt = np.median(v) + 0.9 * (v - np.median(v))
    a = lead_anatomy(v, blunt, FS)
    assert np.allclose(a["tip_gain"], 0.9, atol=0.01) and len(a["tip_gain"]) == 3
    assert abs(a["shift"]) < 0.05
    early = _ecg(shift=1.5)                       # the reading shows each beat 1.5 samples early
    assert abs(lead_anatomy(v, early, FS)["shift"] - 1.5) < 0.2
    assert abs(lead_anatomy(v, _ecg(shift=-2.0), FS)["shift"] + 2.0) < 0.2


def test_noise_under_the_lead_name_is_edge_and_its_gain_is_what_reading_it_perfectly_adds():
    """The first 40 ms cut by 0.5 mV: almost all the noise is edge (the metric's offset removal spreads a little
    over the rest), and the edge's gain is the dB of the page without that noise."""
    v = _ecg()
    pred = v.copy()
    pred[:20] -= 0.5
    page = page_anatomy({"I": v, "II": v}, {"I": pred, "II": v}, FS)
    s = summarize([page])
    assert s["edge_share"] > 0.95 and s["tip_share"] < 0.01
    assert np.isclose(s["db"], float(to_db(page["signal"] / page["noise"].sum())))
    edge = page["noise"][ZONES.index("edge")]
    without = snr_ratio(page["signal"], page["noise"].sum() - edge)          # capped at 384, as the metric does
    assert np.isclose(s["db"] + s["edge_gain_db"], float(to_db(without)))
    assert s["edge_gain_db"] > 10 > s["rest_gain_db"] and np.isclose(s["tip_gain"], 1.0, atol=0.01)
    clean = summarize([page_anatomy({"I": v}, {"I": v}, FS)])
    assert clean["db"] == float(to_db(PERFECT_SCORE)) and clean["edge_gain_db"] == 0.0
