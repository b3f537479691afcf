"""Turn flat metric dicts ("val/<type>/<name>") into per-type tables."""
from __future__ import annotations

import pandas as pd


def per_type_table(metrics: dict, prefix: str = "val") -> pd.DataFrame:
    cells: dict = {}
    for key, value in metrics.items():
        parts = str(key).split("/")
        if len(parts) == 3 and parts[0] == prefix:
            cells.setdefault(parts[1], {})[parts[2]] = value
    return pd.DataFrame(cells).T.sort_index()


def overall(metrics: dict, prefix: str = "val") -> dict:
    return {k.split("/", 1)[1]: v for k, v in metrics.items()
            if str(k).startswith(prefix + "/") and str(k).count("/") == 1}
