"""Train one stage: ``python train.py stage=0|1|2 [experiment=...] [group=choice] [key=value] [-m for sweeps]``.

Hydra 1.3 refuses an integer as a config-group choice (``stage=2`` parses as int), so the number is mapped to
the file ``conf/stage/stage2.yaml`` before Hydra reads the command line.  ``stage=stage2`` works too.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("WANDB_MODE", "disabled")

_STAGE_ARG = re.compile(r"^(stage=)(.+)$")


def map_stage_args(argv: list[str]) -> list[str]:
    """stage=2 -> stage=stage2; stage=0,1 -> stage=stage0,stage1 (sweeps); other arguments untouched."""
    out = []
    for a in argv:
        m = _STAGE_ARG.match(a)
        if m:
            choices = [f"stage{c}" if c.strip().isdigit() else c for c in m.group(2).split(",")]
            a = m.group(1) + ",".join(choices)
        out.append(a)
    return out


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    from engine.config import ConfigError
    from engine.loop import train

    try:
        result = train(cfg)
    except ConfigError as e:            # a bad value: one line naming the key, not a traceback from the loop
        remove_if_unused(Path(cfg.out_dir))
        raise SystemExit(f"error: {e}") from None
    return result.get("best")  # a sweeper may optimise this


def remove_if_unused(run_dir: Path) -> None:
    """The run folder Hydra made for a run that never started: only its .hydra/ and an empty log in it."""
    if not run_dir.is_dir():
        return
    entries = list(run_dir.iterdir())
    if all(p.name == ".hydra" or (p.suffix == ".log" and p.stat().st_size == 0) for p in entries):
        shutil.rmtree(run_dir)


if __name__ == "__main__":
    sys.argv = [sys.argv[0]] + map_stage_args(sys.argv[1:])
    main()
