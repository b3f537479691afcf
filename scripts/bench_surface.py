"""Which surface fit?  Recover known page warps from noisy, incomplete lattice points with outliers.

    python scripts/bench_surface.py [seeds=3]

For each warp (smooth curl, lens distortion, sharp folds) the ideal lattice is warped, 0.8 canonical px of
detection noise is added (0.2 px at stage 1's 0.25 input scale), 25 % of the points are dropped (plus one missing
block), 3 % get a wrong line index; each method's fitted map is then compared with the true warp on a dense grid of
page points.  Prints median / p95 / max error in mm and the fit time per page.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))

from data import cli  # noqa: E402
from data import geometry as G  # noqa: E402
from stage1_rectify.lattice import SPACING, node_grid, to_canonical  # noqa: E402
from stage1_rectify.surface import fit_surface  # noqa: E402
from stage1_rectify.warp import canonical_to_raw  # noqa: E402


def curl(p):
    x, y = p[:, 0] / G.PAGE_W, p[:, 1] / G.PAGE_H
    return p + np.stack([18 * np.sin(np.pi * y) * x, 25 * (x - 0.5) ** 2 - 12 * np.sin(2 * np.pi * x) * y], -1)


def lens(p):
    c = np.array([G.PAGE_W / 2, G.PAGE_H / 2])
    d = (p - c) / G.PAGE_W
    return c + (p - c) * (1 + 0.06 * (d ** 2).sum(1, keepdims=True))


_rng = np.random.default_rng(7)
_FOLDS = [(n / np.linalg.norm(n), _rng.uniform([0, 0], [G.PAGE_W, G.PAGE_H]), _rng.uniform(4, 8))
          for n in _rng.normal(size=(4, 2))]


def folds(p):
    out = p.copy()
    for n, c, step in _FOLDS:   # creases: a 1-2 mm step across a line, 3 mm wide
        out += np.tanh((p - c) @ n / (3 * G.PX_PER_MM))[:, None] * step * n
    return out


METHODS = {"tps s=0": dict(method="tps", smoothing=0.0), "tps s=1": dict(method="tps", smoothing=1.0),
           "tps s=10": dict(method="tps", smoothing=10.0), "tps s=100": dict(method="tps", smoothing=100.0),
           "tps s=1000": dict(method="tps", smoothing=1000.0),
           "tps s=10 k=64": dict(method="tps", smoothing=10.0, neighbors=64),
           "poly 3": dict(method="poly", degree=3), "poly 5": dict(method="poly", degree=5),
           "poly 7": dict(method="poly", degree=7)}


def corrupt(ij, xy, rng):
    keep = rng.random(len(ij)) > 0.25
    keep &= ~((ij[:, 0] > 30) & (ij[:, 0] < 38) & (ij[:, 1] > 10) & (ij[:, 1] < 16))   # a missing block
    ij, xy = ij[keep], xy[keep] + rng.normal(0, 0.8, (keep.sum(), 2))
    bad = rng.random(len(ij)) < 0.03
    xy[bad] += rng.choice([-1, 1], (bad.sum(), 1)) * SPACING * np.eye(2)[rng.integers(0, 2, bad.sum())]
    return ij, xy


@dataclass
class Options:
    seeds: int = 3


def main(argv=None):
    seeds = cli.parse(Options, argv, __doc__).seeds
    ij = node_grid().reshape(-1, 2)
    q = np.random.default_rng(0).uniform([0, 0], [G.PAGE_W, G.PAGE_H], (20000, 2))
    rows = []
    for wname, warp in {"curl": curl, "lens": lens, "folds": folds}.items():
        for name, kw in METHODS.items():
            errs, times = [], []
            for seed in range(seeds):
                cij, cxy = corrupt(ij, warp(to_canonical(ij)), np.random.default_rng(seed))
                t = time.perf_counter()
                fit = fit_surface(cij, cxy, **kw)
                times.append(time.perf_counter() - t)
                errs.append(np.linalg.norm(canonical_to_raw(fit, np.eye(3), q) - warp(q), axis=1) / G.PX_PER_MM)
            e = np.concatenate(errs)
            rows.append({"warp": wname, "method": name, "median_mm": np.median(e), "p95_mm": np.percentile(e, 95),
                         "max_mm": e.max(), "fit_s": np.mean(times)})
    df = pd.DataFrame(rows)
    print(df.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("\nmean over warps:\n" + df.groupby("method")[["median_mm", "p95_mm", "max_mm", "fit_s"]].mean()
          .sort_values("p95_mm").to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
