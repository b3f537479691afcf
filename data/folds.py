"""Deterministic record-level folds, balanced over fs: ``python -m data.folds DATA_DIR [n_folds]``.

Each fs stratum is ordered by a hash of the record id (not by file order) and dealt round-robin, so the same
train.csv always yields the same folds, every image of a record shares its fold, and each fold gets its share of
every sampling rate.  The CLI writes ``folds.csv`` (id, fold) into the data directory; training reads that file when
present, so a committed copy pins the split.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from data import cli
from data.files import write_table


def _id_hash(record_id: str) -> str:
    return hashlib.sha1(str(record_id).encode()).hexdigest()


def assign_folds(meta: pd.DataFrame, n_folds: int = 5) -> pd.DataFrame:
    """meta has columns id, fs -> DataFrame id, fs, fold."""
    out = meta[["id", "fs"]].copy()
    out["id"] = out["id"].astype(str)
    out["_h"] = out["id"].map(_id_hash)
    out = out.sort_values(["fs", "_h"]).reset_index(drop=True)
    offset = 0
    folds = []
    for _, g in out.groupby("fs", sort=True):  # carry the offset so small strata don't all start at fold 0
        folds.extend((offset + i) % n_folds for i in range(len(g)))
        offset += len(g)
    out["fold"] = folds
    return out.drop(columns="_h").sort_values("id").reset_index(drop=True)


def load_folds(data_dir: str | Path, n_folds: int = 5) -> pd.DataFrame:
    path = Path(data_dir) / "folds.csv"
    if path.is_file():
        return pd.read_csv(path, dtype={"id": str})
    from data.competition import Competition
    return assign_folds(Competition(data_dir).train_meta, n_folds)


@dataclass
class Options:
    data_dir: str
    n_folds: int = 5


def main(argv=None) -> None:
    from data.competition import Competition
    opts = cli.parse(Options, argv, __doc__, positional=("data_dir", "n_folds"))
    root = Path(opts.data_dir)
    folds = assign_folds(Competition(root).train_meta, opts.n_folds)
    write_table(root / "folds.csv", folds[["id", "fold"]], index=False)
    print(folds.groupby(["fold", "fs"]).size().unstack(fill_value=0))
    print(f"wrote {root / 'folds.csv'}")


if __name__ == "__main__":
    main()
