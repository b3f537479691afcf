"""The folder CLI as a Hydra app, so that a sweep over ``shard`` runs an archive as a job array on any launcher the
project has (``hydra/launcher=slurm``: submitit).  Configuration and the command: ``conf/digitize.yaml``.

    python scripts/digitize_array.py -m hydra/launcher=slurm paths=[/archive] out=/results shards=100 \\
        'shard=range(0,100)' "options=['fs=500','wfdb=true']"
"""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def folder_cli_args(cfg: DictConfig) -> list[str]:
    """The folder CLI's arguments for this job: its paths, out, its shard, the other options."""
    if not 0 <= int(cfg.shard) < int(cfg.shards):
        raise SystemExit(f"error: shard={cfg.shard}: expected 0 <= shard < shards ({cfg.shards})")
    if not cfg.paths:
        raise SystemExit("error: paths=[...] names no folder, file or glob to digitize")
    return [*map(str, cfg.paths), f"out={cfg.out}", f"shard={int(cfg.shard)}/{int(cfg.shards)}",
            *map(str, cfg.options)]


@hydra.main(version_base="1.3", config_path="../conf", config_name="digitize")
def main(cfg: DictConfig) -> None:
    from inference.digitize import main as digitize

    digitize(folder_cli_args(cfg))


if __name__ == "__main__":
    main()
