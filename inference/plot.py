"""The digitized leads drawn over the rectified page they were read from: the quickest check of a result."""
from __future__ import annotations

import numpy as np

from data import geometry as G


def plot_leads(page: np.ndarray, leads: dict[str, np.ndarray], fs: int, k=1.0, title: str = ""):
    """BGR rectified page at scale k + lead -> mV (each lead's own window) -> matplotlib Figure."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    kx, ky = G.scales(k)
    h, w = page.shape[:2]
    fig, ax = plt.subplots(figsize=((w / kx) / (h / ky) * 8, 8), dpi=120)
    ax.imshow(page[..., ::-1] if page.ndim == 3 else page, cmap="gray", aspect=kx / ky)
    for slot in G.lead_slots():
        if slot.lead == G.RHYTHM_LEAD and not slot.is_rhythm:
            continue
        v = leads[slot.lead]
        a, _ = G.slot_sample_window(slot, fs)
        t = (a + np.arange(len(v))) / fs
        ax.plot(G.time_to_x(t, kx), G.mv_to_y(v, slot.row, ky), lw=0.8, color="tab:blue")
        ax.text(G.time_to_x(slot.t0, kx) + 4, G.mv_to_y(1.6, slot.row, ky), slot.lead, color="tab:blue", fontsize=8)
    ax.set_axis_off()
    ax.set_title(title or "digitized leads (blue) over the rectified page")
    fig.tight_layout()
    return fig
