"""Summarise a training run from its log.jsonl: per-type validation table of the best epoch, and curves.

    python scripts/report_run.py RUN_DIR [metric=kp_median_mm] [mode=min]

Writes RUN_DIR/curves.png (training loss and the validation metric per epoch, overall and per image type).
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from data import cli  # noqa: E402
from data.files import write_figure  # noqa: E402
from engine.report import overall, per_type_table  # noqa: E402


def load_log(run: Path) -> pd.DataFrame:
    path = run / "log.jsonl"
    if not path.is_file():
        raise SystemExit(f"{path} not found: is {run} a training run directory?")
    return pd.DataFrame([json.loads(line) for line in path.read_text().splitlines() if line.strip()])


@dataclass
class Options:
    run: str
    metric: str = "kp_median_mm"
    mode: str = "min"


def main(argv=None) -> None:
    opts = cli.parse(Options, argv, __doc__, positional=("run",))
    run, metric, mode = Path(opts.run), opts.metric, opts.mode
    log = load_log(run)
    col = f"val/{metric}"
    best = log.loc[log[col].idxmin() if mode == "min" else log[col].idxmax()]
    shown = ", ".join(f"{k}={v:.4g}" for k, v in overall(best.to_dict()).items())
    print(f"best epoch {int(best['epoch']) + 1} of {len(log)}: {shown}")
    print(per_type_table(best.to_dict()).to_string(float_format=lambda v: f"{v:.3f}"))

    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    ax[0].plot(log["epoch"] + 1, log["train/loss"], label="train")
    if "val/loss" in log:
        ax[0].plot(log["epoch"] + 1, log["val/loss"], label="val")
    ax[0].set(xlabel="epoch", ylabel="loss", title="loss")
    ax[0].legend()
    ax[1].plot(log["epoch"] + 1, log[col], "k-", lw=2, label="all")
    for t in per_type_table(best.to_dict()).index:
        if f"val/{t}/{metric}" in log:
            ax[1].plot(log["epoch"] + 1, log[f"val/{t}/{metric}"], lw=1, label=t)
    ax[1].set(xlabel="epoch", ylabel=metric, title=f"validation {metric}", yscale="log")
    ax[1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    write_figure(run / "curves.png", fig, dpi=110)
    print(f"wrote {run / 'curves.png'}")


if __name__ == "__main__":
    main()
