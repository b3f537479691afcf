"""ECG-Image-Kit's JSON beside each render (../shared/eik_dev): where every plotted sample landed in the image."""
from __future__ import annotations

import numpy as np
import pandas as pd

from data import geometry as G


def sample_positions(doc: dict, signals: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(canonical page px, image px) of every plotted sample, (N, 2) x, y each."""
    fs = float(doc["sampling_frequency"])
    n_full = max(lead["end_sample"] - lead["start_sample"] for lead in doc["leads"])
    rows = {s.lead + ("_rhythm" if s.is_rhythm else ""): s.row for s in G.lead_slots()}
    canon, image = [], []
    for lead in doc["leads"]:
        name = lead["lead_name"] + ("_rhythm" if lead["end_sample"] - lead["start_sample"] == n_full else "")
        idx = np.arange(lead["start_sample"], lead["end_sample"])
        v = signals[lead["lead_name"]].to_numpy()[idx]
        ok = np.isfinite(v)
        canon.append(np.stack([G.time_to_x(idx[ok] / fs), G.mv_to_y(v[ok], rows[name])], -1))
        image.append(np.asarray(lead["plotted_pixels"], dtype=np.float64)[ok][:, ::-1])       # [y, x] -> x, y
    return np.concatenate(canon), np.concatenate(image)
