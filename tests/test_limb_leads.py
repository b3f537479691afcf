"""The limb-lead fit: the plain projection, and the robust fit that replaces one read gone astray."""
import numpy as np
import pytest

from data import geometry as G
from pagekit import limb_leads

FS = 500
N = G.sig_len(FS)
W1 = G.slot_sample_window(G.short_slot("aVR"), FS)


def _true_leads():
    t = np.arange(N) / FS
    i = 0.5 * np.sin(2 * np.pi * 1.1 * t) + 0.3 * np.sin(2 * np.pi * 7 * t)
    ii = 0.8 * np.sin(2 * np.pi * 1.3 * t + 1) - 0.2 * np.sin(2 * np.pi * 11 * t)
    q, w1 = slice(0, N // 4), slice(*W1)
    return {"I": i[q], "II": ii, "III": (ii - i)[q],
            "aVR": (-(i + ii) / 2)[w1], "aVL": (i - ii / 2)[w1], "aVF": (ii - i / 2)[w1]}


def _read(true, rng, offsets=True):
    """Each lead read with 0.02 mV noise and, like a row placed a little off, a constant offset."""
    return {lead: v + 0.02 * rng.standard_normal(len(v)) + (0.1 * rng.standard_normal() if offsets else 0.0)
            for lead, v in true.items()}


def _err(true, leads):
    """Per lead, the RMS error once the mean offset is removed (the metric ignores it)."""
    return {lead: float(np.std(leads[lead] - v)) for lead, v in true.items()}


def test_the_plain_fit_is_the_projection_onto_einthoven_and_goldberger():
    true, rng = _true_leads(), np.random.default_rng(0)
    leads = _read(true, rng)
    before = {lead: v.copy() for lead, v in leads.items()}
    limb_leads.project(leads, FS, 1.0)
    r = before["I"] - before["II"][:N // 4] + before["III"]
    np.testing.assert_allclose(leads["I"], before["I"] - r / 3, atol=1e-9)
    np.testing.assert_allclose(leads["II"][:N // 4], before["II"][:N // 4] + r / 3, atol=1e-9)
    np.testing.assert_allclose(leads["aVR"] + leads["aVL"] + leads["aVF"], 0, atol=1e-9)
    np.testing.assert_allclose(leads["II"][N // 4:], before["II"][N // 4:])     # outside window 0: as read
    half = _read(true, np.random.default_rng(0))
    limb_leads.project(half, FS, 0.5)
    np.testing.assert_allclose(half["I"], before["I"] - r / 6, atol=1e-9)


@pytest.mark.parametrize("wrong", ["aVR", "aVL", "aVF", "II"])
def test_the_robust_fit_replaces_a_read_that_left_its_trace_instead_of_spreading_it(wrong):
    true, rng = _true_leads(), np.random.default_rng(1)
    leads, short_ii = _read(true, rng), true["II"][:N // 4] + 0.02 * rng.standard_normal(N // 4)
    start = W1[0] if wrong == "II" else 0
    leads[wrong][start + 300:start + 350] += 0.6                  # 50 samples on a neighbour's wave
    plain = {lead: v.copy() for lead, v in leads.items()}
    limb_leads.project(plain, FS, 1.0)
    limb_leads.project(leads, FS, 1.0, robust_scale=0.1, short_ii=short_ii)
    plain_err, robust_err = _err(true, plain), _err(true, leads)
    assert max(robust_err.values()) < 0.03                         # every lead at the noise of one read
    spread = [lead for lead in ("aVR", "aVL", "aVF") if lead != wrong]
    assert min(plain_err[lead] for lead in spread) > 0.04 or wrong == "II"
    assert plain_err[wrong] > 0.05


def test_the_robust_fit_keeps_leads_that_agree_and_cannot_blame_i_or_iii_alone():
    true, rng = _true_leads(), np.random.default_rng(2)
    clean = _read(true, rng)
    short_ii = true["II"][:N // 4] + 0.02 * rng.standard_normal(N // 4)
    robust = {lead: v.copy() for lead, v in clean.items()}
    limb_leads.project(robust, FS, 1.0, robust_scale=0.1, short_ii=short_ii)
    assert max(_err(true, robust).values()) < 0.025                # offsets alone replace nothing
    design = np.array(list(limb_leads.WINDOW0.values()))
    names = list(limb_leads.WINDOW0)
    assert [names[k] for k in limb_leads.identifiable(design)] == ["II", "II_short"]
    bad = {lead: v.copy() for lead, v in clean.items()}
    bad["III"][300:350] += 0.6
    limb_leads.project(bad, FS, 1.0, robust_scale=0.1, short_ii=short_ii)
    err = _err(true, bad)
    assert err["II"] < 0.03 and max(err["I"], err["III"]) > 0.03   # the wave stays split between I and III


def test_a_lead_asked_for_with_no_rows_leaves_the_others_fitted():
    """test.csv may ask for 0 rows of a lead: the window is fitted from the reads it has (three reads of two
    signals still tell a wrong one apart from noise), and the empty lead stays empty."""
    true, rng = _true_leads(), np.random.default_rng(3)
    leads = _read(true, rng, offsets=False)
    leads["aVL"] = np.zeros(0)
    before = {lead: v.copy() for lead, v in leads.items()}
    limb_leads.project(leads, FS, 1.0, robust_scale=0.2, short_ii=true["II"][:N // 4])
    assert len(leads["aVL"]) == 0
    assert not np.allclose(leads["aVR"], before["aVR"])                # window 1 still fitted, without aVL
    assert max(_err({k: v for k, v in true.items() if k != "aVL"}, leads).values()) < 0.03
