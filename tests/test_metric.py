import numpy as np
import pandas as pd
import pytest

from pagekit.metric import MetricError, align_signals, score

SHORT = ["I", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
VALUES = [0.1, 0.3, 0.4, 0.6, 0.6, 0.4, 0.2, 0.3, 0.4, 0.5, 0.2, 0.7, 0.2, 0.3, 0.4, 0.8, 0.6, 0.7, 0.2, 0.3, -0.1,
          0.5, 0.6, 0.7, 0.2, 0.9, 0.4, 0.5, 0.6, 0.7, 0.1, 0.3, 0.4, 0.6, 0.6, 0.4, 0.2, 0.3, 0.4, 0.5, 0.2, 0.7,
          0.2, 0.3, 0.4]


@pytest.fixture
def solution():
    ids = [f"343_{r}_{lead}" for lead in SHORT for r in range(3)] + [f"343_{r}_II" for r in range(12)]
    return pd.DataFrame({"id": ids, "fs": 1, "value": VALUES})


def test_reference_values(solution):
    sub = solution[["id", "value"]].copy()
    assert round(score(solution, sub), 4) == 25.8433
    sub.loc[0, "value"] = 0.9
    assert round(score(solution, sub), 4) == 13.6291
    sub.loc[4, "value"] = 0.3
    assert round(score(solution, sub), 4) == 13.0576


def test_all_zero_label_floors_at_minus_384(solution):
    zero = solution.assign(value=0.0)
    assert score(zero, solution[["id", "value"]]) == -384
    assert round(score(zero, zero[["id", "value"]]), 4) == 25.8433


def test_vertical_offset_removed():
    label = np.array([0, 1, 2, 1, 0.0])
    np.testing.assert_allclose(align_signals(label, label + 10), label, atol=1e-6)


def test_shift_within_window_corrected():
    label = np.array([0, 0, 1, 2, 1, 0.0, 0])
    pred = np.array([1, 2, 1, 0, 0, 0, 0.0])
    np.testing.assert_allclose(align_signals(label, pred), [np.nan, np.nan, 1, 2, 1, 0, 0], atol=1e-6)


def test_shift_beyond_window_not_corrected():
    label = np.array([0, 0, 0, 0, 1, 2, 1.0])
    pred = np.array([1, 2, 1, 0, 0, 0, 0.0])
    full = align_signals(label, pred, max_shift=10)
    np.testing.assert_allclose(full, [np.nan] * 4 + [1, 2, 1], atol=1e-6)
    limited = align_signals(label, pred, max_shift=1)
    assert np.isnan(limited).sum() <= 1                      # moved by at most one sample
    assert np.nanargmax(limited) != 5                        # so the peak is not where the label's is


def test_tie_goes_to_smallest_lag():
    label = np.array([0, 1, 0, 1, 0, 1, 0.0])
    pred = label.copy()
    aligned = align_signals(label, pred, max_shift=2)  # lags 0 and +-2 correlate alike; 0 wins (no NaN)
    assert not np.isnan(aligned).any()


def test_nan_submission_rejected(solution):
    sub = solution[["id", "value"]].copy()
    sub.loc[3, "value"] = np.nan
    with pytest.raises(MetricError, match="NaN"):
        score(solution, sub)


def test_missing_id_rejected(solution):
    with pytest.raises(MetricError, match="misses 1"):
        score(solution, solution[["id", "value"]].iloc[1:])
