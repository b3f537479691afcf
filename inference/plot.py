"""The digitized leads drawn over the rectified page they were read from: the quickest check of a result.  The
canonical 5 mm grid drawn on top shows the rectification (where it is right, it covers the printed grid), and a
known signal drawn under the leads shows the errors."""
from __future__ import annotations

import numpy as np

from data import geometry as G


def plot_leads(page: np.ndarray, leads: dict[str, np.ndarray], fs: int, k=1.0, title: str = "",
               truth: dict[str, np.ndarray] | None = None, grid: bool = True, layout=None,
               expected: dict[str, float] | None = None):
    """BGR rectified page at scale k + lead -> mV (each lead's own window) -> matplotlib Figure.  ``truth``: lead ->
    mV over the same windows, drawn in red under the digitized blue; ``grid``: the canonical 5 mm lines in cyan;
    ``layout``: the page's (default: the competition's); ``expected``: lead -> expected SNR in dB, written beside
    each lead's name."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    kx, ky = G.scales(k)
    h, w = page.shape[:2]
    fig, ax = plt.subplots(figsize=((w / kx) / (h / ky) * 8, 8), dpi=120)
    ax.imshow(page[..., ::-1] if page.ndim == 3 else page, cmap="gray", aspect=kx / ky)
    if grid:
        pts, _ = G.grid_lattice()
        ax.vlines(np.unique(pts[:, 0]) * kx, 0, h - 1, color="c", lw=0.3, alpha=0.6)
        ax.hlines(np.unique(pts[:, 1]) * ky, 0, w - 1, color="c", lw=0.3, alpha=0.6)
    layout = G.as_layout(layout)
    for slot in layout.slots():
        if slot != layout.lead_slot(slot.lead) or slot.lead not in leads:
            continue
        a, _ = G.slot_sample_window(slot, fs, layout)
        for values, colour, lw in ((truth or {}).get(slot.lead), "tab:red", 1.6), (leads[slot.lead], "tab:blue", 0.8):
            if values is None:
                continue
            t = (a + np.arange(len(values))) / fs
            ax.plot(G.time_to_x(t, kx), G.mv_to_y(np.asarray(values), slot.row, ky, layout), lw=lw, color=colour)
        db = (expected or {}).get(slot.lead)
        ax.text(G.time_to_x(slot.t0, kx) + 4, G.mv_to_y(1.6, slot.row, ky, layout),
                slot.lead + (f" ~{db:.0f} dB" if db is not None else ""), color="tab:blue", fontsize=8)
    ax.set_axis_off()
    ax.set_title(title or "digitized leads (blue) over the rectified page")
    fig.tight_layout()
    return fig
