"""expected_snr_db: the figures it reads per lead, its linear fit, its file, and what a reading says with it."""
from types import SimpleNamespace

import numpy as np
import pytest

from data import geometry as G
from pagekit.confidence import CLIP_DB, FEATURES, Calibration, calibration_for, lead_features

FS = 500


def _rows(n: int, rng) -> list[dict]:
    return [dict(zip(FEATURES, rng.uniform(0, 1, len(FEATURES)))) for _ in range(n)]


def test_the_fit_recovers_a_linear_rule_and_clips_what_it_predicts():
    rng = np.random.default_rng(0)
    rows = _rows(200, rng)
    w = rng.uniform(-5, 5, len(FEATURES))
    snr = np.array([sum(wi * r[f] for wi, f in zip(w, FEATURES)) + 12.0 for r in rows])
    cal = Calibration.fit(rows, snr, check_below_db=10.0)
    np.testing.assert_allclose([cal.coef[f] for f in FEATURES], w, atol=1e-8)
    assert cal.intercept == pytest.approx(12.0)
    np.testing.assert_allclose(cal.predict(rows[:5]), snr[:5])
    far = {f: 0.0 for f in FEATURES} | {"power_db": 1e3}
    assert cal.predict([far])[0] in CLIP_DB                           # never beyond what it was fitted to mean


def test_lead_features_read_the_leads_own_power_its_fit_and_the_pages_flags():
    t = np.arange(FS * 10) / FS
    leads = {"II": np.sin(2 * np.pi * t), "V1": np.r_[0.1 * np.sin(2 * np.pi * t[:1000]), [np.nan] * 250]}
    conf = {"II": {"trace_prob": 0.9, "gap_share": 0.0, "near_share": 0.1, "fit_db": 55.0},
            "V1": {"trace_prob": 0.5, "gap_share": 0.2}}
    feats = lead_features(leads, conf, {"no_page": True, "grid_page": False}, FS, strips=("II",))
    ii, v1 = feats["II"], feats["V1"]
    assert ii["power_db"] == pytest.approx(10 * np.log10(0.5), abs=0.01)       # a 1 mV sine
    assert v1["power_db"] == pytest.approx(10 * np.log10(0.005), abs=0.01)     # its NaN tail left out
    assert ii["slope_db"] == pytest.approx(10 * np.log10(2 * np.pi ** 2), abs=0.01)   # (2 pi mV/s)^2 / 2
    assert (ii["fit_db"], ii["fitted"], v1["fitted"]) == (40.0, 1.0, 0.0)              # capped
    assert v1["fit_db"] == v1["page_fit_db"] == 40.0                                 # none: the page's
    assert (ii["strip"], v1["strip"], v1["near_share"]) == (1.0, 0.0, 0.0)
    assert ii["page_trace_prob"] == v1["page_trace_prob"] == pytest.approx(0.7)
    assert (ii["no_page"], ii["grid_page"], ii["whole_image"]) == (1.0, 0.0, 0.0)


def test_a_calibration_is_used_only_for_the_stage_2_it_was_fitted_for(tmp_path):
    from data.files import sha256

    ours, other = tmp_path / "stage2.pt", tmp_path / "other.pt"
    ours.write_bytes(b"our stage 2")
    other.write_bytes(b"another stage 2")
    path = tmp_path / "confidence.json"
    cal = Calibration({f: 0.5 for f in FEATURES}, 3.0, 9.5, stage2=sha256(ours), fitted_on="test")
    cal.save(path)
    assert calibration_for([str(ours)], 1, path) == cal                     # the file holds it all
    assert calibration_for([str(other)], 1, path) is None
    assert calibration_for([str(ours), str(other)], 2, path) is None         # an ensemble reads otherwise
    assert calibration_for([str(ours)], 1, tmp_path / "none.json") is None
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"confidence.json.*eval_confidence.py fit="):
        calibration_for([str(ours)], 1, path)


