"""Pictures of the pipeline at work on train images whose signals are known: per image the input beside the page
that stages 0 and 1 rectified (the canonical 5 mm grid drawn on it in cyan: where the rectification is right it covers
the printed grid), the digitized leads (blue) over the truth (red), and the image's SNR in the title:

    python scripts/demo_figure.py data_dir=DIR [checkpoints=[...]] [types=0001,0003,0005] [out=runs/demo/figures]

checkpoints default to weights/ (pagekit.weights); one figure per type, from the first record that has it.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data import cli  # noqa: E402
from data.competition import Competition  # noqa: E402
from data.files import write_figure  # noqa: E402
from inference.pipeline import Digitizer  # noqa: E402
from inference.plot import plot_leads  # noqa: E402
from pagekit.metric import image_ratio, to_db  # noqa: E402


@dataclass
class Options:
    data_dir: str
    checkpoints: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=lambda: ["0001", "0003", "0005"])
    out: str = "runs/demo/figures"
    device: str = "auto"


def figure(dig: Digitizer, image: Path, truth: dict[str, np.ndarray], fs: int, title: str):
    import matplotlib.pyplot as plt

    reading = dig.run([image], [fs], [{lead: len(v) for lead, v in truth.items()}])[0]
    snr = float(to_db(image_ratio(truth, reading.leads, fs)))
    page_fig = plot_leads(reading.page, reading.leads, fs, dig.k, truth=truth,
                          title=f"{title}: {snr:.1f} dB - digitized (blue) over the truth (red), canonical grid (cyan)")
    page_fig.canvas.draw()
    page = np.asarray(page_fig.canvas.buffer_rgba())[..., :3]
    plt.close(page_fig)
    raw = cv2.cvtColor(cv2.imread(str(image)), cv2.COLOR_BGR2RGB)
    h = page.shape[0]
    fig, axes = plt.subplots(1, 2, figsize=(8 * raw.shape[1] / raw.shape[0] + 8 * page.shape[1] / h, 8), dpi=100,
                             gridspec_kw={"width_ratios": [raw.shape[1] / raw.shape[0], page.shape[1] / h]})
    for ax, im, name in zip(axes, (raw, page), ("input", "rectified page")):
        ax.imshow(im)
        ax.set_title(name)
        ax.set_axis_off()
    fig.tight_layout()
    return fig, snr


def main(argv=None) -> dict[str, float]:
    opts = cli.parse(Options, argv, __doc__)
    with cli.reported():
        comp = Competition(opts.data_dir)
        images = comp.images(opts.types)
        dig = Digitizer(opts.checkpoints, device=opts.device)
    out, scores = Path(opts.out), {}
    for t in opts.types:
        rows = images[images["type"] == t]
        if rows.empty:
            print(f"no image of type {t} in {opts.data_dir}")
            continue
        r = rows.iloc[0]
        truth = {lead: v for lead, (_, v) in comp.load_leads(r["id"]).items()}
        fig, scores[t] = figure(dig, Path(r["path"]), truth, int(r["fs"]), f"{r['image_id']} ({t})")
        path = write_figure(out / f"{t}.jpg", fig, dpi=60)
        print(f"wrote {path} ({scores[t]:.1f} dB)")
    return scores


if __name__ == "__main__":
    main()
