"""Digitizers without weights: the floors every model must beat, and a fallback when no model is at hand.

    python -m inference.baseline data_dir=DIR [method=classical|zero] [out=submission.parquet]
    python -m inference.baseline data_dir=../shared/eik_dev split=train [method=...]     # scored per image type

method=classical (default): each image taken as the page it shows (resized, not rectified), ink darkness as the
trace probability, then the models' extraction (the darkest path within band_mv of each row's baseline); good on
clean upright pages, lost on tilted, photographed or overlapping ones (inference/classical.py).  method=zero: 0 mV
for every row, without reading an image.  Other options as ``python -m inference``: split=test|train|val, fold,
n_folds, types=0001,0005, limit=N, batch_size, extract.<field>=... (pagekit.extract.ExtractConfig).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

from data import cli
from inference.classical import ClassicalDigitizer, ZeroDigitizer
from inference.jobs import DataOptions, load_work, submit
from pagekit.extract import ExtractConfig

METHODS = ("classical", "zero")


@dataclass(kw_only=True)
class Options(DataOptions):
    method: str = "classical"
    extract: dict = field(default_factory=dict)


def main(argv=None) -> float | None:
    opts = cli.parse(Options, argv, __doc__, open_keys={"extract": [f.name for f in fields(ExtractConfig)]})
    if opts.method not in METHODS:
        raise cli.UsageError(f"method={opts.method!r}: expected one of {', '.join(METHODS)}")
    table, paths, sol = load_work(opts)
    dig = ClassicalDigitizer(extract=opts.extract) if opts.method == "classical" else ZeroDigitizer()
    return submit(dig, opts, table, paths, sol)


if __name__ == "__main__":
    main()
