"""Per-image-type summaries, the one home for them: rows -> figures overall and per type, flattened into the
metric dicts the loop logs ("<name>", "<type>/<name>"), and back into tables for reports."""
from __future__ import annotations

from typing import Callable

import pandas as pd


def summarize_by_type(rows: list[dict], stats: Callable[[list[dict]], dict]) -> tuple[dict, pd.DataFrame]:
    """rows (each with a ``type``) -> (stats of all rows, DataFrame of the stats of each type's rows)."""
    types = sorted({r["type"] for r in rows})
    return stats(rows), pd.DataFrame({t: stats([r for r in rows if r["type"] == t]) for t in types}).T


def flat_metrics(overall: dict, per_type: pd.DataFrame, drop=("n",)) -> dict:
    """{name: value} overall and {"<type>/<name>": value} per type, leaving out the ``drop`` names."""
    out = {k: v for k, v in overall.items() if k not in drop}
    for t, r in per_type.iterrows():
        out |= {f"{t}/{k}": r[k] for k in per_type.columns if k not in drop}
    return out


def per_type_table(metrics: dict, prefix: str = "val") -> pd.DataFrame:
    """Flat metrics ("val/<type>/<name>") -> one row per type."""
    cells: dict = {}
    for key, value in metrics.items():
        parts = str(key).split("/")
        if len(parts) == 3 and parts[0] == prefix:
            cells.setdefault(parts[1], {})[parts[2]] = value
    return pd.DataFrame(cells).T.sort_index()


def overall(metrics: dict, prefix: str = "val") -> dict:
    return {k.split("/", 1)[1]: v for k, v in metrics.items()
            if str(k).startswith(prefix + "/") and str(k).count("/") == 1}
