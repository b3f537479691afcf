"""One paper ECG -> a CSV of its 12 leads (and optionally a picture of them over the rectified page):

    python -m inference.digitize IMAGE checkpoints=[s0.pt,s1.pt,s2.pt] [fs=500] [out=IMAGE.csv] [plot=IMAGE.png]

The CSV has the layout of the competition's train CSVs: columns I..V6 in mV, 10 s at fs, each short lead only in
its own 2.5 s window (NaN elsewhere), lead II over the whole rhythm strip.  Other options as ``python -m inference``
(tta_flip=true, stage0_tta=true, extract.<field>=..., stageN.model.<key>=..., device=cpu).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from data import cli
from data.files import write_figure, write_table
from inference.pipeline import DigitizerOptions


@dataclass(kw_only=True)
class Options(DigitizerOptions):
    image: str
    fs: int = 500
    out: str | None = None        # default: IMAGE with .csv
    plot: str | None = None


def main(argv=None):
    opts = cli.parse(Options, argv, __doc__, positional=("image",), open_keys=Options.OPEN_KEYS)
    image = Path(opts.image)
    with cli.reported():
        if not image.is_file():
            raise FileNotFoundError(f"no image {image}")
        dig = opts.digitizer()
    res = dig.digitize(image, opts.fs, plot=bool(opts.plot))
    df, fig = res if opts.plot else (res, None)
    out = Path(opts.out) if opts.out else image.with_suffix(".csv")
    write_table(out, df, index=False, float_format="%.4f")
    print(f"wrote {out} ({len(df)} samples x 12 leads)")
    if fig is not None:
        write_figure(opts.plot, fig, dpi=120)
        print(f"wrote {opts.plot}")
    return df


if __name__ == "__main__":
    main()
