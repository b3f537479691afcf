"""Time stage 1 per image, by part: network input, forward, lattice points (+ index unwrap), surface fit, dense
map + one remap of the raw image.

    python scripts/bench_stage1.py STAGE1_CKPT IMAGE [n=5] [k=1.0] [threads=N]

The stage-0 homography is taken from the image's label (lead-name keypoints) so only stage 1 is timed.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data import cli  # noqa: E402
from data.labels import PageLabel, label_path  # noqa: E402
from pagekit.image import read_image  # noqa: E402
from pagekit.registry import load_model  # noqa: E402
from stage1_rectify.decode import lattice_points  # noqa: E402
from stage1_rectify.predict import network_input  # noqa: E402
from stage1_rectify.rectify import FitParams, fit_lattice, rectify_image  # noqa: E402
from stage1_rectify.surface import consistent_indices  # noqa: E402


@dataclass
class Options:
    checkpoint: str
    image: str
    n: int = 5
    k: float = 1.0
    threads: int | None = None
    overrides: dict = field(default_factory=dict)     # model.KEY=VALUE of the checkpoint


def main(argv=None):
    opts = cli.parse(Options, argv, __doc__, positional=("checkpoint", "image"), rest="overrides")
    if opts.threads:
        torch.set_num_threads(opts.threads)
    n, k = opts.n, opts.k
    model, cfg = load_model(opts.checkpoint, overrides=[f"{kk}={v}" for kk, v in opts.overrides.items()])
    m, p = cfg["model"], FitParams.from_cfg(cfg["model"])
    raw = read_image(opts.image)
    H = PageLabel.load(label_path(opts.image)).homography("keypoints")
    times: dict[str, list[float]] = {}

    def tick(name, t0):
        times.setdefault(name, []).append(time.perf_counter() - t0)
        return time.perf_counter()

    for _ in range(n + 1):   # the first round warms up
        t = time.perf_counter()
        img, coords, kin = network_input(raw, H, int(m["input_size"]), int(m["cache_size"]))
        t = tick("input (downscale + warp)", t)
        with torch.no_grad():
            out = model({"image": torch.from_numpy(img).permute(2, 0, 1)[None],
                         "coords": torch.from_numpy(coords)[None]})
        heat = torch.sigmoid(out["heatmap"])[0].numpy()
        col, row = out["col"][0].numpy(), out["row"][0].numpy()
        t = tick("forward", t)
        ij, xy, conf = lattice_points(heat, col, row, kin, p.min_prob, p.radius, p.power, p.index_from)
        ij, xy, conf = consistent_indices(ij, xy, conf)
        t = tick("lattice points + unwrap", t)
        fit, fallback = fit_lattice(ij, xy, p)
        t = tick("surface fit", t)
        rectify_image(raw, H, fit, fallback, k)
        tick(f"dense map + remap (k={k})", t)
    print(f"{Path(argv[1]).name} {raw.shape[1]}x{raw.shape[0]}, input {img.shape[1]}x{img.shape[0]}, "
          f"{torch.get_num_threads()} threads, mean of {n}:")
    total = 0.0
    for name, ts in times.items():
        s = float(np.mean(ts[1:]))
        total += s
        print(f"  {name:28s} {s:7.3f} s")
    print(f"  {'total':28s} {total:7.3f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
