"""Evaluate a checkpoint of any stage on its validation fold (or another data dir), per image type:

    python evaluate.py CHECKPOINT [data.dir=DIR] [data.val_fold=K] [device=auto] [key=value ...]

The model is rebuilt from the checkpoint alone (no Hydra, no internet) and the stage's own validation runs; any key
of the checkpoint's config can be overridden, e.g. the stage-1 surface fit: ``model.smoothing=100 model.method=poly``
(stage 1 with stage 0's real pages: ``python -m stage1_rectify.evaluate``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from data import cli
from engine.evaluate import evaluate, report
from pagekit.registry import load_model


@dataclass
class Options:
    checkpoint: str
    device: str = "auto"
    overrides: dict = field(default_factory=dict)


def main(argv=None) -> dict:
    opts = cli.parse(Options, argv, __doc__, positional=("checkpoint",), rest="overrides")
    with cli.reported():
        model, config = load_model(opts.checkpoint, overrides=[f"{k}={v}" for k, v in opts.overrides.items()])
    metrics = evaluate(model, config, opts.device)
    print(report(metrics))
    return metrics


if __name__ == "__main__":
    main()
