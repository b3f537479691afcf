"""Write a submission for a competition-layout dir, or score the pipeline on its train images:

    python -m inference data_dir=DIR checkpoints=[s0.pt,s1.pt,s2.pt] [out=submission.parquet]
    python -m inference data_dir=DIR checkpoints=[...] split=val [fold=0 n_folds=5]   # local score per image type

Options (key=value): weights=[...] (one per checkpoint, averaged within each stage), tta_flip=true (stage 2),
stage0_tta=false (default true: stage 0 pools its four quarter turns), rectify=model|gt (gt: the generator's labels
instead of stages 0 and 1, the upper bound of stage 2), extract.<field>=... (pagekit.extract.ExtractConfig),
stage1.model.<key>=... (decoding settings of a stage's checkpoints), device=auto|cpu|cuda, precision=auto|fp32|bf16|fp16
(stage 2's forward; auto: bf16 on a CPU that has it natively, and on GPUs that have it), batch_size=2, limit=N (first
N images), types=0001,0005.

split=test (default) reads test.csv and test/{id}.png (and scores when a solution.parquet lies beside, as data.synth
writes); split=train|val reads train images (val: the records of fold ``fold``), writes their submission and
prints the score per image type.  An image that cannot be read or digitized is reported and given 0 mV, so one
bad file never costs the submission.
"""
from __future__ import annotations

from dataclasses import dataclass

from data import cli
from inference.jobs import DataOptions, load_work, submit
from inference.pipeline import DigitizerOptions


@dataclass(kw_only=True)
class Options(DigitizerOptions, DataOptions):
    pass


def main(argv=None) -> float | None:
    opts = cli.parse(Options, argv, __doc__, open_keys=Options.OPEN_KEYS)
    table, paths, sol = load_work(opts)   # test.csv is checked and the checkpoints loaded before any image is read
    with cli.reported():
        dig = opts.digitizer()
    return submit(dig, opts, table, paths, sol)


if __name__ == "__main__":
    main()