def test_a_reading_gets_each_leads_expectation_and_a_doubt_for_the_leads_below_the_threshold():
    from inference.pipeline import Digitizer, Reading

    rule = Calibration({f: 0.0 for f in FEATURES} | {"trace_prob": 20.0}, 0.0, check_below_db=10.0)
    t = np.arange(FS * 10) / FS
    leads = {lead: np.sin(2 * np.pi * t) for lead in G.LEADS}
    conf = {lead: {"trace_prob": 0.9, "gap_share": 0.0} for lead in G.LEADS} | {"aVL": {"trace_prob": 0.3,
                                                                                          "gap_share": 0.0}}
    reading = Digitizer.expect(SimpleNamespace(calibration=rule), Reading(leads, None, conf, {}), FS)
    assert reading.confidence["aVL"]["expected_snr_db"] == pytest.approx(6.0)
    assert reading.confidence["I"]["expected_snr_db"] == pytest.approx(18.0)
    assert reading.status == "check" and reading.doubts() == ["expected to read below 10 dB: aVL (6.0)"]
    clean = Reading(leads, None, {lead: {"trace_prob": 0.9, "gap_share": 0.0} for lead in G.LEADS}, {})
    assert Digitizer.expect(SimpleNamespace(calibration=rule), clean, FS).status == "ok"
    untouched = Reading(leads, None, {lead: dict(c) for lead, c in conf.items()}, {})
    assert Digitizer.expect(SimpleNamespace(calibration=None), untouched, FS).confidence == conf    # no calibration


def test_a_reading_mostly_filled_across_gaps_is_not_written():
    from inference.pipeline import Digitizer, Reading

    t = np.arange(FS * 10) / FS
    leads = {lead: np.sin(2 * np.pi * t) for lead in G.LEADS}

    def reading(n_gappy: int) -> Reading:
        conf = {lead: {"trace_prob": 0.9, "gap_share": 0.8 if i < n_gappy else 0.1} for i, lead in enumerate(G.LEADS)}
        return Reading(dict(leads), None, conf, {})

    judge = SimpleNamespace(calibration=None, expect=lambda r, fs: r, layout="auto")
    half = Digitizer.finish(judge, reading(6), FS)
    assert half.status == "check" and half.leads.keys() == leads.keys()         # 6 of 12: read, with a doubt
    most = Digitizer.finish(judge, reading(7), FS)
    assert most.status == "failed" and not most.leads
    assert most.failure.startswith("little trace found: 7 of 12 leads of 3x4+II")


def test_a_reading_of_faint_rows_is_not_written():
    """Rows read where the page prints no trace (real page ecg00039 read between its printed rows: median trace
    probability 0.37) are failed; a median at the threshold is read."""
    from inference.pipeline import Digitizer, Reading

    leads = {lead: np.zeros(FS) for lead in G.LEADS}

    def reading(probs) -> Reading:
        conf = {lead: {"trace_prob": p, "gap_share": 0.0} for lead, p in zip(G.LEADS, probs)}
        return Reading(dict(leads), None, conf, {})

    judge = SimpleNamespace(calibration=None, expect=lambda r, fs: r, layout="auto")
    assert Digitizer.finish(SimpleNamespace(calibration=None, expect=lambda r, fs: r, layout="3x4+II"),
                            reading([0.3] * 12), FS).status == "ok"          # the competition's page: always written
    faint = Digitizer.finish(judge, reading([0.9] * 5 + [0.3] * 7), FS)
    assert faint.status == "failed" and not faint.leads
    assert faint.failure == ("little trace found: the leads of 3x4+II were read at a median trace probability of "
                             "0.30 (below 0.5) (a page too faint for stage 2, or rows where no trace is)")
    kept = Digitizer.finish(judge, reading([0.9] * 6 + [0.1] * 6), FS)          # median 0.5: read
    assert kept.status == "ok" and kept.leads.keys() == leads.keys()
