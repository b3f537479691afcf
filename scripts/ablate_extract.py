"""Compare extraction settings on the same stage-2 probabilities: the validation fold's pages (rectified by the
labels, as in training) go through the network once, then every setting is scored end to end, per image type.

    python scripts/ablate_extract.py STAGE2_CKPT [max_images=80] [tta_flip=false] [only=[shipped,robust]]
                                     [data_dir=runs/data/synth_layouts_40_7 n_folds=4]

``data_dir``/``n_folds`` read another generated set than the checkpoint trained on (its fold 0), e.g. pages of
records a shipped model never saw.

Prints one row per setting: SNR (dB of the mean ratio, as the competition averages) overall and per type, and
the extraction time per page.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import OmegaConf
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data import cli  # noqa: E402
from data import geometry as G  # noqa: E402
from pagekit.extract import ExtractConfig  # noqa: E402
from pagekit.metric import to_db  # noqa: E402
from pagekit.registry import load_model  # noqa: E402
from stage2_segment import task  # noqa: E402
from stage2_segment.predict import forward_probs  # noqa: E402

SHIPPED = dict(method="viterbi", subpixel="soft", band_mv=4.0, einthoven=1.0)      # weights/stage2.yaml
SETTINGS = {
    "argmax + soft, whole page": dict(method="argmax", subpixel="soft", band_mv=0),
    "argmax + soft": dict(method="argmax", subpixel="soft"),
    "argmax + parabola": dict(method="argmax", subpixel="parabola"),
    "argmax, integer": dict(method="argmax", subpixel="none"),
    "viterbi + soft, whole page": dict(method="viterbi", subpixel="soft", band_mv=0),
    "viterbi + soft": dict(method="viterbi", subpixel="soft"),
    "viterbi + soft, min_prob 0.2": dict(method="viterbi", subpixel="soft", min_prob=0.2),
    "viterbi + soft + short II 0.5": dict(method="viterbi", subpixel="soft", blend_short_ii=0.5),
    "viterbi + soft + Einthoven 0.5": dict(method="viterbi", subpixel="soft", einthoven=0.5),
    "viterbi + soft + Einthoven 1": dict(method="viterbi", subpixel="soft", einthoven=1.0),
    "viterbi + soft, band 4 mV": dict(method="viterbi", subpixel="soft", band_mv=4.0),
    "shipped, one pass (band 4 + Einthoven 1)": dict(SHIPPED),
    "shipped + exclusive 0.5": dict(SHIPPED, exclusive=0.5),
    "shipped + exclusive 0.9": dict(SHIPPED, exclusive=0.9),
    "shipped, Einthoven 0": dict(SHIPPED, einthoven=0.0),
    "shipped, Einthoven 0 + exclusive 0.9": dict(SHIPPED, einthoven=0.0, exclusive=0.9),
    "shipped + exclusive 0.5 + robust limb fit 0.1": dict(SHIPPED, exclusive=0.5, einthoven_robust=0.1),
    "shipped + exclusive 0.5 + robust limb fit 0.2": dict(SHIPPED, exclusive=0.5, einthoven_robust=0.2),
    "shipped + exclusive 0.5 + robust limb fit 0.6": dict(SHIPPED, exclusive=0.5, einthoven_robust=0.6),
    "shipped + exclusive 0.5 + robust 0.2 + path per slot": dict(SHIPPED, exclusive=0.5, einthoven_robust=0.2,
                                                                 slot_paths=True),
}
NOW = SETTINGS["shipped + exclusive 0.5 + robust 0.2 + path per slot"]              # the defaults now
for jump, slope in ((0.025, 0.025), (0.01, 0.01), (0.05, 0.01), (0.01, 0.05), (0.005, 0.005)):
    SETTINGS[f"now, jump {jump} slope {slope}"] = dict(NOW, jump_cost=jump, slope_cost=slope)
SETTINGS["now, argmax"] = dict(NOW, method="argmax")


@dataclass
class Options:
    checkpoint: str
    max_images: int | None = None
    tta_flip: bool = False
    only: list[str] = field(default_factory=list)     # settings whose name contains one of these; empty = all
    data_dir: str | None = None                       # a generated set other than the checkpoint's data.dir
    n_folds: int | None = None                        # and its folds (validation: fold 0)


def main(argv=None) -> pd.DataFrame:
    opts = cli.parse(Options, argv, __doc__, positional=("checkpoint",))
    model, cfg = load_model(opts.checkpoint)
    cfg = OmegaConf.create(cfg)
    if opts.data_dir:
        cfg.data.dir, cfg.data.extra_train_dirs, cfg.data.val_fold = opts.data_dir, [], 0
    if opts.n_folds:
        cfg.data.n_folds = opts.n_folds
    _, val = task.build_datasets(cfg, with_train=False)
    n = min(len(val), opts.max_images or len(val))
    w, h = G.page_size(val.k)
    probs, truths = [], []
    for i in tqdm(range(n), desc="stage 2"):
        item = val[i]
        p = forward_probs(model, item["image"][None], item["coords"][None], opts.tta_flip,
                          baselines=item["baselines"][None])
        probs.append(p[0, :, :h, :w].numpy().astype(np.float16))
        truths.append(val.truth(i))
    rows = []
    for name, kw in SETTINGS.items():
        if opts.only and not any(word in name for word in opts.only):
            continue
        # one pass and the plain limb fit unless a setting says otherwise (the defaults would change the old rows)
        ecfg = replace(ExtractConfig(exclusive=0.0, einthoven_robust=0.0, slot_paths=False), **kw)
        t0 = time.perf_counter()
        table = pd.DataFrame(sum((task.score_pages(p[None].astype(np.float32), [t], val.k, ecfg)
                                  for p, t in zip(probs, truths)), []))
        row = {"setting": name, "snr_db": float(to_db(table["ratio"].mean())),
               "s/page": (time.perf_counter() - t0) / n}
        row |= {t: float(to_db(g["ratio"].mean())) for t, g in table.groupby("type")}
        rows.append(row)
        print(f"{name:<34} {row['snr_db']:7.2f} dB  {row['s/page']:.2f} s/page", flush=True)
    out = pd.DataFrame(rows).set_index("setting")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(out.round(2).to_string())
    return out


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
