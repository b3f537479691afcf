"""Data every stage trains on: a competition-layout dir (generated on first use when it is synthetic) split into
train/validation images by record folds."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from data.competition import Competition
from data.folds import load_folds
from data.labels import label_path
from engine import dist


def dir_seed(seed: int, i: int) -> int:
    """The generator seed of ``data.dir`` (i = 0) and of ``data.extra_train_dirs[i - 1]`` when they are synthesized:
    the one home of that rule (the model card names the seeds too)."""
    return seed + i


def ensure_data(cfg, extra: bool = True) -> Path:
    """The data dir; a synthetic one (``data=synth``) is generated on first use, and so (with ``extra``) is each
    missing dir of ``data.extra_train_dirs`` (same settings, seeds ``dir_seed``: other records).
    ``data=competition`` never generates: an experiment's ``data.generate`` must not fill a mistyped competition path
    with synthetic pages."""
    root = Path(cfg.data.dir)
    dirs = [root] + ([Path(d) for d in cfg.data.get("extra_train_dirs") or []] if extra else [])
    g = cfg.data.get("generate") if cfg.data.get("synthetic", True) else None
    if dist.is_main():                     # under torchrun, rank 0 writes, the rest wait
        for i, d in enumerate(dirs):
            if (d / "train.csv").is_file():
                continue
            if not g:
                key = "data.dir" if i == 0 else "data.extra_train_dirs"
                raise FileNotFoundError(f"{d / 'train.csv'} not found: point {key} at the unzipped competition "
                                        "(train.csv, train/<id>/...) or another dir of its layout, or use data=synth "
                                        "to synthesize one")
            from data.synth.generate import generate

            generate(d, n_records=int(g.n_records), seed=dir_seed(int(g.seed), i), types=list(g.types),
                     n_test=int(g.n_test), workers=g.get("workers"), source=str(g.get("source") or "simulate"),
                     hold_tail=float(g.get("hold_tail") or 0.0), layouts=list(g.get("layouts") or []),
                     beat_at_column=float(g.get("beat_at_column") or 0.0))
    dist.barrier()
    return root


def _images(d: str | Path, cfg, labelled: bool) -> pd.DataFrame:
    """``Competition(d).images`` of ``data.types``, only those with label files when ``labelled``."""
    images = Competition(d).images(list(cfg.data.types) if cfg.data.get("types") else None)
    return images[[label_path(p).is_file() for p in images["path"]]] if labelled else images


def split_images(cfg, with_train: bool = True, labelled: bool = True) -> tuple[list[Path], list[Path]]:
    """(train, validation) image paths by record fold (only those with label files when ``labelled``), the images of
    ``data.extra_train_dirs`` added to train; train is empty when ``with_train`` is off."""
    root = ensure_data(cfg, extra=with_train)
    images = _images(root, cfg, labelled)
    if images.empty:
        why = (": stages 0 and 1 (and 2, unless model.rectify_with=[stage0.pt,stage1.pt]) need the generator's "
               "*.label.json beside each image (python -m data.synth ...; the competition's images: "
               "python -m inference.autolabel data_dir=...)") if labelled else ""
        raise FileNotFoundError(f"no {'labelled ' if labelled else ''}images under {root}/train{why}")
    folds = load_folds(root, int(cfg.data.n_folds)).set_index("id")["fold"]
    is_val = images["id"].map(folds).to_numpy() == int(cfg.data.val_fold)
    train, val = list(images["path"][~is_val]), list(images["path"][is_val])
    if not with_train:                     # evaluation: nothing of the training split is cached or loaded
        train = []
    else:                                  # more training pages; validation stays data.dir's fold
        for d in cfg.data.get("extra_train_dirs") or []:
            train += list(_images(d, cfg, labelled)["path"])
    if cfg.data.get("max_images"):
        train = train[:int(cfg.data.max_images)]
    if not val:
        raise ValueError(f"fold {cfg.data.val_fold} holds no labelled image; use fewer data.n_folds")
    return train, val


def image_jobs(root: Path, paths: list[Path]) -> list[tuple[Path, Path, int]]:
    """(image, its record's signal CSV, fs) for each train image path ({dir}/train/{id}/{id}-{type}.png; ``dir`` is
    ``root`` or one of ``data.extra_train_dirs``, read off the path)."""
    comps = {Path(root).resolve(): Competition(root)}
    jobs = []
    for p in map(Path, paths):
        d = p.parents[2].resolve()
        if d not in comps:
            comps[d] = Competition(d)
        r = comps[d].record(p.stem.rsplit("-", 1)[0])
        jobs.append((p, r.csv, r.fs))
    return jobs
